"""Starts the enabled services in one asyncio TaskGroup and stops them cleanly.

Order: every service binds its sockets (`start`), then systemd is told READY=1,
then every service's `serve` runs in one TaskGroup beside the registry flusher
until SIGTERM/SIGINT. A service that raises anything ends the group: the
process exits non-zero and systemd restarts it (a bug must not be hidden).

SIGHUP reloads: the config file is validated as `netboot check` does; a bad
one is refused (one log line per problem) and the old config serves on. A
good one is applied as `netboot.reload.plan` decides: a service whose sockets
depend on a changed key is restarted alone, the others are reconfigured in
place; the lease store and the registry stay open throughout. systemd hears
RELOADING=1 before and READY=1 after (sd_notify(3), `ExecReload=`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from netboot.config import Config
from netboot.health import status_text
from netboot.provisioning.files import FileResolver
from netboot.registry import Registry
from netboot.state.leases import LeaseStore
from netboot.statedisk import DiskReserve

# Registry events per transaction, on the event loop: ~15 µs each (no fsync:
# synchronous=NORMAL), so a batch holds the loop ~1.5 ms and DHCP's ACKs wait
# little behind it. A queue past BEHIND is written in batches of BIG_BATCH
# (~7 ms each): with 100 only, it fell behind at 7000 DHCP exchanges/s and
# overflowed registry.max_queued (8 000-20 000 events dropped in a 4 s run).
FLUSH_BATCH = 100
BEHIND = 2000
BIG_BATCH = 500
RESERVE_EVERY = 10.0  # seconds between checks that the disk reserve is in place
PRUNE_EVERY = 60.0  # seconds between applications of the registry budgets

log = logging.getLogger("netboot")


class Service(Protocol):
    name: str

    async def start(self) -> None:
        """Bind sockets; raise OSError with a clear message if that fails."""

    async def serve(self) -> None:
        """Run until cancelled."""

    async def stop(self) -> None:
        """Release sockets; send goodbyes (LLDP shutdown frame, ...)."""


def never() -> bool:
    """`Context.dhcp_waiting` while DHCP does not serve."""
    return False


@dataclass
class Context:
    """What the services share: the config, the phone registry, the leases and
    the file resolver. netboot.app builds it."""

    config: Config
    registry: Registry
    leases: LeaseStore
    files: FileResolver  # TFTP, HTTP and FTP share it (and its renderer)
    services: dict[str, Service] = field(default_factory=dict)
    started: float = field(default_factory=time.time)  # for the uptime
    # A service calls this when what it does changes (DHCP: probing -> serving
    # or refused; an alarm): STATUS= and the log follow.
    status_changed: Callable[[], None] = lambda: None
    # Whose turn it is to write netboot.db: DHCP's lease commits (in its
    # commit thread) and the registry's flushes and prunes (on the loop) take
    # it in turn, so a flush never waits in SQLite's busy handler (sleeping
    # 1, 2, 5, ... ms with the whole event loop) behind a commit's fsync.
    db_turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Do DHCP requests wait in a socket? The registry then writes one batch
    # an interval (DHCP sets it while it serves, `never` otherwise).
    dhcp_waiting: Callable[[], bool] = never


class Builder(Protocol):
    """What the supervisor needs of the composition root (netboot.app)."""

    # Every service, by config section, in the order they start.
    names: tuple[str, ...]

    def build(self, name: str, ctx: Context) -> Service:
        """The service `name`, built from ctx.config with ctx's shared parts."""

    def reconfigure(self, ctx: Context) -> None:
        """A reload: the shared parts (the file resolver) follow ctx.config."""


def build_services(ctx: Context, builder: Builder) -> list[Service]:
    services: list[Service] = []
    for name in builder.names:
        if not getattr(getattr(ctx.config, name), "enabled", False):
            continue
        service = builder.build(name, ctx)
        ctx.services[service.name] = service
        services.append(service)
    return services


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


