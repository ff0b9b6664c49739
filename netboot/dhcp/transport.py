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
import contextlib
import ctypes
import logging
import os
import socket
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import TYPE_CHECKING

import netifaces

from netboot import metrics
from netboot.dhcp import codec
from netboot.dhcp.codec import TYPE_NAMES, DhcpMessage
from netboot.dhcp.engine import Decision, DhcpEngine, Origin, Reply
from netboot.ratelog import RateLimitedLog
from netboot.wire import DecodeError, format_mac

if TYPE_CHECKING:
    from netboot.supervisor import Context

log = logging.getLogger("netboot.dhcp")

ETH_P_ALL = 0x0003
SO_ATTACH_FILTER = 26
SOL_PACKET = 263
SKF_AD_PKTTYPE = 0xFFFFF000 + 4
PACKET_OTHERHOST = 3
IP_PKTINFO = 8  # <linux/in.h>; the stdlib constant is missing from the type stubs
OTHER_SERVER_WAIT = 1.0
OTHER_SERVER_RECHECK = 30.0
MAX_REHANDLE = 3


def _bpf_udp_dport(port: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF: IPv4, UDP, not a fragment, destination `port`, addressed to
    this host. A frame tagged for a VLAN that has no interface here reaches the
    parent's sockets with its tag removed and pkt_type OTHERHOST (as does a
    frame seen only in promiscuous mode): it is not ours to answer."""
    return [
        (0x20, 0, 0, SKF_AD_PKTTYPE),  # ld pkttype
        (0x15, 10, 0, PACKET_OTHERHOST),  # jeq OTHERHOST -> drop
        (0x28, 0, 0, 12),  # ldh [12] ethertype
        (0x15, 0, 8, 0x0800),  # jne IPv4 -> drop
        (0x30, 0, 0, 23),  # ldb [23] protocol
        (0x15, 0, 6, 17),  # jne UDP -> drop
        (0x28, 0, 0, 20),  # ldh [20] flags/fragment offset
        (0x45, 4, 0, 0x1FFF),  # jset fragment -> drop
        (0xB1, 0, 0, 14),  # ldxb 4*([14]&0xf)
        (0x48, 0, 0, 16),  # ldh [x+16] UDP destination port
        (0x15, 0, 1, port),  # jne port -> drop
        (0x06, 0, 0, 0x40000),  # accept
        (0x06, 0, 0, 0),  # drop
    ]


def _bpf_arp_reply() -> list[tuple[int, int, int, int]]:
    return [
        (0x28, 0, 0, 12),  # ldh [12]
        (0x15, 0, 3, 0x0806),  # jne ARP -> drop
        (0x28, 0, 0, 20),  # ldh [20] ARP op
        (0x15, 0, 1, 2),  # jne reply -> drop
        (0x06, 0, 0, 0x40000),
        (0x06, 0, 0, 0),
    ]


def _attach_filter(sock: socket.socket, program: list[tuple[int, int, int, int]]) -> None:
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def _packet_socket(
    ifname: str, ethertype: int, program: list[tuple[int, int, int, int]]
) -> socket.socket:
    # Opened with protocol 0 (receives nothing), filtered, then bound: no
    # unfiltered packet can slip in between.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        _attach_filter(sock, program)
        sock.bind((ifname, ethertype))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except OSError:
        sock.close()
        raise
    return sock


def interface_addresses(ifname: str) -> tuple[bytes, list[tuple[IPv4Address, int]]]:
    """(MAC, [(address, prefix length)]) of an interface; OSError if it does not exist."""
    if ifname not in netifaces.interfaces():
        raise OSError(f"interface {ifname} does not exist")
    info = netifaces.ifaddresses(ifname)
    link = info.get(netifaces.AF_LINK, [{}])[0].get("addr", "")
    mac = bytes.fromhex(link.replace(":", "")) if link else b"\x00" * 6
    addrs = []
    for entry in info.get(netifaces.AF_INET, []):
        prefix = IPv4Address(entry.get("netmask", "255.255.255.255"))
        addrs.append((IPv4Address(entry["addr"]), bin(int(prefix)).count("1")))
    return mac, addrs


@dataclass
class Link:
    """One served interface and its sockets."""

    name: str
    mac: bytes
    ip: int
    raw: socket.socket | None = None
    udp: socket.socket | None = None
    arp: socket.socket | None = None
    down: bool = False  # the last receive failed (link down): logged once, until it works


@dataclass
class _Probe:
    link: Link
    waiting: list[tuple[DhcpMessage, int, Origin | None]] = field(default_factory=list)
    timer: asyncio.Handle | None = None


class DhcpService:
    name = "dhcp"

    def __init__(self, ctx: Context, clock: Callable[[], float] = time.time) -> None:
        self.ctx = ctx
        self.config = ctx.config.dhcp
        self.clock = clock
        self.links: dict[str, Link] = {}
        self.engine: DhcpEngine | None = None
        self.bad = RateLimitedLog(log)
        self._waiting: list[Reply] = []
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dhcp-commit")
        self._probes: dict[int, _Probe] = {}
        self.other_servers: list[str] = []
        self.serving = False
        self.icmp: socket.socket | None = None
        self._icmp_id = os.getpid() & 0xFFFF
        self._icmp_seq = 0

    # ------------------------------------------------------------ start

    async def start(self) -> None:
        server_ips: dict[str, int] = {}
        for scope in self.config.scopes:
            mac, addrs = interface_addresses(scope.interface)
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
        for link in self.links.values():
            self.other_servers += await self._look_for_other_servers(link)
        if self.other_servers:
            for line in self.other_servers:
                log.error("ANOTHER DHCP SERVER IS ON THE SEGMENT: %s", line)
            if self.config.authoritative and not self.config.ignore_other_servers:
                log.error(
                    "dhcp: not serving while another DHCP server answers (authoritative = true); "
                    "remove it, or set dhcp.ignore_other_servers = true to serve anyway"
                )
                return
        self._open_sockets()

    def _open_sockets(self) -> None:
        for link in self.links.values():
            try:
                link.raw = _packet_socket(link.name, codec.ETH_P_IP, _bpf_udp_dport(67))
                link.arp = _packet_socket(link.name, codec.ETH_P_ARP, _bpf_arp_reply())
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
        log.info(
            "dhcp: serving %s",
            ", ".join(
                f"{s.interface} {s.subnet} pool {s.pool_start}-{s.pool_end}"
                for s in self.config.scopes
            ),
        )

    async def _look_for_other_servers(self, link: Link) -> list[str]:
        """Send a DISCOVER as a client would and report whoever OFFERs (RFC 2131 §4.4.1)."""
        xid = int.from_bytes(os.urandom(4), "big")
        discover = DhcpMessage(
            op=codec.BOOTREQUEST,
            xid=xid,
            chaddr=link.mac,
            flags=codec.BROADCAST_FLAG,
            options={53: bytes((codec.DISCOVER,)), 55: bytes((1, 3, 6, 66)), 60: b"netboot-probe"},
        )
        frame = codec.build_udp_frame(
            link.mac, codec.BROADCAST_MAC, 0, 0xFFFFFFFF, 68, 67, codec.encode(discover)
        )
        found: list[str] = []
        try:
            sock = _packet_socket(link.name, codec.ETH_P_IP, _bpf_udp_dport(68))
        except PermissionError:
            raise OSError("dhcp: raw sockets need root or CAP_NET_RAW") from None
        loop = asyncio.get_running_loop()
        got = asyncio.Event()

        def readable() -> None:
            while True:
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    return
                try:
                    udp = codec.parse_udp_frame(data)
                    msg = codec.decode(udp.payload)
                except DecodeError:
                    continue
                if msg.xid == xid and msg.op == codec.BOOTREPLY and udp.src_ip != link.ip:
                    server = IPv4Address(msg.server_id or udp.src_ip)
                    found.append(
                        f"{server} (MAC {format_mac(udp.src_mac)}) offered {IPv4Address(msg.yiaddr)} on {link.name}"
                    )
                    got.set()

        loop.add_reader(sock.fileno(), readable)
        try:
            sock.send(frame)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(got.wait(), OTHER_SERVER_WAIT)
        finally:
            loop.remove_reader(sock.fileno())
            sock.close()
        return found

    # ------------------------------------------------------------ serve

    async def serve(self) -> None:
        while not self.serving:
            # Refused to serve: look again now and then, and start once it is gone.
            await asyncio.sleep(OTHER_SERVER_RECHECK)
            found = [
                line
                for link in self.links.values()
                for line in await self._look_for_other_servers(link)
            ]
            if found:
                log.error("dhcp: still not serving: %s", "; ".join(found))
            else:
                log.warning("dhcp: the other DHCP server is gone; serving now")
                self._open_sockets()
        loop = asyncio.get_running_loop()
        for link in self.links.values():
            assert link.raw is not None and link.arp is not None
            loop.add_reader(link.raw.fileno(), self._readable, link)
            loop.add_reader(link.arp.fileno(), self._arp_readable, link)
        if self.icmp is not None:
            loop.add_reader(self.icmp.fileno(), self._icmp_readable)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._committer())
                group.create_task(self._housekeeping())
        finally:
            for link in self.links.values():
                for sock in (link.raw, link.arp):
                    if sock is not None:
                        loop.remove_reader(sock.fileno())
            if self.icmp is not None:
                loop.remove_reader(self.icmp.fileno())

    async def stop(self) -> None:
        leases = self.ctx.leases
        await asyncio.get_running_loop().run_in_executor(
            self._executor, leases.commit, leases.take_staged()
        )
        self._executor.shutdown(wait=True)
        for link in self.links.values():
            for sock in (link.raw, link.udp, link.arp):
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
        metrics.DHCP_MESSAGES.labels("in", TYPE_NAMES.get(kind or 0, "other")).inc()
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
        if decision.event is not None:
            self.ctx.registry.record(
                msg.mac, "dhcp", decision.event, decision.detail, **decision.facts
            )
        if decision.note and decision.reply is None:
            log.debug("dhcp %s %s: %s", TYPE_NAMES.get(msg.msg_type or 0), msg.mac, decision.note)
        reply = decision.reply
        if reply is None:
            return
        if reply.durable:
            self._waiting.append(reply)
            self._wake.set()
        else:
            self.send(reply)

    def send(self, reply: Reply) -> None:
        link = self.links[reply.interface]
        payload = codec.encode(reply.message)
        route = reply.route
        kind = reply.message.msg_type or 0
        metrics.DHCP_MESSAGES.labels("out", TYPE_NAMES.get(kind, "other")).inc()
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
        probe = self._probes.get(ip)
        if probe is None:
            probe = _Probe(link)
            self._probes[ip] = probe
            loop = asyncio.get_running_loop()
            try:
                if msg.giaddr:
                    self._send_echo(ip)
                else:
                    assert link.arp is not None
                    link.arp.send(codec.build_arp_request(link.mac, link.ip, ip))
            except OSError as exc:
                # Cannot probe (no route to the relay's subnet, ...): offer anyway.
                self.bad.warning(
                    "probe", f"dhcp: probe for {IPv4Address(ip)} failed: {exc}", self.clock()
                )
                probe.timer = loop.call_soon(self._probe_done, ip, None)
                probe.waiting.append((msg, rounds, origin))
                return
            probe.timer = loop.call_later(
                self.config.ping_timeout_ms / 1000, self._probe_done, ip, None
            )
        probe.waiting.append((msg, rounds, origin))

    def _send_echo(self, ip: int) -> None:
        assert self.icmp is not None
        self._icmp_seq = (self._icmp_seq + 1) & 0xFFFF
        header = struct.pack("!BBHHH", 8, 0, 0, self._icmp_id, self._icmp_seq)
        payload = b"netboot-dhcp-probe"
        csum = codec.checksum(header + payload)
        packet = struct.pack("!BBHHH", 8, 0, csum, self._icmp_id, self._icmp_seq) + payload
        self.icmp.sendto(packet, (str(IPv4Address(ip)), 0))

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
            ihl = (data[0] & 0x0F) * 4 if data else 0
            if len(data) < ihl + 8:
                continue
            kind, _, _, ident = struct.unpack_from("!BBHH", data, ihl)
            ip = int(IPv4Address(source))
            if kind == 0 and ident == self._icmp_id and ip in self._probes:
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
            if arp.sender_ip in self._probes:
                self._probe_done(arp.sender_ip, arp.sender_mac)

    def _probe_done(self, ip: int, in_use_by: bytes | None) -> None:
        probe = self._probes.pop(ip, None)
        if probe is None or self.engine is None:
            return
        if probe.timer is not None:
            probe.timer.cancel()
        now = self.clock()
        self.engine.probe_result(ip, in_use_by, now)
        if in_use_by is not None:
            log.warning(
                "dhcp: %s is in use by %s without a lease: quarantined",
                IPv4Address(ip),
                format_mac(in_use_by),
            )
            self.ctx.registry.record(
                format_mac(in_use_by),
                "dhcp",
                "conflict",
                {"ip": str(IPv4Address(ip))},
                ip=str(IPv4Address(ip)),
            )
        for msg, rounds, origin in probe.waiting:
            self._decide(probe.link, msg, now, rounds + 1, origin)
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
                await loop.run_in_executor(self._executor, leases.commit, batch)
            for reply in replies:
                self.send(reply)

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


def create(ctx: Context) -> DhcpService:
    return DhcpService(ctx)
