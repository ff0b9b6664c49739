"""DHCP on the wire: raw AF_PACKET sockets, ARP probes and group commit.

Per served interface: an AF_PACKET socket bound to that interface with a BPF
filter for untagged IPv4 UDP to port 67 (so it sees clients that have no
address yet, and knows which interface a request came in on); a UDP socket
bound to port 67 on the same device that never reads (it keeps the kernel
from answering with ICMP port-unreachable) and sends the L3 unicast replies
(relay, ciaddr); an AF_PACKET ARP socket for the address probes. Addresses
behind a relay are probed with an ICMP echo instead, as ISC dhcpd does.

ACKs wait for their lease to reach disk: the committer takes every lease staged
since the last commit and writes them in one fsynced transaction on a worker
thread, then sends every reply that waited on them (group commit).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

from prometheus_client import Counter

from netboot import metrics, netif
from netboot.dhcp import bpf, codec
from netboot.dhcp.codec import TYPE_NAMES, DhcpMessage
from netboot.dhcp.engine import Decision, DhcpEngine, Origin, Reply
from netboot.dhcp.guard import PROBING, REFUSE, SERVE, ProbeSend, RogueGuard, Sighting, describe
from netboot.dhcp.probes import ProbeTable
from netboot.events import AckWithheld, AddressConflict, LeaseAcked
from netboot.health import NOT_RUNNING, RUNNING, STARTING, Health
from netboot.ratelog import RateLimitedLog
from netboot.state.leases import Lease
from netboot.statedisk import HEALTH, StateWriteError
from netboot.wire import DecodeError, format_mac

if TYPE_CHECKING:
    from netboot.config import Config
    from netboot.supervisor import Context

log = logging.getLogger("netboot.dhcp")

IP_PKTINFO = 8  # <linux/in.h>; the stdlib constant is missing from the type stubs
GUARD_TICK = 30.0  # the guard loop wakes at least this often (alarm expiry)
MAX_REHANDLE = 3


@dataclass
class Link:
    """One served interface and its sockets."""

    name: str
    mac: bytes
    ip: int
    raw: socket.socket | None = None
    udp: socket.socket | None = None
    arp: socket.socket | None = None
    guard: socket.socket | None = None  # BOOTREPLYs to port 68: the rogue-DHCP guard
    down: bool = False  # the last receive failed (link down): logged once, until it works


class DhcpService:
    name = "dhcp"

    def __init__(self, ctx: Context, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.config = ctx.config.dhcp
        self.clock = clock
        self.links: dict[str, Link] = {}
        self.engine: DhcpEngine | None = None
        self.bad = RateLimitedLog(log)
        # Replies waiting for their lease to reach disk, with the registry event
        # recorded once it has (or, when it cannot, an `ack-withheld` event).
        self._waiting: list[tuple[Reply, str, Decision]] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dhcp-commit")
        # Conflict checks in flight (ARP / ICMP echo), on the loop's monotonic clock.
        self.probes: ProbeTable[tuple[DhcpMessage, int, Origin | None]] = ProbeTable(
            self.config.ping_timeout_ms / 1000
        )
        self._probe_timer: asyncio.TimerHandle | None = None
        self.guard: RogueGuard | None = None
        # The guard's timers run on a monotonic clock: a Pi has no RTC, and its
        # wall clock jumps when NTP first syncs, often inside the start-up probe.
        self.guard_clock: Callable[[], float] = time.monotonic
        self.alarm_log = RateLimitedLog(log, every=60.0)
        self.health = Health(STARTING)
        self.serving = False
        self._serving = asyncio.Event()
        self.icmp: socket.socket | None = None
        self._icmp_id = os.getpid() & 0xFFFF
        self._icmp_seq = 0

    # ------------------------------------------------------------ start

    async def start(self) -> None:
        """Interfaces, engine and the guard's sockets; the first probe goes out.
        DHCP itself starts serving in `serve`, once the probe window is over
        (the other services do not wait for it)."""
        server_ips: dict[str, int] = {}
        for scope in self.config.scopes:
            mac = netif.mac(scope.interface)
            addrs = [(a.ip, a.network.prefixlen) for a in netif.addresses(scope.interface)]
            if scope.address is not None:
                ip = scope.address
                if addrs and ip not in [a for a, _ in addrs]:
                    log.warning(
                        "%s: configured address %s is not on the interface", scope.interface, ip
                    )
            else:
                inside = [a for a, _ in addrs if a in scope.subnet]
                if not inside:
                    raise OSError(
                        f"dhcp: interface {scope.interface} has no address in {scope.subnet}; "
                        f"set the scope's address or give the interface one"
                    )
                ip = inside[0]
            server_ips[scope.interface] = int(ip)
            self.links[scope.interface] = Link(scope.interface, mac, int(ip))
        self.engine = DhcpEngine(
            self.config, self.ctx.config.provisioning.url, self.ctx.leases, server_ips
        )
        self.guard = RogueGuard(
            tuple(self.links),
            frozenset(link.mac for link in self.links.values()),
            frozenset(server_ips.values()),
            refuse_when_found=self.config.authoritative and not self.config.ignore_other_servers,
            probe=float(self.config.guard_probe),
            interval=float(self.config.guard_interval),
        )
        loop = asyncio.get_running_loop()
        for link in self.links.values():
            try:
                link.guard = bpf.packet_socket(link.name, codec.ETH_P_IP, bpf.udp_dport(68))
            except PermissionError:
                raise OSError("dhcp: raw sockets need root or CAP_NET_RAW") from None
            loop.add_reader(link.guard.fileno(), self._guard_readable, link)
        self.guard.begin(self.guard_clock())
        self._guard_step()
        if self.guard.verdict == SERVE:  # guard_probe = 0: no start-up probe
            self._open_sockets()
        else:
            self.health = Health(
                STARTING, f"probing for other DHCP servers for {self.config.guard_probe} s"
            )

    def _open_sockets(self) -> None:
        for link in self.links.values():
            try:
                link.raw = bpf.packet_socket(link.name, codec.ETH_P_IP, bpf.udp_dport(67))
                link.arp = bpf.packet_socket(link.name, codec.ETH_P_ARP, bpf.arp_reply())
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, link.name.encode())
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
                udp.bind(("0.0.0.0", 67))
                udp.setblocking(False)
                link.udp = udp
            except PermissionError:
                raise OSError(
                    "dhcp: raw sockets need root or CAP_NET_RAW + CAP_NET_BIND_SERVICE"
                ) from None
        icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        icmp.setblocking(False)
        self.icmp = icmp
        self.serving = True
        self._serving.set()
        served = ", ".join(
            f"{s.interface} {s.subnet} pool {s.pool_start}-{s.pool_end}" for s in self.config.scopes
        )
        self.health = Health(RUNNING, served, self._alarm_text())
        log.info("dhcp: serving %s", served)

    # ------------------------------------------------------------ guard

    def _send_probe(self, probe: ProbeSend) -> None:
        """A DISCOVER as a client would send it (RFC 2131 §4.4.1), broadcast
        flag set so that every server's OFFER reaches us."""
        link = self.links[probe.interface]
        discover = DhcpMessage(
            op=codec.BOOTREQUEST,
            xid=probe.xid,
            chaddr=link.mac,
            flags=codec.BROADCAST_FLAG,
            options={53: bytes((codec.DISCOVER,)), 55: bytes((1, 3, 6, 66)), 60: b"netboot-probe"},
        )
        frame = codec.build_udp_frame(
            link.mac, codec.BROADCAST_MAC, 0, 0xFFFFFFFF, 68, 67, codec.encode(discover)
        )
        assert link.guard is not None
        try:
            link.guard.send(frame)
        except OSError as exc:
            self.bad.warning(
                "probe-send", f"dhcp: probe on {link.name} failed: {exc}", self.guard_clock()
            )

    def _guard_readable(self, link: Link) -> None:
        assert link.guard is not None and self.guard is not None
        for _ in range(64):
            try:
                data = link.guard.recv(4096)
            except BlockingIOError:
                return
            except OSError as exc:  # ENETDOWN when the link goes down
                self._recv_failed(link, "guard", exc)
                return
            now = self.guard_clock()
            try:
                udp = codec.parse_udp_frame(data)
                msg = codec.decode(udp.payload)
            except DecodeError:
                continue  # the guard only looks for servers; malformed replies are not ours
            sighting = self.guard.heard(link.name, udp.src_mac, udp.src_ip, msg, now)
            if sighting is not None:
                self._sighted(sighting, now)

    def _sighted(self, sighting: Sighting, now: float) -> None:
        assert self.guard is not None
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
                self.health = Health(RUNNING, self.health.detail, self._alarm_text())
                self.ctx.status_changed()
        else:
            self.alarm_log.warning(
                f"rogue {server.server_id} {server.mac}",
                f"dhcp: still not serving: another DHCP server answers: {server.describe()}",
                now,
            )

    def rogue_servers(self) -> list[dict[str, object]]:
        """The other DHCP servers behind the alarm, their times on the wall clock."""
        if self.guard is None:
            return []
        mono, wall = self.guard_clock(), time.time()
        out = []
        for server in self.guard.active(mono):
            entry = server.as_dict()
            entry["first_seen"] = wall - (mono - server.first_seen)
            entry["last_seen"] = wall - (mono - server.last_seen)
            out.append(entry)
        return out

    def _alarm_text(self) -> str:
        if self.guard is None:
            return ""
        active = self.guard.active(self.guard_clock())
        if not active:
            return ""
        return "another DHCP server on the segment: " + describe(active)

    def _guard_step(self) -> None:
        """Send the DISCOVERs that are due and act on a changed verdict."""
        assert self.guard is not None
        now = self.guard_clock()
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
            self.ctx.status_changed()
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
        self._open_sockets()
        self.ctx.status_changed()

    async def _guard_loop(self) -> None:
        assert self.guard is not None
        while True:
            delay = self.guard.next_wakeup() - self.guard_clock()
            await asyncio.sleep(min(max(delay, 0.0), GUARD_TICK))
            self._guard_step()
            now = self.guard_clock()
            if self.guard.cleared(now) and not self.guard.active(now):
                log.warning(
                    "dhcp: no reply from another DHCP server for %.0f s: alarm cleared",
                    self.guard.hold,
                )
                metrics.DHCP_ROGUE_SERVERS.set(0)
                if self.serving:
                    self.health = Health(RUNNING, self.health.detail)
                    self.ctx.status_changed()

    # ------------------------------------------------------------ serve

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._guard_loop())
                await self._serving.wait()
                for link in self.links.values():
                    assert link.raw is not None and link.arp is not None
                    loop.add_reader(link.raw.fileno(), self._readable, link)
                    loop.add_reader(link.arp.fileno(), self._arp_readable, link)
                if self.icmp is not None:
                    loop.add_reader(self.icmp.fileno(), self._icmp_readable)
                group.create_task(self._committer())
                group.create_task(self._housekeeping())
        finally:
            for link in self.links.values():
                for sock in (link.raw, link.arp, link.guard):
                    if sock is not None:
                        loop.remove_reader(sock.fileno())
            if self.icmp is not None:
                loop.remove_reader(self.icmp.fileno())

    def reconfigure(self, config: Config) -> None:
        """A reload (same interfaces and addresses: netboot.reload decides)."""
        self.config = config.dhcp
        self.probes.timeout = config.dhcp.ping_timeout_ms / 1000
        if self.engine is not None:
            self.engine.reconfigure(config.dhcp, config.provisioning.url)
        log.info(
            "dhcp: reconfigured: %d class(es), %d reservation(s), %s",
            len(config.dhcp.classes),
            len(config.dhcp.hosts),
            ", ".join(
                f"{s.interface} pool {s.pool_start}-{s.pool_end}" for s in config.dhcp.scopes
            ),
        )

    async def stop(self) -> None:
        leases = self.ctx.leases
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, leases.commit, leases.take_staged()
            )
        except StateWriteError as exc:
            log.error("dhcp: leases not written at stop (no ACK was sent for them): %s", exc)
        self._executor.shutdown(wait=True)
        loop = asyncio.get_running_loop()
        for link in self.links.values():
            if link.guard is not None:  # serve may never have run to remove it
                loop.remove_reader(link.guard.fileno())
            for sock in (link.raw, link.udp, link.arp, link.guard):
                if sock is not None:
                    sock.close()
        if self.icmp is not None:
            self.icmp.close()

    def _recv_failed(self, link: Link, what: str, exc: OSError) -> None:
        """ENETDOWN and the like when the link drops: one line per 10 s per
        socket, no traceback; the socket is kept and serving resumes when the
        link comes back (`_recv_ok`)."""
        link.down = True
        metrics.LIMITED.labels("dhcp", "receive-failed").inc()
        self.bad.warning(
            f"recv:{link.name}:{what}",
            f"dhcp: cannot receive {what} on {link.name}: {exc.strerror or exc} (link down?)",
            self.clock(),
        )

    def _recv_ok(self, link: Link) -> None:
        if link.down:
            link.down = False
            log.warning("dhcp: receiving on %s again", link.name)

    def _readable(self, link: Link) -> None:
        assert link.raw is not None
        for _ in range(64):
            try:
                data = link.raw.recv(4096)
            except BlockingIOError:
                break
            except OSError as exc:
                self._recv_failed(link, "DHCP", exc)
                break
            self._recv_ok(link)
            self.receive(link, data)
        if self.ctx.leases.staged:
            self._wake.set()

    def receive(self, link: Link, frame: bytes) -> None:
        now = self.clock()
        try:
            udp = codec.parse_udp_frame(frame)
            msg = codec.decode(udp.payload)
        except DecodeError as exc:
            metrics.BAD_INPUT.labels("dhcp").inc()
            self.bad.warning("decode", f"dhcp: dropped malformed packet on {link.name}: {exc}", now)
            return
        if udp.src_mac == link.mac:
            return  # our own broadcast
        kind = msg.msg_type
        _counted("in", kind or 0).inc()
        self._decide(link, msg, now, 0, Origin(format_mac(udp.src_mac), udp.src_ip))

    def _decide(
        self, link: Link, msg: DhcpMessage, now: float, rounds: int, origin: Origin | None
    ) -> None:
        assert self.engine is not None
        reclaimed = self.engine.reclaimed
        decision = self.engine.handle(msg, link.name, now, origin)
        if self.engine.reclaimed != reclaimed:
            metrics.LIMITED.labels("dhcp", "offer-reclaimed").inc()
            self.bad.warning(
                "reclaim", "dhcp: pool full: took back the oldest unanswered offer", now
            )
        if decision.limited is not None:
            metrics.LIMITED.labels("dhcp", decision.limited).inc()
            self.bad.warning(
                f"limited:{decision.limited}",
                f"dhcp: not answering {TYPE_NAMES.get(msg.msg_type or 0)} from {msg.mac}"
                f" on {link.name}: {decision.note}",
                now,
            )
            return
        if decision.probe is not None and rounds < MAX_REHANDLE:
            self._start_probe(link, msg, decision.probe, rounds, origin)
            return
        self._act(link, msg, decision)

    def _act(self, link: Link, msg: DhcpMessage, decision: Decision) -> None:
        durable = decision.reply is not None and decision.reply.durable
        if not durable:
            self._record(msg.mac, decision)
        if decision.note and decision.reply is None:
            log.debug("dhcp %s %s: %s", TYPE_NAMES.get(msg.msg_type or 0), msg.mac, decision.note)
        reply = decision.reply
        if reply is None:
            return
        if reply.durable:
            self._waiting.append((reply, msg.mac, decision))
            self._wake.set()
        else:
            self.send(reply)

    def send(self, reply: Reply) -> None:
        link = self.links[reply.interface]
        payload = codec.encode(reply.message, options_wire=reply.options_wire)
        route = reply.route
        kind = reply.message.msg_type or 0
        _counted("out", kind).inc()
        try:
            if route.kind in ("relay", "unicast"):
                assert link.udp is not None
                # From the server identifier, whatever address the route would pick.
                pktinfo = struct.pack("@i4s4s", 0, struct.pack("!I", reply.server_ip), b"\0\0\0\0")
                link.udp.sendmsg(
                    [payload],
                    [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)],
                    0,
                    (str(IPv4Address(route.ip)), route.port),
                )
            else:
                assert link.raw is not None
                dst_mac = codec.BROADCAST_MAC if route.kind == "broadcast" else route.mac
                frame = codec.build_udp_frame(
                    link.mac, dst_mac, reply.server_ip, route.ip, 67, route.port, payload
                )
                link.raw.send(frame)
        except OSError as exc:
            self.bad.warning(
                "send",
                f"dhcp: sending {TYPE_NAMES.get(kind)} to {route} failed: {exc}",
                self.clock(),
            )

    # ------------------------------------------------------------ probes

    def _start_probe(
        self, link: Link, msg: DhcpMessage, ip: int, rounds: int, origin: Origin | None
    ) -> None:
        loop = asyncio.get_running_loop()
        first = self.probes.start(ip, link.name, (msg, rounds, origin), loop.time())
        if first is None:  # too many checks in flight: offer without one
            metrics.LIMITED.labels("dhcp", "probes").inc()
            loop.call_soon(self._checked, ip, None, link.name, [(msg, rounds, origin)])
            return
        if not first:
            return
        try:
            if msg.giaddr:
                assert self.icmp is not None
                self._icmp_seq = (self._icmp_seq + 1) & 0xFFFF
                echo = codec.build_icmp_echo(self._icmp_id, self._icmp_seq)
                self.icmp.sendto(echo, (str(IPv4Address(ip)), 0))
            else:
                assert link.arp is not None
                link.arp.send(codec.build_arp_request(link.mac, link.ip, ip))
        except OSError as exc:
            # Cannot probe (no route to the relay's subnet, ...): offer anyway.
            self.bad.warning(
                "probe", f"dhcp: probe for {IPv4Address(ip)} failed: {exc}", self.clock()
            )
            loop.call_soon(self._probe_done, ip, None)
            return
        self._arm_probe_timer()

    def _arm_probe_timer(self) -> None:
        """One timer, for the earliest deadline of the checks in flight."""
        deadline = self.probes.next_deadline()
        timer = self._probe_timer
        if timer is not None and deadline is not None and timer.when() <= deadline:
            return
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._probe_timer = None if deadline is None else loop.call_at(deadline, self._probes_due)

    def _probes_due(self) -> None:
        self._probe_timer = None
        for ip, check in self.probes.expired(asyncio.get_running_loop().time()):
            self._checked(ip, None, check.interface, check.waiting)
        self._arm_probe_timer()

    def _icmp_readable(self) -> None:
        assert self.icmp is not None
        for _ in range(64):
            try:
                data, (source, _) = self.icmp.recvfrom(2048)
            except BlockingIOError:
                return
            except OSError as exc:  # an ICMP error queued on the socket
                log.debug("dhcp: icmp: %s", exc)
                continue
            ip = int(IPv4Address(source))
            if codec.icmp_echo_reply_id(data) == self._icmp_id and ip in self.probes:
                self._probe_done(ip, b"\x00" * 6)  # answered through a relay: MAC unknown

    def _arp_readable(self, link: Link) -> None:
        assert link.arp is not None
        for _ in range(64):
            try:
                data = link.arp.recv(256)
            except BlockingIOError:
                return
            except OSError as exc:
                self._recv_failed(link, "ARP", exc)
                return
            try:
                arp = codec.parse_arp(data)
            except DecodeError:
                continue
            if arp.sender_ip in self.probes:
                self._probe_done(arp.sender_ip, arp.sender_mac)

    def _probe_done(self, ip: int, in_use_by: bytes | None) -> None:
        check = self.probes.finish(ip)
        if check is not None:
            self._checked(ip, in_use_by, check.interface, check.waiting)

    def _checked(
        self,
        ip: int,
        in_use_by: bytes | None,
        interface: str,
        waiting: list[tuple[DhcpMessage, int, Origin | None]],
    ) -> None:
        if self.engine is None:
            return
        now = self.clock()
        self.engine.probe_result(ip, in_use_by, now)
        if in_use_by is not None:
            log.warning(
                "dhcp: %s is in use by %s without a lease: quarantined",
                IPv4Address(ip),
                format_mac(in_use_by),
            )
            self.ctx.registry.record(
                AddressConflict(mac=format_mac(in_use_by), ip=str(IPv4Address(ip)))
            )
        link = self.links[interface]
        for msg, rounds, origin in waiting:
            self._decide(link, msg, now, rounds + 1, origin)
        if self.ctx.leases.staged:
            self._wake.set()

    # ------------------------------------------------------------ commit

    async def _committer(self) -> None:
        loop = asyncio.get_running_loop()
        leases = self.ctx.leases
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = leases.take_staged()
            replies, self._waiting = self._waiting, []
            if batch:
                try:
                    await loop.run_in_executor(self._executor, leases.commit, batch)
                except StateWriteError as exc:
                    self._not_durable(batch, replies, exc)
                    continue
                if "leases" in HEALTH.problems:
                    HEALTH.ok("leases")
            for reply, mac, decision in replies:
                self._record(mac, decision)
                self.send(reply)

    def _record(self, mac: str, decision: Decision) -> None:
        """The decision's registry event, and the INFO line of a lease (once
        its lease is on disk, for an ACK)."""
        if decision.event is None:
            return
        event = decision.event
        self.ctx.registry.record(event)
        if isinstance(event, LeaseAcked):
            log.info(
                "dhcp: lease %s to %s (%s) vendor %r class %s",
                event.ip,
                mac,
                event.state,
                event.vendor_class or "",
                event.class_name or "-",
            )

    def _not_durable(
        self, batch: list[Lease], replies: list[tuple[Reply, str, Decision]], exc: StateWriteError
    ) -> None:
        """The batch's leases could not reach disk: none of the ACKs that wait on
        them is sent (the client asks again), and the leases are staged again
        (unless changed since) so the next commit retries them. The rest of
        DHCP, and every other service, keeps running."""
        leases = self.ctx.leases
        for lease in batch:
            if leases.get(lease.ip) == lease:
                leases.stage(lease)
        acks = len(replies)
        metrics.DHCP_ACKS_WITHHELD.inc(acks)
        for _reply, mac, decision in replies:
            ip = decision.event.ip if isinstance(decision.event, LeaseAcked) else None
            self.ctx.registry.record(AckWithheld(mac=mac, ip=ip, reason=exc.reason))
        HEALTH.failed(
            "leases",
            exc,
            f"{acks} DHCP ACK(s) not sent: a lease is acknowledged only once it is on disk",
        )

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(5)
            now = self.clock()
            assert self.engine is not None
            self.engine.expire(now)
            metrics.DHCP_LEASES.set(
                sum(
                    1 for lease in self.ctx.leases if lease.state == "bound" and lease.expires > now
                )
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


def create(ctx: Context) -> DhcpService:
    return DhcpService(ctx)
