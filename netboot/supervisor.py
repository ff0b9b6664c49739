"""Starts the enabled services in one asyncio TaskGroup and stops them cleanly.

Order: every service binds its sockets (`start`), then systemd is told READY=1,
then every service's `serve` runs in one TaskGroup beside the registry flusher
until SIGTERM/SIGINT. A service that raises anything ends the group: the
process exits non-zero and systemd restarts it (a bug must not be hidden).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from netboot.config import Config
from netboot.dhcp.leases import LeaseStore
from netboot.health import status_text
from netboot.registry import Registry

# Registry events per transaction: ~20 µs each, so a flush holds the loop ~2 ms.
FLUSH_BATCH = 100

log = logging.getLogger("netboot")


class Service(Protocol):
    name: str

    async def start(self) -> None:
        """Bind sockets; raise OSError with a clear message if that fails."""

    async def serve(self) -> None:
        """Run until cancelled."""

    async def stop(self) -> None:
        """Release sockets; send goodbyes (LLDP shutdown frame, ...)."""


@dataclass
class Context:
    """What the services share: the config, the phone registry and the leases."""

    config: Config
    registry: Registry
    leases: LeaseStore
    services: dict[str, Service] = field(default_factory=dict)
    started: float = field(default_factory=time.time)  # for the uptime
    # A service calls this when what it does changes (DHCP: probing -> serving
    # or refused; an alarm): STATUS= and the log follow.
    status_changed: Callable[[], None] = lambda: None


# (config section, "module:factory"): the factory takes a Context and returns a
# Service. Only sections whose `enabled` is true are built.
SERVICES: list[tuple[str, str]] = [
    ("dhcp", "netboot.dhcp.transport:create"),
    ("tftp", "netboot.tftp.transport:create"),
    ("http", "netboot.http.app:create"),
    ("ftp", "netboot.ftp.server:create"),
    ("lldp", "netboot.lldp.transport:create"),
    ("stun", "netboot.stun.transport:create"),
    ("pnp", "netboot.pnp.transport:create"),
]


def _enabled(config: Config, section: str) -> bool:
    return bool(getattr(getattr(config, section), "enabled", False))


def build_services(ctx: Context) -> list[Service]:
    services: list[Service] = []
    for section, target in SERVICES:
        if not _enabled(ctx.config, section):
            continue
        module_name, _, attr = target.partition(":")
        factory: Callable[[Context], Service] = getattr(importlib.import_module(module_name), attr)
        service = factory(ctx)
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
    registry: Registry, interval: float = 0.25, batch: int = FLUSH_BATCH
) -> None:
    while True:
        await asyncio.sleep(interval)
        # A burst (500 phones heard at once) is written a batch at a time,
        # the other services running in between.
        while registry.flush(limit=batch) == batch:
            await asyncio.sleep(0)


async def run(config: Config) -> int:
    """Run every enabled service until SIGTERM or SIGINT; returns the exit code."""
    registry = Registry(config.appliance.state_dir)
    leases = LeaseStore(config.appliance.state_dir)
    ctx = Context(config, registry, leases)
    services = build_services(ctx)
    if not services:
        log.error("no service is enabled in %s: nothing to do", config.source)
        return 1
    started: list[Service] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for service in services:
            await service.start()
            started.append(service)
        # What start-up built (imported modules, scapy's layer tables) lives as
        # long as the process: out of the collector's sight, a full (gen-2)
        # collection then takes well under 1 ms instead of ~40 ms, a stall
        # every service would feel (a DHCP OFFER waits behind it).
        gc.freeze()
        status = status_text(started)
        log.info("ready: %s", status)
        sd_notify(f"READY=1\nSTATUS={status}")

        def status_changed() -> None:
            text = status_text(started)
            log.info("status: %s", text)
            sd_notify(f"STATUS={text}")

        ctx.status_changed = status_changed

        async def until_stopped() -> None:
            await stop.wait()
            raise _Stop

        # The signal task ends the group by raising _Stop; `except*` takes it
        # without raising anything new (on Python 3.11.2, an exception raised
        # inside `except*` leaves wrapped in an ExceptionGroup, and a clean stop
        # became exit 1 with a traceback).
        try:
            async with asyncio.TaskGroup() as group:
                for service in started:
                    group.create_task(service.serve(), name=service.name)
                group.create_task(_flush_registry(registry), name="registry")
                group.create_task(until_stopped(), name="signals")
        except* _Stop:
            pass
        return 0
    finally:
        sd_notify("STOPPING=1")
        log.info("stopping")
        for service in reversed(started):
            try:
                await service.stop()
            except Exception:
                log.exception("error while stopping %s", service.name)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        registry.close()
        leases.close()


class _Stop(Exception):
    """Raised inside the TaskGroup to end it on a signal."""
