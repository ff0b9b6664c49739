"""DHCP's decisions around the engine, without I/O: what the transport runs.

The transport (`dhcp/transport.py`) reads frames and hands them here; this
module decodes them, asks `DhcpEngine` and `RogueGuard`, and tells the
transport what to send through `DhcpIO`. Time comes from a `netboot.clock`
`Clock` (monotonic: the guard's windows, the conflict checks' deadlines and
the housekeeping tick; a Pi has no RTC and its wall clock jumps when NTP first
syncs) and `wall` (the engine's lease times). Tests drive it with a
`SteppedClock` and a recording `DhcpIO`.

What is decided here:
- the rogue-DHCP guard: when to probe, what a sighting means, its log lines,
  the health and alarm text, when to start serving;
- conflict checks (RFC 2131 §4.4.1) around `ProbeTable`: one probe per
  address, ARP on our own link or ICMP echo through a relay, requests
  decided again once the check is over, quarantine of an address in use;
- group commit: ACKs wait for their lease to reach disk (`take_commit`,
  `committed`); when a commit fails none of them is sent, each is recorded
  as `AckWithheld` and the leases are staged again (`not_durable`);
- a receive failure (ENETDOWN when the link drops): one line per 10 s per
  socket, and a line when it works again;
- the registry event and log line of each decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Protocol

from prometheus_client import Counter

from netboot import metrics
from netboot.clock import Clock, Timer
from netboot.dhcp import codec
from netboot.dhcp.codec import TYPE_NAMES, DhcpMessage
from netboot.dhcp.engine import Decision, DhcpEngine, Origin, Reply
from netboot.dhcp.guard import PROBING, REFUSE, SERVE, ProbeSend, RogueGuard, Sighting, describe
from netboot.dhcp.probes import ProbeTable
from netboot.events import AckWithheld, AddressConflict, Event, LeaseAcked
from netboot.health import NOT_RUNNING, RUNNING, STARTING, Health
from netboot.ratelog import RateLimitedLog
from netboot.state.leases import Lease, LeaseStore
from netboot.statedisk import HEALTH, StateWriteError
from netboot.wire import DecodeError, format_mac

if TYPE_CHECKING:
    from netboot.config import Config, DhcpConfig

log = logging.getLogger("netboot.dhcp")

GUARD_TICK = 30.0  # the guard wakes at least this often (alarm expiry)
HOUSEKEEPING = 5.0  # seconds between lease expiry runs
MAX_REHANDLE = 3  # conflict checks one request may wait on

Waiting = tuple[DhcpMessage, int, Origin | None]  # a request, its rounds, where it came from


class Recorder(Protocol):
    def record(self, event: Event) -> object: ...


class DhcpIO(Protocol):
    """What the transport does for the service. The send methods raise
    OSError when the kernel refuses; the service logs it."""

    def send(self, reply: Reply) -> None: ...

    def send_guard(self, interface: str, frame: bytes) -> None: ...

    def send_arp(self, interface: str, frame: bytes) -> None: ...

    def send_icmp(self, ip: int, packet: bytes) -> None: ...

    def open(self) -> None:
        """The guard lets DHCP serve: open the serving sockets."""

    def wake(self) -> None:
        """Leases are staged or ACKs wait: run a commit (`take_commit`)."""

    def status_changed(self) -> None: ...


class DhcpCore:
    def __init__(
        self,
        config: DhcpConfig,
        provisioning_url: str,
        leases: LeaseStore,
        registry: Recorder,
        links: dict[str, tuple[bytes, int]],  # interface -> (MAC, server address)
        io: DhcpIO,
        clock: Clock,
        wall: Callable[[], float],
        icmp_id: int = 0,
    ) -> None:
        self.config = config
        self.leases = leases
        self.registry = registry
        self.links = links
        self.io = io
        self.clock = clock
        self.wall = wall
        server_ips = {name: ip for name, (_, ip) in links.items()}
        self.engine = DhcpEngine(config, provisioning_url, leases, server_ips)
        self.guard = RogueGuard(
            tuple(links),
            frozenset(mac for mac, _ in links.values()),
            frozenset(server_ips.values()),
            refuse_when_found=config.authoritative and not config.ignore_other_servers,
            probe=float(config.guard_probe),
            interval=float(config.guard_interval),
        )
        self.bad = RateLimitedLog(log)
        self.alarm_log = RateLimitedLog(log, every=60.0)
        self.health = Health(STARTING)
        self.serving = False
        self.down: set[str] = set()  # interfaces whose last receive failed
        # Messages in and out by (direction, type), added to DHCP_MESSAGES once
        # per batch (`_count`) instead of per message (a locked increment each).
        self._tally: dict[tuple[str, int], int] = {}
        self._batched = False  # in a batch: `flush` or `committed` counts
        # Conflict checks in flight (ARP / ICMP echo), on the monotonic clock.
        self.probes: ProbeTable[Waiting] = ProbeTable(config.ping_timeout_ms / 1000)
        self._probe_timer: Timer | None = None
        self._probe_at = 0.0
        self._guard_timer: Timer | None = None
        self._housekeeping_timer: Timer | None = None
        self.icmp_id = icmp_id & 0xFFFF
        self._icmp_seq = 0
        # Replies waiting for their lease to reach disk, with the registry event
        # recorded once it has (or, when it cannot, an `ack-withheld` event).
        self.waiting: list[tuple[Reply, str, Decision]] = []

    # ------------------------------------------------------------ guard

    def start(self) -> None:
        """The first guard probe goes out; DHCP serves at once when there is
        no start-up window (guard_probe = 0)."""
        self.guard.begin(self.clock.now())
        self._guard_step()
        if self.guard.verdict == SERVE:
            self._serve()
        else:
            self.health = Health(
                STARTING, f"probing for other DHCP servers for {self.config.guard_probe} s"
            )
        self._arm_guard()

    def stop(self) -> None:
        for timer in (self._guard_timer, self._probe_timer, self._housekeeping_timer):
            if timer is not None:
                timer.cancel()
        self._guard_timer = self._probe_timer = self._housekeeping_timer = None

    def _serve(self) -> None:
        self.io.open()
        self.serving = True
        served = ", ".join(
            f"{s.interface} {s.subnet} pool {s.pool_start}-{s.pool_end}" for s in self.config.scopes
        )
        self.health = Health(RUNNING, served, self.alarm_text())
        log.info("dhcp: serving %s", served)
        self._housekeeping_timer = self.clock.call_at(
            self.clock.now() + HOUSEKEEPING, self._housekeeping
        )

    def _send_probe(self, probe: ProbeSend) -> None:
        """A DISCOVER as a client would send it (RFC 2131 §4.4.1), broadcast
        flag set so that every server's OFFER reaches us."""
        mac = self.links[probe.interface][0]
        discover = DhcpMessage(
            op=codec.BOOTREQUEST,
            xid=probe.xid,
            chaddr=mac,
            flags=codec.BROADCAST_FLAG,
            options={53: bytes((codec.DISCOVER,)), 55: bytes((1, 3, 6, 66)), 60: b"netboot-probe"},
        )
        frame = codec.build_udp_frame(
            mac, codec.BROADCAST_MAC, 0, 0xFFFFFFFF, 68, 67, codec.encode(discover)
        )
        try:
            self.io.send_guard(probe.interface, frame)
        except OSError as exc:
            self.bad.warning(
                "probe-send", f"dhcp: probe on {probe.interface} failed: {exc}", self.clock.now()
            )

    def guard_frame(self, interface: str, frame: bytes) -> None:
        """A BOOTREPLY to port 68 seen on `interface`."""
        now = self.clock.now()
        try:
            udp = codec.parse_udp_frame(frame)
            msg = codec.decode(udp.payload)
        except DecodeError:
            return  # the guard only looks for servers; malformed replies are not ours
        sighting = self.guard.heard(interface, udp.src_mac, udp.src_ip, msg, now)
        if sighting is not None:
            self._sighted(sighting, now)

    def _sighted(self, sighting: Sighting, now: float) -> None:
        server = sighting.server
        metrics.DHCP_ROGUE_REPLIES.inc()
        metrics.DHCP_ROGUE_SERVERS.set(len(self.guard.active(now)))
        if self.guard.verdict == PROBING:
            if sighting.new:
                log.error("ANOTHER DHCP SERVER IS ON THE SEGMENT: %s", server.describe())
            return
        if self.serving:
            self.alarm_log.warning(
                f"rogue {server.server_id} {server.mac}",
                f"dhcp: ANOTHER DHCP SERVER IS ON THE SEGMENT: {server.describe()}",
                now,
            )
            if sighting.new:
                self.health = Health(RUNNING, self.health.detail, self.alarm_text())
                self.io.status_changed()
        else:
            self.alarm_log.warning(
                f"rogue {server.server_id} {server.mac}",
                f"dhcp: still not serving: another DHCP server answers: {server.describe()}",
                now,
            )

    def rogue_servers(self) -> list[dict[str, object]]:
        """The other DHCP servers behind the alarm, their times on the wall clock."""
        mono, wall = self.clock.now(), self.wall()
        out = []
        for server in self.guard.active(mono):
            entry = server.as_dict()
            entry["first_seen"] = wall - (mono - server.first_seen)
            entry["last_seen"] = wall - (mono - server.last_seen)
            out.append(entry)
        return out

    def alarm_text(self) -> str:
        active = self.guard.active(self.clock.now())
        if not active:
            return ""
        return "another DHCP server on the segment: " + describe(active)

    def _guard_step(self) -> None:
        """Send the DISCOVERs that are due and act on a changed verdict."""
        now = self.clock.now()
        before = self.guard.verdict
        for probe in self.guard.due(now):
            self._send_probe(probe)
        after = self.guard.verdict
        if after == before:
            return
        found = self.guard.active(now)
        if after == REFUSE:
            log.error(
                "dhcp: not serving while another DHCP server answers (authoritative = true); "
                "remove it, or set dhcp.ignore_other_servers = true to serve anyway"
            )
            self.health = Health(
                NOT_RUNNING, "refused: another DHCP server answers: " + describe(found)
            )
            self.io.status_changed()
            return
        if before == REFUSE:
            log.warning("dhcp: the other DHCP server is gone; serving now")
        elif found:
            log.error(
                "dhcp: serving although another DHCP server answers (%s)",
                "ignore_other_servers = true"
                if self.config.ignore_other_servers
                else "authoritative = false",
            )
        self._serve()
        self.io.status_changed()

    def _arm_guard(self) -> None:
        now = self.clock.now()
        delay = min(max(self.guard.next_wakeup() - now, 0.0), GUARD_TICK)
        self._guard_timer = self.clock.call_at(now + delay, self._guard_tick)

    def _guard_tick(self) -> None:
        self._guard_step()
        now = self.clock.now()
        if self.guard.cleared(now) and not self.guard.active(now):
            log.warning(
                "dhcp: no reply from another DHCP server for %.0f s: alarm cleared",
                self.guard.hold,
            )
            metrics.DHCP_ROGUE_SERVERS.set(0)
            if self.serving:
                self.health = Health(RUNNING, self.health.detail)
                self.io.status_changed()
        self._arm_guard()

    # ------------------------------------------------------------ link state

    def recv_failed(self, interface: str, what: str, exc: OSError) -> None:
        """ENETDOWN and the like when the link drops: one line per 10 s per
        socket, no traceback; the socket is kept and serving resumes when the
        link comes back (`recv_ok`)."""
        self.down.add(interface)
        metrics.LIMITED.labels("dhcp", "receive-failed").inc()
        self.bad.warning(
            f"recv:{interface}:{what}",
            f"dhcp: cannot receive {what} on {interface}: {exc.strerror or exc} (link down?)",
            self.wall(),
        )

    def recv_ok(self, interface: str) -> None:
        if interface in self.down:
            self.down.discard(interface)
            log.warning("dhcp: receiving on %s again", interface)

    # ------------------------------------------------------------ requests

    def receive(self, interface: str, own_mac: bytes, frame: bytes) -> None:
        """A frame to port 67 on `interface` (whose MAC is `own_mac`)."""
        now = self.wall()
        try:
            udp = codec.parse_udp_frame(frame)
            msg = codec.decode(udp.payload)
        except DecodeError as exc:
            metrics.BAD_INPUT.labels("dhcp").inc()
            self.bad.warning("decode", f"dhcp: dropped malformed packet on {interface}: {exc}", now)
            return
        if udp.src_mac == own_mac:
            return  # our own broadcast
        key = ("in", msg.msg_type or 0)
        self._tally[key] = self._tally.get(key, 0) + 1
        self._batched = True
        self._decide(interface, msg, now, 0, Origin(format_mac(udp.src_mac), udp.src_ip))

    def flush(self) -> None:
        """After a batch of requests: commit what they staged."""
        if self.leases.staged:
            self.io.wake()
        self._count()

    def _count(self) -> None:
        self._batched = False
        tally = self._tally
        if tally:
            for (direction, kind), n in tally.items():
                _counted(direction, kind).inc(n)
            tally.clear()

    def _decide(
        self, interface: str, msg: DhcpMessage, now: float, rounds: int, origin: Origin | None
    ) -> None:
        engine = self.engine
        reclaimed = engine.reclaimed
        decision = engine.handle(msg, interface, now, origin)
        if engine.reclaimed != reclaimed:
            metrics.LIMITED.labels("dhcp", "offer-reclaimed").inc()
            self.bad.warning(
                "reclaim", "dhcp: pool full: took back the oldest unanswered offer", now
            )
        if decision.limited is not None:
            metrics.LIMITED.labels("dhcp", decision.limited).inc()
            self.bad.warning(
                f"limited:{decision.limited}",
                f"dhcp: not answering {TYPE_NAMES.get(msg.msg_type or 0)} from {msg.mac}"
                f" on {interface}: {decision.note}",
                now,
            )
            return
        if decision.probe is not None and rounds < MAX_REHANDLE:
            self._start_probe(interface, msg, decision.probe, rounds, origin)
            return
        reply = decision.reply
        if reply is None:
            self._record(msg.mac, decision)
            if decision.note:
                log.debug(
                    "dhcp %s %s: %s", TYPE_NAMES.get(msg.msg_type or 0), msg.mac, decision.note
                )
        elif reply.durable:
            self.waiting.append((reply, msg.mac, decision))
            self.io.wake()
        else:
            self._record(msg.mac, decision)
            self.send(reply)

    def send(self, reply: Reply) -> None:
        kind = reply.message.msg_type or 0
        key = ("out", kind)
        self._tally[key] = self._tally.get(key, 0) + 1
        if not self._batched:
            self._count()
        try:
            self.io.send(reply)
        except OSError as exc:
            self.bad.warning(
                "send",
                f"dhcp: sending {TYPE_NAMES.get(kind)} to {reply.route} failed: {exc}",
                self.wall(),
            )

    def _record(self, mac: str, decision: Decision) -> None:
        """The decision's registry event, and the INFO line of a lease (once
        its lease is on disk, for an ACK)."""
        event = decision.event
        if event is None:
            return
        self.registry.record(event)
        if isinstance(event, LeaseAcked):
            log.info(
                "dhcp: lease %s to %s (%s) vendor %r class %s",
                event.ip,
                mac,
                event.state,
                event.vendor_class or "",
                event.class_name or "-",
            )

    # ------------------------------------------------------------ conflict checks

    def _start_probe(
        self, interface: str, msg: DhcpMessage, ip: int, rounds: int, origin: Origin | None
    ) -> None:
        now = self.clock.now()
        first = self.probes.start(ip, interface, (msg, rounds, origin), now)
        if first is None:  # too many checks in flight: offer without one
            metrics.LIMITED.labels("dhcp", "probes").inc()
            waiting = [(msg, rounds, origin)]
            self.clock.call_at(now, lambda: self._checked(ip, None, interface, waiting))
            return
        if not first:
            return
        try:
            if msg.giaddr:
                self._icmp_seq = (self._icmp_seq + 1) & 0xFFFF
                self.io.send_icmp(ip, codec.build_icmp_echo(self.icmp_id, self._icmp_seq))
            else:
                mac, server_ip = self.links[interface]
                self.io.send_arp(interface, codec.build_arp_request(mac, server_ip, ip))
        except OSError as exc:
            # Cannot probe (no route to the relay's subnet, ...): offer anyway.
            self.bad.warning(
                "probe", f"dhcp: probe for {IPv4Address(ip)} failed: {exc}", self.wall()
            )
            self.clock.call_at(now, lambda: self._probe_done(ip, None))
            return
        self._arm_probes()

    def _arm_probes(self) -> None:
        """One timer, for the earliest deadline of the checks in flight."""
        deadline = self.probes.next_deadline()
        timer = self._probe_timer
        if timer is not None and deadline is not None and self._probe_at <= deadline:
            return
        if timer is not None:
            timer.cancel()
        self._probe_timer = None
        if deadline is not None:
            self._probe_at = deadline
            self._probe_timer = self.clock.call_at(deadline, self._probes_due)

    def _probes_due(self) -> None:
        self._probe_timer = None
        for ip, check in self.probes.expired(self.clock.now()):
            self._checked(ip, None, check.interface, check.waiting)
        self._arm_probes()

    def icmp_reply(self, source: int, packet: bytes) -> None:
        """An ICMP packet from `source` on the raw ICMP socket."""
        if codec.icmp_echo_reply_id(packet) == self.icmp_id and source in self.probes:
            self._probe_done(source, b"\x00" * 6)  # answered through a relay: MAC unknown

    def arp_frame(self, interface: str, frame: bytes) -> None:
        """An ARP reply on `interface`: the answer to a conflict check?"""
        try:
            arp = codec.parse_arp(frame)
        except DecodeError:
            return
        if arp.sender_ip in self.probes:
            self._probe_done(arp.sender_ip, arp.sender_mac)

    def _probe_done(self, ip: int, in_use_by: bytes | None) -> None:
        check = self.probes.finish(ip)
        if check is not None:
            self._checked(ip, in_use_by, check.interface, check.waiting)

    def _checked(
        self, ip: int, in_use_by: bytes | None, interface: str, waiting: list[Waiting]
    ) -> None:
        now = self.wall()
        self.engine.probe_result(ip, in_use_by, now)
        if in_use_by is not None:
            log.warning(
                "dhcp: %s is in use by %s without a lease: quarantined",
                IPv4Address(ip),
                format_mac(in_use_by),
            )
            self.registry.record(
                AddressConflict(mac=format_mac(in_use_by), ip=str(IPv4Address(ip)))
            )
        for msg, rounds, origin in waiting:
            self._decide(interface, msg, now, rounds + 1, origin)
        self.flush()

    # ------------------------------------------------------------ group commit

    def take_commit(self) -> tuple[list[Lease], list[tuple[Reply, str, Decision]]]:
        """The leases staged since the last commit and the replies that wait on them."""
        replies, self.waiting = self.waiting, []
        return self.leases.take_staged(), replies

    def committed(self, batch: list[Lease], replies: list[tuple[Reply, str, Decision]]) -> None:
        """The batch is on disk: every reply that waited on it goes out."""
        if batch and "leases" in HEALTH.problems:
            HEALTH.ok("leases")
        self._batched = True
        for reply, mac, decision in replies:
            self._record(mac, decision)
            self.send(reply)
        self._count()

    def not_durable(
        self, batch: list[Lease], replies: list[tuple[Reply, str, Decision]], exc: StateWriteError
    ) -> None:
        """The batch's leases could not reach disk: none of the ACKs that wait on
        them is sent (the client asks again), and the leases are staged again
        (unless changed since) so the next commit retries them. The rest of
        DHCP, and every other service, keeps running."""
        leases = self.leases
        for lease in batch:
            if leases.get(lease.ip) == lease:
                leases.stage(lease)
        acks = len(replies)
        metrics.DHCP_ACKS_WITHHELD.inc(acks)
        for _reply, mac, decision in replies:
            ip = decision.event.ip if isinstance(decision.event, LeaseAcked) else None
            self.registry.record(AckWithheld(mac=mac, ip=ip, reason=exc.reason))
        HEALTH.failed(
            "leases",
            exc,
            f"{acks} DHCP ACK(s) not sent: a lease is acknowledged only once it is on disk",
        )

    # ------------------------------------------------------------ housekeeping

    def _housekeeping(self) -> None:
        # The bound-lease gauge is counted when /metrics is scraped
        # (http/status.py): counting 100 000 leases here held DHCP ~8 ms every 5 s.
        self.engine.expire(self.wall())
        self._housekeeping_timer = self.clock.call_at(
            self.clock.now() + HOUSEKEEPING, self._housekeeping
        )

    def reconfigure(self, config: Config) -> None:
        """A reload (same interfaces and addresses: netboot.reload decides)."""
        self.config = config.dhcp
        self.probes.timeout = config.dhcp.ping_timeout_ms / 1000
        self.engine.reconfigure(config.dhcp, config.provisioning.url)
        log.info(
            "dhcp: reconfigured: %d class(es), %d reservation(s), %s",
            len(config.dhcp.classes),
            len(config.dhcp.hosts),
            ", ".join(
                f"{s.interface} pool {s.pool_start}-{s.pool_end}" for s in config.dhcp.scopes
            ),
        )


_COUNTERS: dict[tuple[str, int], Counter] = {}


def _counted(direction: str, kind: int) -> Counter:
    """The message counter's child for (direction, type), looked up once
    (`labels()` takes a lock and builds a key on every call)."""
    child = _COUNTERS.get((direction, kind))
    if child is None:
        child = metrics.DHCP_MESSAGES.labels(direction, TYPE_NAMES.get(kind, "other"))
        if len(_COUNTERS) < 1024:  # 2 directions x 256 types at most
            _COUNTERS[(direction, kind)] = child
    return child