async def _flush_registry(
    registry: Registry,
    turn: asyncio.Lock,
    waiting: Callable[[], bool] = never,
    interval: float = 0.25,
    batch: int = FLUSH_BATCH,
) -> None:
    """A few times a second the queued registry events go to SQLite, on the
    loop (a writer thread cost more than it saved: its Python work contends
    for the GIL with every system call of the services, measured), a batch at
    a time. While DHCP requests wait (`waiting`), one batch an interval: a
    phone's address goes before its history, and history still moves (400
    events/s, 2000/s once BEHIND wait: a boot storm's ~8 events a phone keep
    up). Under a DHCP load past what the machine can do both, the queue
    reaches registry.max_queued and the oldest events are dropped (counted in
    netboot_registry_pruned_total{reason="queued"})."""
    while True:
        await asyncio.sleep(interval)
        # A burst (500 phones heard at once) is written a batch at a time,
        # the other services running in between. A failed write returns 0 and
        # the events wait (registry.flush never raises for a disk problem).
        while registry.pending:
            busy = waiting()
            limit = BIG_BATCH if registry.pending > BEHIND else batch
            async with turn:
                written = registry.flush(limit=limit)
            if busy or written < limit:
                break
            await asyncio.sleep(0)


async def _state_housekeeping(
    registry: Registry,
    leases: LeaseStore,
    reserve: DiskReserve,
    turn: asyncio.Lock,
    clock: Callable[[], float] = time.time,
) -> None:
    """Every PRUNE_EVERY s (sooner under a flood: `registry.needs_prune`) the
    registry's budgets (a flood's prune applies only those by count, at the
    cost of what it removes); every RESERVE_EVERY s the disk reserve made
    again if it was given up and there is room."""
    last_prune = last_reserve = clock()
    while True:
        await asyncio.sleep(1.0)
        now = clock()
        if now - last_reserve >= RESERVE_EVERY:
            last_reserve = now
            reserve.ensure()
        full = now - last_prune >= PRUNE_EVERY
        if full or registry.needs_prune:
            if full:
                last_prune = now
            keep = leases.by_mac.keys()  # a live view: no 100 000-entry copy per prune
            while True:  # a big backlog goes a batch at a time
                async with turn:
                    registry.prune(now, keep, full=full)
                if not registry.more:
                    break
                await asyncio.sleep(0)


async def run(ctx: Context, builder: Builder, reserve: DiskReserve) -> int:
    """Run every enabled service until SIGTERM or SIGINT; returns the exit
    code. The registry and the lease store are closed when it returns."""
    config, registry, leases = ctx.config, ctx.registry, ctx.leases
    services = build_services(ctx, builder)
    if not services:
        log.error("no service is enabled in %s: nothing to do", config.source)
        registry.close()
        leases.close()
        return 1
    supervisor = Supervisor(ctx, builder)
    stop = asyncio.Event()
    reload_wanted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_wanted.set)
    try:
        for service in services:
            await service.start()
            supervisor.running[service.name] = service
        # What start-up built (imported modules, codec tables, the lease index) lives as
        # long as the process: out of the collector's sight, a full (gen-2)
        # collection then takes well under 1 ms instead of ~40 ms, a stall
        # every service would feel (a DHCP OFFER waits behind it).
        gc.freeze()
        status = supervisor.status()
        log.info("ready: %s", status)
        sd_notify(f"READY=1\nSTATUS={status}")

        def status_changed() -> None:
            text = supervisor.status()
            log.info("status: %s", text)
            sd_notify(f"STATUS={text}")

        ctx.status_changed = status_changed

        async def until_stopped() -> None:
            await stop.wait()
            raise _Stop

        async def reloads() -> None:
            while True:
                await reload_wanted.wait()
                reload_wanted.clear()  # signals during a reload: one more after it
                await supervisor.reload()

        # The signal task ends the group by raising _Stop; `except*` takes it
        # without raising anything new (on Python 3.11.2, an exception raised
        # inside `except*` leaves wrapped in an ExceptionGroup, and a clean stop
        # became exit 1 with a traceback).
        try:
            async with asyncio.TaskGroup() as group:
                supervisor.group = group
                for service in supervisor.running.values():
                    supervisor.spawn(service)
                group.create_task(
                    _flush_registry(registry, ctx.db_turn, lambda: ctx.dhcp_waiting()),
                    name="registry",
                )
                group.create_task(
                    _state_housekeeping(registry, leases, reserve, ctx.db_turn), name="state"
                )
                group.create_task(reloads(), name="reload")
                group.create_task(until_stopped(), name="signals")
        except* _Stop:
            pass
        return 0
    finally:
        sd_notify("STOPPING=1")
        log.info("stopping")
        supervisor.group = None
        for service in reversed(list(supervisor.running.values())):
            try:
                await service.stop()
            except Exception:
                log.exception("error while stopping %s", service.name)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        registry.close()  # writes what is queued
        leases.close()
        log.info("stopped: leases and registry written")


