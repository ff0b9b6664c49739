"""SIP PnP on the wire: one UDP socket per served interface (pnp/sockets.py).

The transport reads datagrams, decodes them, lets the engine decide, sends
what it returns, and wakes for the engine's retransmission deadlines. It
catches exactly DecodeError (rate-limited log, metrics.BAD_INPUT, drop) and
does what the engine's `report`/`ended` say an outcome means.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING

from netboot import metrics
from netboot.clock import Clock, LoopClock, Timer
from netboot.pnp import codec
from netboot.pnp.engine import Expired, PnpResponder, Send, allowed_sources, ended, report, site_for
from netboot.pnp.known import KnownMacs
from netboot.pnp.sockets import (
    PNP_GROUP,
    READS_PER_WAKE,
    Sender,
    failed_destinations,
    open_socket,
    served_interfaces,
)
from netboot.ratelog import LogBudget, RateLimitedLog
from netboot.wire import DecodeError

if TYPE_CHECKING:
    from netboot.config import Config
    from netboot.supervisor import Context

log = logging.getLogger("netboot.pnp")


@dataclass
class Link:
    """One served interface: its socket and its responder."""

    name: str
    address: IPv4Address
    sock: socket.socket
    engine: PnpResponder
    out: Sender = field(init=False)

    def __post_init__(self) -> None:
        self.out = Sender(self.sock)


class PnpService:
    name = "pnp"

    def __init__(self, ctx: Context, clock: Clock | None = None) -> None:
        self.ctx, self.clock = ctx, clock or LoopClock()
        self._timer: Timer | None = None
        self.links: list[Link] = []
        self.bad = RateLimitedLog(log)
        self.refusals = RateLimitedLog(log, every=30.0)
        self.expiries = RateLimitedLog(log)
        self.events = LogBudget(log)  # a line per phone, but not per spoofed SUBSCRIBE
        self.known = KnownMacs()
        self._subnets: tuple[IPv4Network, ...] = ()

    async def start(self) -> None:
        config = self.ctx.config
        found = served_interfaces(config)
        self._subnets = tuple(net for _, _, nets in found for net in nets)
        allowed = allowed_sources(config, self._subnets)
        self._refresh_inventory()
        for ifname, address, on_link in found:
            sock = open_socket(ifname, address, config.pnp.port)
            site = site_for(config, address, allowed, on_link)
            self.links.append(Link(ifname, address, sock, PnpResponder(site, self.known.macs)))
            asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, self.links[-1])
        log.info(
            "pnp: listening on %s port %d (group %s), policy %s, answering %s",
            ", ".join(f"{link.name} {link.address}" for link in self.links),
            config.pnp.port,
            PNP_GROUP,
            config.pnp.policy,
            ", ".join(str(n) for n in allowed) or "nobody",
        )

    def reconfigure(self, config: Config) -> None:
        """A reload: URL, policy, rules, allowed sources, rate limit and the
        inventory, on the same sockets; NOTIFYs in flight go on."""
        allowed = allowed_sources(config, self._subnets)
        self.known = KnownMacs()
        self._refresh_inventory()
        for link in self.links:
            link.engine.site = site_for(config, link.address, allowed, link.engine.site.on_link)
            link.engine.known_macs = self.known.macs
        log.info(
            "pnp: reconfigured: policy %s, %d rule(s), answering %s",
            config.pnp.policy,
            len(config.pnp.rules),
            ", ".join(str(n) for n in allowed) or "nobody",
        )

    async def serve(self) -> None:
        self._tick()
        await asyncio.get_running_loop().create_future()  # the timer does the work until cancelled

    def _tick(self) -> None:
        """Retransmissions and expiries due now, then one timer at the next deadline."""
        now = self.clock.now()
        for link in self.links:
            sends, expired = link.engine.poll(now)
            self._sends(link, sends)
            self._ended(expired, now)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [d for link in self.links if (d := link.engine.next_deadline()) is not None]
        if deadlines:
            self._timer = self.clock.call_at(min(deadlines), self._tick)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for link in self.links:
            asyncio.get_running_loop().remove_reader(link.sock.fileno())
            link.out.close()
            link.sock.close()
        self.links.clear()

    def _readable(self, link: Link) -> None:
        for _ in range(READS_PER_WAKE):
            try:
                data, source = link.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # ICMP errors reported on the socket
                log.debug("pnp: recv on %s: %s", link.name, exc)
                continue
            self.receive(link, data, (source[0], source[1]))
        for dest in failed_destinations(link.sock, link.name):
            gone = link.engine.unreachable(dest)
            for _ in gone:
                metrics.LIMITED.labels("pnp", "notify-unreachable").inc()
            self._ended(gone, self.clock.now(), unreachable=True)
        self._tick()

    def _ended(self, gone: list[Expired], now: float, unreachable: bool = False) -> None:
        for notify in gone:
            said = ended(notify, unreachable=unreachable)
            self.expiries.warning(said.key, said.line, now)
            if said.record is not None:
                self.ctx.registry.record(said.record)

    def _lease_of(self, ip: str) -> str | None:
        """The MAC holding a DHCP lease from netboot at `ip` (a real client)."""
        try:
            return self.ctx.leases.mac_for_ip(ip, time.time())
        except ValueError:
            return None

    def receive(self, link: Link, data: bytes, source: tuple[str, int]) -> None:
        now = self.clock.now()
        try:
            msg = codec.decode(data)
            if msg.method == "SUBSCRIBE":
                self._refresh_inventory()
                link.engine.known_macs = self.known.macs
            out = link.engine.receive(msg, source, now, self._lease_of)
        except DecodeError as exc:
            metrics.BAD_INPUT.labels("pnp").inc()
            self.bad.warning(
                "decode", f"pnp: dropped malformed message from {source[0]}:{source[1]}: {exc}", now
            )
            return
        self._sends(link, out.sends)
        said = report(msg.method, out, source)
        if said.refused is not None:
            metrics.PNP_REFUSED.labels(said.refused).inc()
            self.refusals.warning(  # one key per reason: spoofed sources must not grow it
                said.refused, f"pnp: not answering {source[0]}:{source[1]}: {said.refused}", now
            )
        if said.answered:
            metrics.PNP_ANSWERS.inc()
        for line in said.lines:
            self.events.info(now, "%s", line)
        for r in said.records:
            self.ctx.registry.record(r)

    def _sends(self, link: Link, sends: list[Send] | tuple[Send, ...]) -> None:
        for send in sends:
            link.out.send(send, self._send_failed)
        for budget in link.engine.take_limited():
            metrics.LIMITED.labels("pnp", budget).inc()

    def _send_failed(self, send: Send, exc: OSError) -> None:
        where = f"{send.dest[0]}:{send.dest[1]}"
        self.bad.warning("send", f"pnp: cannot send to {where}: {exc}", self.clock.now())

    def _refresh_inventory(self) -> None:
        changed = self.known.refresh(self.ctx.config)
        if changed is not None:
            for error in changed.errors:
                self.bad.warning("inventory", f"pnp: {error}", self.clock.now())
            log.info("pnp: %d known MACs in %s", len(changed.macs), changed.path)


def create(ctx: Context) -> PnpService:
    return PnpService(ctx)
