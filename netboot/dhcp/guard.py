"""The rogue-DHCP guard's decisions: when to probe, what a reply means.

Two DHCP servers on one segment hand phones addresses (and provisioning URLs)
at random, so netboot looks for others before it serves and keeps looking:

1. At start it sends a DISCOVER as a client would (RFC 2131 §4.4.1, broadcast
   flag set so that every server's OFFER reaches it) and listens for
   `probe` seconds. The window has to outlast a server's own conflict check:
   dnsmasq pings the address it is about to offer and waits for an echo
   reply for 3 s (`PING_WAIT` in dnsmasq's config.h; measured with dnsmasq
   2.90: its OFFER leaves 3.0 s after the DISCOVER), ISC dhcpd waits
   `ping-timeout`, 1 s by default (dhcpd.conf(5)). The DISCOVER is sent again
   1 s in, in case the first one was lost: both servers answer a repeated
   DISCOVER at once from their ping cache. Default window: 5 s.
2. After the window: with a foreign answer and `authoritative = true` (and not
   `ignore_other_servers`), DHCP is not served; every `RECHECK` seconds a new
   probe round runs, and a round that nobody answers starts DHCP.
3. While running, every reply that reaches this host from another server
   (OFFER, ACK, NAK, or a plain BOOTP reply on UDP port 68) is a sighting,
   and a probe round runs every `interval` seconds so that a server which
   answers clients by unicast (never seen passively) is found too. A sighting
   raises the alarm; DHCP keeps serving (stopping would cut the phones that
   are being served); the alarm clears `hold` seconds after the last sighting.

Servers are keyed by (server identifier, source MAC); at most `MAX_SERVERS`
are kept (the rest are counted, not listed). No I/O here: the transport sends
what `due` returns and hands every BOOTREPLY to `heard`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from netboot.dhcp import codec
from netboot.dhcp.codec import TYPE_NAMES, DhcpMessage
from netboot.wire import format_mac

PROBE = 5.0  # seconds a start-up probe listens (dnsmasq answers after 3 s)
RESEND = (0.0, 1.0)  # offsets into a round at which the DISCOVER goes out
RECHECK = 30.0  # seconds between rounds while DHCP is refused
INTERVAL = 300.0  # seconds between rounds while DHCP runs (0: passive only)
MAX_SERVERS = 32

# What the guard has decided about serving DHCP.
PROBING = "probing"  # the start-up window is open
SERVE = "serve"
REFUSE = "refuse"


@dataclass
class ForeignServer:
    """Another DHCP server heard on the segment."""

    server_id: str  # option 54, else the reply's source address
    mac: str  # the reply's source MAC (a relay's MAC when a relay forwarded it)
    interface: str
    first_seen: float
    last_seen: float
    last_kind: str  # OFFER, ACK, NAK, BOOTREPLY
    offered: str | None  # yiaddr of the last reply
    replies: int = 0

    def describe(self) -> str:
        offered = f", {self.last_kind} {self.offered}" if self.offered else f", {self.last_kind}"
        return f"{self.server_id} (MAC {self.mac}) on {self.interface}{offered}"

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Sighting:
    """What `heard` made of a reply from another server."""

    server: ForeignServer
    new: bool  # first reply from this server (or the first after its alarm cleared)
    answered_probe: bool  # a reply to our own DISCOVER


@dataclass(frozen=True)
class ProbeSend:
    interface: str
    xid: int


@dataclass
class _Round:
    started: float
    xid: int
    sent: int = 0  # how many of RESEND went out
    answered: bool = False


@dataclass
class RogueGuard:
    """Probe timing, the serve/refuse verdict and the alarm (see module doc)."""

    interfaces: tuple[str, ...]
    own_macs: frozenset[bytes]
    own_ips: frozenset[int]
    refuse_when_found: bool  # authoritative and not ignore_other_servers
    probe: float = PROBE
    interval: float = INTERVAL
    recheck: float = RECHECK
    xid_source: Callable[[], int] = field(
        default=lambda: int.from_bytes(os.urandom(4), "big"), repr=False
    )
    verdict: str = PROBING
    servers: dict[tuple[str, str], ForeignServer] = field(default_factory=dict)
    untracked: int = 0  # replies from servers beyond MAX_SERVERS
    replies: int = 0
    _round: _Round | None = None
    _next_round: float = 0.0
    _started: float = 0.0

    @property
    def hold(self) -> float:
        """Seconds after the last sighting that the alarm stays up: long enough
        that a server re-found by every probe round never clears it."""
        return max(900.0, 2 * self.interval + self.probe)

    # ------------------------------------------------------------ timing

    def begin(self, now: float) -> None:
        self._started = now
        if self.probe <= 0:
            self.verdict = SERVE
            self._schedule(now)
            return
        self._round = _Round(now, self.xid_source())

    def _schedule(self, now: float) -> None:
        every = self.recheck if self.verdict == REFUSE else self.interval
        self._next_round = now + every if every > 0 else float("inf")

    def next_wakeup(self) -> float:
        """When `due` has something to do next (inf: nothing planned)."""
        r = self._round
        if r is None:
            return self._next_round
        if r.sent < len(RESEND):
            return r.started + RESEND[r.sent]
        return r.started + self.window

    @property
    def window(self) -> float:
        return self.probe if self.probe > 0 else PROBE

    def due(self, now: float) -> list[ProbeSend]:
        """DISCOVERs to send now; also closes a round whose window is over
        (which may change `verdict`)."""
        r = self._round
        if r is None:
            if now < self._next_round:
                return []
            r = self._round = _Round(now, self.xid_source())
        if now >= r.started + self.window:
            self._close_round(r, now)
            return []
        out: list[ProbeSend] = []
        while r.sent < len(RESEND) and now >= r.started + RESEND[r.sent]:
            r.sent += 1
            if not out:
                out = [ProbeSend(name, r.xid) for name in self.interfaces]
        return out

    def _close_round(self, r: _Round, now: float) -> None:
        self._round = None
        if self.verdict == PROBING:
            found = self.active(now)
            self.verdict = REFUSE if found and self.refuse_when_found else SERVE
        elif self.verdict == REFUSE and not r.answered:
            self.verdict = SERVE  # nobody answered a whole round: it is gone
            self.servers.clear()
        self._schedule(now)

    @property
    def probe_xid(self) -> int | None:
        return self._round.xid if self._round is not None else None

    # ------------------------------------------------------------ replies

    def heard(
        self,
        interface: str,
        src_mac: bytes,
        src_ip: int,
        msg: DhcpMessage,
        now: float,
    ) -> Sighting | None:
        """A BOOTREPLY that reached this host: a sighting if another server sent it."""
        if msg.op != codec.BOOTREPLY:
            return None
        server_ip = msg.server_id or src_ip
        if src_mac in self.own_macs or server_ip in self.own_ips or src_ip in self.own_ips:
            return None
        kind = "BOOTREPLY" if msg.msg_type is None else TYPE_NAMES.get(msg.msg_type, "other")
        if kind not in ("OFFER", "ACK", "NAK", "BOOTREPLY"):
            return None
        self.replies += 1
        r = self._round
        answered = r is not None and msg.xid == r.xid
        if r is not None:
            r.answered = True  # the round found a server, by its probe or passively
        key = (str(IPv4Address(server_ip)), format_mac(src_mac))
        server = self.servers.get(key)
        new = server is None or now - server.last_seen > self.hold
        offered = str(IPv4Address(msg.yiaddr)) if msg.yiaddr else None
        if server is None:
            if len(self.servers) >= MAX_SERVERS:
                self._forget(now)
            if len(self.servers) >= MAX_SERVERS:
                self.untracked += 1
                server = ForeignServer(key[0], key[1], interface, now, now, kind, offered, 1)
                return Sighting(server, new=False, answered_probe=answered)
            server = self.servers[key] = ForeignServer(
                key[0], key[1], interface, now, now, kind, offered
            )
        elif new:
            server.first_seen = now
        server.last_seen = now
        server.last_kind = kind
        server.offered = offered
        server.interface = interface
        server.replies += 1
        return Sighting(server, new=new, answered_probe=answered)

    def _forget(self, now: float) -> None:
        """Drop servers whose alarm has cleared (to make room)."""
        for key in [k for k, s in self.servers.items() if now - s.last_seen > self.hold]:
            del self.servers[key]

    def active(self, now: float) -> list[ForeignServer]:
        """Servers heard within `hold`: the alarm is up while this is not empty."""
        return [s for s in self.servers.values() if now - s.last_seen <= self.hold]

    def cleared(self, now: float) -> list[ForeignServer]:
        """Servers whose alarm just cleared; they are forgotten."""
        gone = [s for s in self.servers.values() if now - s.last_seen > self.hold]
        self._forget(now)
        return gone


def describe(servers: Iterable[ForeignServer]) -> str:
    return "; ".join(s.describe() for s in servers)
