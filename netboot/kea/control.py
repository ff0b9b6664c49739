"""Kea mode: netboot answers no DHCP; it reads Kea's leases instead.

Kea's control socket (a Unix stream socket, `control-socket` in Dhcp4) takes
one JSON command per connection and answers one JSON object, then closes
(Kea ARM, "Management API"). With `libdhcp_lease_cmds.so` loaded,
`lease4-get-page` pages through the leases (`from` "start", then the last
address seen; result 3 = no more; Kea ARM, "lease_cmds").

Every `kea_poll_interval` seconds each socket in `kea_control_sockets` is read
(at most `kea_max_leases` leases in all); the sockets of an HA pair both hold
the leases (the primary sends each to its standby), and the newest (by cltt)
wins for an address. The result is mirrored into netboot's own lease store,
so everything that asks it (per-MAC file binding, PnP, Action URL, the status
page, `netboot leases`) works unchanged, and a lease new or renewed since the
last read is recorded in the registry as a `dhcp ack`, as netboot's own DHCP
does. A lease gone from Kea (released, reclaimed) becomes `released` in the
mirror. Only addresses inside the configured scopes are taken (when there
are scopes): the mirror's size is bounded by the pools.

`KeaLease`/`parse_lease`/`merge`/`changes` are the engine (no I/O, `now`
passed in); `KeaClient` and `KeaLeaseService` the thin transport.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Any, Protocol

from netboot.events import LeaseAcked
from netboot.health import NOT_RUNNING, RUNNING, STARTING, Health
from netboot.state.leases import Lease
from netboot.statedisk import StateWriteError
from netboot.wire import normalize_mac

if TYPE_CHECKING:
    from netboot.supervisor import Context

log = logging.getLogger("netboot.kea")

PAGE = 1000  # leases per lease4-get-page
MAX_REPLY = 16 * 1024 * 1024  # bytes read from one answer
TIMEOUT = 5.0  # seconds for one command
KEA_EMPTY = 3  # Kea's "empty" result (no lease, no more pages)


class KeaError(Exception):
    """A control socket could not be asked, or answered an error (one line)."""


# ---------------------------------------------------------------- engine


@dataclass(frozen=True, slots=True)
class KeaLease:
    ip: int
    mac: str
    cltt: float  # client last transaction time (epoch seconds)
    valid: int  # valid lifetime, seconds
    state: int  # Kea: 0 default, 1 declined, 2 expired-reclaimed
    hostname: str = ""

    @property
    def expires(self) -> float:
        return self.cltt + self.valid


def parse_lease(item: Mapping[str, Any]) -> KeaLease | None:
    """One entry of `leases` in a lease4-get-page answer, or None when malformed."""
    try:
        ip = int(IPv4Address(str(item["ip-address"])))
        mac = normalize_mac(str(item["hw-address"]))
        cltt = float(item["cltt"])
        valid = int(item["valid-lft"])
        state = int(item.get("state", 0))
    except (KeyError, ValueError, TypeError):
        return None
    hostname = str(item.get("hostname") or "")[:63]
    return KeaLease(ip, mac, cltt, valid, state, hostname)


def merge(sources: Iterable[Iterable[KeaLease]]) -> dict[int, KeaLease]:
    """Address -> the newest lease any socket holds for it (an HA pair's two copies)."""
    out: dict[int, KeaLease] = {}
    for leases in sources:
        for lease in leases:
            held = out.get(lease.ip)
            if held is None or lease.cltt > held.cltt:
                out[lease.ip] = lease
    return out


class LeaseMirror(Protocol):
    """What `changes` reads of netboot's lease store."""

    def get(self, ip: int) -> Lease | None: ...

    def __iter__(self) -> Any: ...


def _netboot_state(lease: KeaLease, now: float) -> str:
    if lease.state == 1:
        return "declined"
    if lease.state == 2 or lease.expires <= now:
        return "expired"
    return "bound"


def changes(
    mirror: LeaseMirror,
    kea: Mapping[int, KeaLease],
    now: float,
    scopes: tuple[IPv4Network, ...] = (),
    complete: bool = True,
) -> tuple[list[Lease], list[Lease]]:
    """(leases to write into the mirror, of which the new or renewed bound
    ones). `complete`: every socket answered in full, so a bound lease of the
    mirror that Kea no longer has is released (not when a socket failed)."""
    write: list[Lease] = []
    acks: list[Lease] = []
    for ip, k in kea.items():
        if scopes and not any(IPv4Address(ip) in net for net in scopes):
            continue
        state = _netboot_state(k, now)
        lease = Lease(ip, k.mac, state, k.expires, k.hostname, "", k.cltt)
        held = mirror.get(ip)
        if held is not None and (held.mac, held.state, held.expires, held.hostname) == (
            lease.mac,
            lease.state,
            lease.expires,
            lease.hostname,
        ):
            continue
        write.append(lease)
        if state == "bound" and (held is None or held.updated < lease.updated or held.mac != k.mac):
            acks.append(lease)
    if complete:
        for held in list(mirror):
            if held.ip not in kea and held.state == "bound" and held.expires > now:
                write.append(Lease(held.ip, held.mac, "released", now, held.hostname, "", now))
    return write, acks


# ---------------------------------------------------------------- transport


class KeaClient:
    """One Kea control socket."""

    def __init__(self, path: str, timeout: float = TIMEOUT) -> None:
        self.path = path
        self.timeout = timeout

    async def command(self, command: str, arguments: Mapping[str, Any] | None = None) -> Any:
        body: dict[str, Any] = {"command": command}
        if arguments:
            body["arguments"] = dict(arguments)
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_unix_connection(self.path)
                try:
                    writer.write(json.dumps(body).encode())
                    await writer.drain()
                    data = bytearray()
                    while len(data) <= MAX_REPLY:
                        chunk = await reader.read(65536)
                        if not chunk:
                            break
                        data += chunk
                        try:
                            answer = json.loads(data)
                        except ValueError:
                            continue
                        break
                    else:
                        raise KeaError(f"{self.path}: answer longer than {MAX_REPLY} bytes")
                finally:
                    writer.close()
        except (OSError, TimeoutError) as exc:
            raise KeaError(f"{self.path}: {exc.strerror or exc or 'timed out'}") from None
        try:
            answer = json.loads(data)
        except ValueError:
            raise KeaError(f"{self.path}: not a JSON answer") from None
        if isinstance(answer, list) and answer:  # via kea-ctrl-agent: one per service
            answer = answer[0]
        if not isinstance(answer, dict):
            raise KeaError(f"{self.path}: unexpected answer")
        return answer

    async def leases(self, budget: int) -> tuple[list[KeaLease], int]:
        """Up to `budget` leases (paged); (leases, malformed entries skipped)."""
        out: list[KeaLease] = []
        bad = 0
        start = "start"
        while len(out) < budget:
            answer = await self.command(
                "lease4-get-page", {"from": start, "limit": min(PAGE, budget - len(out))}
            )
            result = answer.get("result")
            if result == KEA_EMPTY:
                break
            if result != 0:
                raise KeaError(f"{self.path}: lease4-get-page: {answer.get('text', result)}")
            arguments = answer.get("arguments")
            items = arguments.get("leases") if isinstance(arguments, dict) else None
            if not isinstance(items, list) or not items:
                break
            for item in items:
                lease = parse_lease(item) if isinstance(item, dict) else None
                if lease is None:
                    bad += 1
                else:
                    out.append(lease)
            last = items[-1].get("ip-address") if isinstance(items[-1], dict) else None
            if len(items) < PAGE or not isinstance(last, str):
                break
            start = last
        return out, bad


class KeaLeaseService:
    """The `dhcp` service in kea mode: polls the sockets, mirrors the leases."""

    name = "dhcp"

    def __init__(self, ctx: Context, clock: Any = time.time) -> None:
        self.ctx = ctx
        self.clock = clock
        self.health = Health(STARTING, "reading Kea's leases")
        self.failing: dict[str, str] = {}
        self.polls = 0

    @property
    def clients(self) -> list[KeaClient]:
        return [KeaClient(p) for p in self.ctx.config.dhcp.kea_control_sockets]

    async def start(self) -> None:
        return None

    def reconfigure(self, config: Any) -> None:
        return None  # the next poll reads the new sockets and scopes

    async def poll(self) -> int:
        """One read of every socket into the mirror; returns the leases written."""
        dhcp = self.ctx.config.dhcp
        budget = dhcp.kea_max_leases
        sources: list[list[KeaLease]] = []
        complete = True
        answered = 0
        for client in self.clients:
            try:
                leases, bad = await client.leases(budget)
            except KeaError as exc:
                complete = False
                if self.failing.get(client.path) != str(exc):
                    log.warning("kea: %s", exc)
                self.failing[client.path] = str(exc)
                continue
            if client.path in self.failing:
                log.info("kea: %s answers again", client.path)
                del self.failing[client.path]
            answered += 1
            if bad:
                log.warning("kea: %s: %d malformed lease(s) skipped", client.path, bad)
            budget -= len(leases)
            if budget <= 0:
                log.warning("kea: more than dhcp.kea_max_leases leases: the rest unread")
                complete = False
            sources.append(leases)
        now = self.clock()
        scopes = tuple(s.subnet for s in dhcp.scopes)
        store = self.ctx.leases
        write, acks = changes(store, merge(sources), now, scopes, complete and answered > 0)
        for lease in write:
            store.stage(lease)
        batch = store.take_staged()
        if batch:
            try:
                await asyncio.to_thread(store.commit, batch)
            except StateWriteError as exc:
                # The mirror is not on disk: staged again, written with the next poll.
                for lease in batch:
                    store.stage(lease)
                log.warning("kea: %d lease(s) not written to state_dir: %s", len(batch), exc)
        for lease in acks:
            ip = str(lease.address)
            self.ctx.registry.record(
                LeaseAcked(mac=lease.mac, ip=ip, state="kea", hostname=lease.hostname or None),
                now=lease.updated,
            )
            log.info("dhcp: lease %s to %s (from Kea)", ip, lease.mac)
        total = len(self.ctx.config.dhcp.kea_control_sockets)
        if answered == 0:
            self.health = Health(NOT_RUNNING, "no Kea control socket answers")
        elif answered < total:
            self.health = Health(
                RUNNING,
                f"Kea leases from {answered} of {total} sockets",
                alarm=f"Kea control socket not answering: {', '.join(sorted(self.failing))}",
            )
        else:
            self.health = Health(RUNNING, f"Kea leases from {answered} socket(s)")
        self.polls += 1
        return len(write)

    async def serve(self) -> None:
        first = True
        while True:
            before = self.health
            await self.poll()
            if first or before != self.health:
                self.ctx.status_changed()
                first = False
            await asyncio.sleep(self.ctx.config.dhcp.kea_poll_interval)

    async def stop(self) -> None:
        return None


def create(ctx: Context) -> KeaLeaseService:
    return KeaLeaseService(ctx)
