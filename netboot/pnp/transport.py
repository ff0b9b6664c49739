"""SIP PnP on the wire: one UDP socket per served interface.

Each socket is bound to 0.0.0.0:<pnp.port> and to its device
(SO_BINDTODEVICE), and joined to 224.0.1.75 with the interface's address
(IP_ADD_MEMBERSHIP; IP_MULTICAST_IF for anything sent). Binding the group
address instead would make the unicast answers' source wrong and unicast
SUBSCRIBEs unreachable. The phones' multicast SUBSCRIBEs and unicast ones
arrive on the same socket; every answer is unicast from our own address.

The transport reads datagrams, decodes them, lets the engine decide, sends
what it returns, and wakes for the engine's retransmission deadlines. It
catches exactly DecodeError (rate-limited log, metrics.BAD_INPUT, drop) and
reports what happened per phone to the registry.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING

from netboot import metrics, netif
from netboot.clock import Clock, LoopClock, Timer
from netboot.events import PnpTimedOut
from netboot.pnp import codec
from netboot.pnp.engine import (
    Outcome,
    PnpResponder,
    Send,
    allowed_sources,
    report,
    site_for,
)
from netboot.provisioning.inventory import InventoryCache, load_inventory
from netboot.ratelog import LogBudget, RateLimitedLog
from netboot.sockbuf import set_receive_buffer, set_send_buffer
from netboot.wire import DecodeError

if TYPE_CHECKING:
    from netboot.config import Config
    from netboot.supervisor import Context

log = logging.getLogger("netboot.pnp")

PNP_GROUP = "224.0.1.75"
READS_PER_WAKE = 64
MAX_BACKLOG = 4096  # sends waiting for room in a full socket buffer (oldest dropped)
IP_RECVERR = 11  # <linux/in.h>: ICMP errors of an unconnected socket, on its error queue
SOCK_EE_OFFENDER = 16  # sizeof(struct sock_extended_err)


@dataclass
class Link:
    """One served interface: its socket and its responder."""

    name: str
    address: IPv4Address
    sock: socket.socket
    engine: PnpResponder
    backlog: collections.deque[Send] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_BACKLOG)
    )


class PnpService:
    name = "pnp"

    def __init__(self, ctx: Context, clock: Clock | None = None) -> None:
        self.ctx = ctx
        self.clock = clock or LoopClock()
        self._timer: Timer | None = None
        self.links: list[Link] = []
        self.bad = RateLimitedLog(log)
        self.refusals = RateLimitedLog(log, every=30.0)
        self.expiries = RateLimitedLog(log)
        self.events = LogBudget(log)  # a line per phone, but not per spoofed SUBSCRIBE
        self._inventory = InventoryCache(None)
        self._known: frozenset[str] = frozenset()
        self._subnets: tuple[IPv4Network, ...] = ()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        config = self.ctx.config
        pnp = config.pnp
        names = config.interfaces
        found: list[tuple[str, IPv4Address, list[IPv4Network]]] = []
        for ifname in names:
            nets = netif.addresses(ifname)
            configured = config.server_address(ifname)
            if configured is not None:
                address = configured
            elif nets:
                address = nets[0].ip
            else:
                raise OSError(f"pnp: interface {ifname} has no IPv4 address")
            found.append((ifname, address, [n.network for n in nets]))
        self._subnets = tuple(net for _, _, nets in found for net in nets)
        allowed = self._allowed(config)
        self._refresh_inventory()
        nets_of = {ifname: nets for ifname, _, nets in found}
        for ifname, address, _ in found:
            sock = self._open(ifname, address, pnp.port)
            engine = PnpResponder(
                site_for(config, address, allowed, tuple(nets_of[ifname])),
                known_macs=self._known,
            )
            self.links.append(Link(ifname, address, sock, engine))
        loop = asyncio.get_running_loop()
        for link in self.links:
            loop.add_reader(link.sock.fileno(), self._readable, link)
        log.info(
            "pnp: listening on %s port %d (group %s), policy %s, answering %s",
            ", ".join(f"{link.name} {link.address}" for link in self.links),
            pnp.port,
            PNP_GROUP,
            pnp.policy,
            ", ".join(str(n) for n in allowed) or "nobody",
        )

    def _allowed(self, config: Config) -> tuple[IPv4Network, ...]:
        return allowed_sources(config, self._subnets)

    def reconfigure(self, config: Config) -> None:
        """A reload: URL, policy, rules, allowed sources, rate limit and the
        inventory, on the same sockets; NOTIFYs in flight go on."""
        allowed = self._allowed(config)
        self._inventory = InventoryCache(None)
        self._known = frozenset()
        self._refresh_inventory()
        for link in self.links:
            link.engine.site = site_for(config, link.address, allowed, link.engine.site.on_link)
            link.engine.known_macs = self._known
        log.info(
            "pnp: reconfigured: policy %s, %d rule(s), answering %s",
            config.pnp.policy,
            len(config.pnp.rules),
            ", ".join(str(n) for n in allowed) or "nobody",
        )

    @staticmethod
    def _open(ifname: str, address: IPv4Address, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            sock.bind(("0.0.0.0", port))
            set_receive_buffer(sock)
            set_send_buffer(sock)
            group = socket.inet_aton(PNP_GROUP) + address.packed
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, address.packed)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(f"pnp: cannot listen on {ifname} UDP port {port}: {exc}") from exc
        return sock

    async def serve(self) -> None:
        self._tick()
        await asyncio.get_running_loop().create_future()  # the timer does the work until cancelled

    def _tick(self) -> None:
        """Retransmissions and expiries due now, then one timer at the next deadline."""
        self._poll()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadlines = [d for link in self.links if (d := link.engine.next_deadline()) is not None]
        if deadlines:
            self._timer = self.clock.call_at(min(deadlines), self._tick)

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        for link in self.links:
            loop.remove_reader(link.sock.fileno())
            if link.backlog:
                loop.remove_writer(link.sock.fileno())
            link.sock.close()
        self.links.clear()

    # ------------------------------------------------------------ work

    def _poll(self) -> None:
        now = self.clock.now()
        for link in self.links:
            sends, expired = link.engine.poll(now)
            for send in sends:
                self._send(link, send)
            self._count_limited(link)
            for gone in expired:
                self.expiries.warning(
                    "expired",
                    f"pnp: NOTIFY to {gone.dest[0]}:{gone.dest[1]} ({gone.mac or 'no MAC'})"
                    " got no answer in 32 s",
                    now,
                )
                if gone.mac:
                    self.ctx.registry.record(
                        PnpTimedOut(mac=gone.mac, url=gone.url, to=f"{gone.dest[0]}:{gone.dest[1]}")
                    )

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
        self._read_errors(link)
        self._tick()

    def _read_errors(self, link: Link) -> None:
        """The ICMP errors queued on the socket (IP_RECVERR): each names the
        destination of the datagram that failed; its NOTIFY ends there.
        Drained every time, or the queue would keep the socket readable."""
        for _ in range(READS_PER_WAKE):
            try:
                _, _, _, dest = link.sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("pnp: error queue on %s: %s", link.name, exc)
                return
            if not isinstance(dest, tuple) or len(dest) < 2:
                continue
            gone = link.engine.unreachable((str(dest[0]), int(dest[1])))
            for notify in gone:
                metrics.LIMITED.labels("pnp", "notify-unreachable").inc()
                self.expiries.warning(
                    "unreachable",
                    f"pnp: {notify.dest[0]}:{notify.dest[1]} ({notify.mac or 'no MAC'}) is"
                    " unreachable (ICMP): NOTIFY given up",
                    self.clock.now(),
                )

    def _count_limited(self, link: Link) -> None:
        for budget in link.engine.take_limited():
            metrics.LIMITED.labels("pnp", budget).inc()

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
                link.engine.known_macs = self._known
            outcome = link.engine.receive(msg, source, now, self._lease_of)
        except DecodeError as exc:
            metrics.BAD_INPUT.labels("pnp").inc()
            self.bad.warning(
                "decode", f"pnp: dropped malformed message from {source[0]}:{source[1]}: {exc}", now
            )
            return
        for send in outcome.sends:
            self._send(link, send)
        self._count_limited(link)
        self._report(msg.method, outcome, source, now)

    def _send(self, link: Link, send: Send) -> None:
        if link.backlog:  # keep the order: after what already waits
            self._queue(link, send)
            return
        try:
            link.sock.sendto(send.data, send.dest)
        except BlockingIOError:
            self._queue(link, send)
        except OSError as exc:
            self.bad.warning(
                "send",
                f"pnp: cannot send to {send.dest[0]}:{send.dest[1]}: {exc}",
                self.clock.now(),
            )

    def _queue(self, link: Link, send: Send) -> None:
        """The socket's send budget is spent (datagrams to unresolved spoofed
        addresses hold it for seconds): wait for room instead of dropping."""
        if len(link.backlog) == link.backlog.maxlen:
            metrics.LIMITED.labels("pnp", "send-backlog-dropped").inc()
        if not link.backlog:
            asyncio.get_running_loop().add_writer(link.sock.fileno(), self._writable, link)
        link.backlog.append(send)

    def _writable(self, link: Link) -> None:
        while link.backlog:
            send = link.backlog[0]
            try:
                link.sock.sendto(send.data, send.dest)
            except BlockingIOError:
                return
            except OSError as exc:
                self.bad.warning(
                    "send",
                    f"pnp: cannot send to {send.dest[0]}:{send.dest[1]}: {exc}",
                    self.clock.now(),
                )
            link.backlog.popleft()
        asyncio.get_running_loop().remove_writer(link.sock.fileno())

    def _report(
        self, method: str | None, out: Outcome, source: tuple[str, int], now: float
    ) -> None:
        """Do what `report` (the engine) says one outcome means."""
        said = report(method, out, source)
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

    def _refresh_inventory(self) -> None:
        """Re-read the inventory's MACs when the file changed (policy "known");
        the rows are parsed and checked as everywhere (netboot.provisioning.inventory)."""
        path = self.ctx.config.phones.inventory
        if self.ctx.config.pnp.policy != "known" or path is None:
            return
        if self._inventory.path != path:
            self._inventory = InventoryCache(path)
        inventory = self._inventory.get()
        if inventory.macs == self._known:
            return
        self._known = inventory.macs
        for error in inventory.errors:
            self.bad.warning("inventory", f"pnp: {error}", self.clock.now())
        log.info("pnp: %d known MACs in %s", len(self._known), path)


def check(config: Config) -> list[str]:
    """`netboot check` problems of the PnP section that need more than the file."""
    pnp = config.pnp
    if not pnp.enabled:
        return []
    problems: list[str] = []
    if pnp.policy == "known":
        path = config.phones.inventory
        if path is None:
            problems.append(
                'pnp.policy: "known" needs phones.inventory (no phone would be answered)'
            )
        else:
            if not load_inventory(path).macs:
                problems.append(f'pnp.policy: "known" but {path} lists no valid phone')
    if pnp.allowed_sources == ():
        problems.append("pnp.allowed_sources: empty, so no phone is answered")
    return problems


def create(ctx: Context) -> PnpService:
    return PnpService(ctx)