class Supervisor:
    """The running services and their serve tasks; applies a reload."""

    def __init__(self, ctx: Context, builder: Builder) -> None:
        self.ctx = ctx
        self.builder = builder
        self.running: dict[str, Service] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.group: asyncio.TaskGroup | None = None

    def names(self) -> str:
        return ", ".join(self._ordered(tuple(self.running)))

    def status(self) -> str:
        """STATUS= text: exactly which services run, start or refused (health)."""
        return status_text(self.running[n] for n in self._ordered(tuple(self.running)))

    def spawn(self, service: Service) -> None:
        assert self.group is not None
        self.tasks[service.name] = self.group.create_task(service.serve(), name=service.name)

    async def halt(self, name: str) -> Service:
        """Stop one service: its serve task first, then its sockets."""
        service = self.running.pop(name)
        self.ctx.services.pop(name, None)
        task = self.tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await service.stop()
        return service

    async def launch(self, name: str) -> None:
        """Build one service from ctx.config, bind its sockets, serve it."""
        service = self.builder.build(name, self.ctx)
        try:
            await service.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await service.stop()  # whatever it opened before it failed
            raise
        self.running[name] = service
        self.ctx.services[name] = service
        self.spawn(service)

    def _ordered(self, names: tuple[str, ...]) -> list[str]:
        return [name for name in self.builder.names if name in names]

    async def reload(self) -> bool:
        """Re-read the config file and apply it, or keep the old one (False)."""
        from netboot.reload import plan
        from netboot.validate import validate

        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS=reloading")
        old = self.ctx.config
        source = old.source
        applied = False
        try:
            if source is None:
                log.error("reload refused: the config was not read from a file")
                return False
            log.info("reload: reading %s", source)
            report = await asyncio.to_thread(validate, source)
            for error in report.errors:
                log.error("reload refused: %s", error)
            if report.config is None:
                log.error("reload: keeping the config in use")
                return False
            for problem in report.degraded:  # applied all the same, degraded
                log.error("reload: %s", problem)
            for warning in report.warnings:
                log.warning("reload: %s", warning)
            new = report.config
            decided = plan(old, new, tuple(self.running))
            if decided.refused:
                log.error("reload refused: %s", decided.refused)
                return False
            for line in decided.describe():
                log.info("reload: %s", line)
            self.ctx.config = new
            self.ctx.registry.budget = new.registry  # the budgets apply from the next prune
            self.builder.reconfigure(self.ctx)
            failed = await self._restart(decided.restart, decided.start, old)
            if failed is not None:
                log.error("reload refused: %s; the old config serves on", failed)
                return False
            for name in self._ordered(decided.stop):
                await self.halt(name)
            for name in decided.update:
                # reconfigure(config): take what changed, keep the sockets.
                reconfigure = getattr(self.running[name], "reconfigure", None)
                if reconfigure is not None:
                    reconfigure(new)
            log.info("reload: done; %s", self.status())
            applied = True
            return True
        finally:
            note = "" if applied else " (the last reload was refused: see the log)"
            sd_notify(f"READY=1\nSTATUS={self.status()}{note}")

    async def _restart(
        self, restart: tuple[str, ...], start: tuple[str, ...], old: Config
    ) -> str | None:
        """Restart and start services under ctx.config. If one cannot start (a
        port taken), put back the old config and what ran under it, and say why
        (an old service that cannot come back raises: systemd restarts us)."""
        done: list[str] = []
        for name in self._ordered(restart + start):
            try:
                if name in self.running:
                    await self.halt(name)
                await self.launch(name)
                done.append(name)
            except OSError as exc:
                self.ctx.config = old
                self.builder.reconfigure(self.ctx)
                for back in [*done, name]:
                    if back in self.running:
                        await self.halt(back)
                    if back in restart:
                        await self.launch(back)
                return exc.strerror if exc.errno is not None and exc.strerror else str(exc)
        return None


class _Stop(Exception):
    """Raised inside the TaskGroup to end it on a signal."""
