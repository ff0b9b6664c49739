"""What the simulated phones of one lab share: the wire they sit on.

One process runs hundreds of phones, so the expensive things exist once per
lab, not once per phone:

- `DhcpMux`: one raw AF_PACKET socket per phone-side interface (the untagged
  one and the voice VLAN subinterface) that every phone sends its DHCP frames
  through, with its own source MAC and chaddr, and that hands each received
  reply to the phone waiting on its transaction id, with the VLAN it came
  tagged in (PACKET_AUXDATA: the kernel strips the tag). Phones do not set the
  broadcast flag (most real ones do not), so the server answers by L2 unicast
  to each chaddr: the interfaces are put in promiscuous mode and the socket
  reads every frame to UDP port 68, whatever its destination MAC.
- `LldpListener`: one raw socket on the untagged interface that decodes the
  LLDP-MED network policy (TIA-1057 §10.2.3) and the CDP VoIP VLAN reply the
  appliance sends. Every phone is on the same segment and would hear the same
  frames on its own port, so the latest advertisement still within its TTL
  stands for what each phone hears; a phone still sends its own LLDP-MED
  frame (which is what makes a switch fast-start, TIA-1057 §11.2.1).
- `Plumber`: a leased address becomes the phone's own: the plumber adds it to
  the phones' interface and pins the neighbour entries on both sides, batching
  every address leased in the last few milliseconds into one `ip -batch` per
  namespace. The pins are `nud permanent` because the kernel's ARP table is
  shared by all namespaces and overflows at gc_thresh3 (1024 entries), and
  permanent entries do not count against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from netboot.dhcp import codec
from netboot.dhcp.bpf import attach_filter, packet_socket, udp_dport
from netboot.dhcp.codec import DhcpMessage
from netboot.lab.netns import Netns
from netboot.lab.vlan import AUXDATA, PACKET_AUXDATA, SOL_PACKET, frame_vid
from netboot.wire import DecodeError, Reader, Writer

log = logging.getLogger("netboot.lab")

ETH_P_ALL = 0x0003
LLDP_ETHERTYPE = 0x88CC
LLDP_MAC = bytes.fromhex("0180c200000e")
CDP_MAC = bytes.fromhex("01000ccccccc")
MED_OUI = bytes.fromhex("0012bb")


# ------------------------------------------------------------------ DHCP


class DhcpMux:
    """One raw socket per interface, replies routed to phones by xid."""

    def __init__(self, interfaces: list[str]) -> None:
        self.sockets: dict[str, socket.socket] = {}
        # xid -> the phone's inbox: (reply, VID it was tagged with or None)
        self.waiting: dict[int, Callable[[tuple[DhcpMessage, int | None]], None]] = {}
        for name in interfaces:
            # ETH_P_ALL: a frame tagged for a VLAN with no device here loses
            # its tag before protocol handlers see it; taps still have it.
            sock = packet_socket(name, ETH_P_ALL, udp_dport(68, any_host=True))
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            self.sockets[name] = sock
        self.bad = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self.sockets.values():
            loop.add_reader(sock.fileno(), self._readable, sock)

    def close(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self.sockets.values():
            loop.remove_reader(sock.fileno())
            sock.close()

    def _readable(self, sock: socket.socket) -> None:
        for _ in range(256):
            try:
                data, ancillary, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(AUXDATA.size))
            except BlockingIOError:
                return
            frame, vid = frame_vid(data, ancillary)
            try:
                udp = codec.parse_udp_frame(frame)
                msg = codec.decode(udp.payload)
            except DecodeError:
                self.bad += 1
                continue
            if msg.op != codec.BOOTREPLY:
                continue
            handler = self.waiting.get(msg.xid)
            if handler is not None:
                handler((msg, vid))

    def send(self, interface: str, mac: bytes, msg: DhcpMessage, vlan: int | None = None) -> None:
        frame = codec.build_udp_frame(
            mac, codec.BROADCAST_MAC, 0, 0xFFFFFFFF, 68, 67, codec.encode(msg)
        )
        if vlan is not None:
            # 802.1Q tag (priority 5, voice) built here: the kernel needs no VLAN device.
            frame = frame[:12] + struct.pack("!HH", 0x8100, 5 << 13 | vlan) + frame[12:]
        with contextlib.suppress(BlockingIOError):  # the phone retransmits
            self.sockets[interface].send(frame)


# ------------------------------------------------------------------ LLDP / CDP


@dataclass(frozen=True)
class VoicePolicy:
    vlan: int
    priority: int
    dscp: int
    tagged: bool
    source: str  # "lldp-med" | "cdp"


def parse_lldp_policies(frame: bytes) -> list[VoicePolicy]:
    """LLDP-MED network policies for voice (application type 1) in an LLDPDU."""
    r = Reader(frame)
    r.take(12)
    if r.u16() != LLDP_ETHERTYPE:
        raise DecodeError("not LLDP")
    out: list[VoicePolicy] = []
    while r.remaining:
        header = r.u16()
        kind, length = header >> 9, header & 0x1FF
        value = r.take(length)
        if kind == 0:
            break
        if kind == 127 and length == 8 and value[:3] == MED_OUI and value[3] == 2:
            app = value[4]
            bits = int.from_bytes(value[5:8], "big")
            unknown = bits >> 23 & 1
            if app == 1 and not unknown:
                out.append(
                    VoicePolicy(
                        vlan=bits >> 9 & 0xFFF,
                        priority=bits >> 6 & 7,
                        dscp=bits & 0x3F,
                        tagged=bool(bits >> 22 & 1),
                        source="lldp-med",
                    )
                )
    return out


def parse_cdp_voice_vlan(frame: bytes) -> int | None:
    """The VoIP VLAN reply (TLV 0x000e) of a CDP frame (802.3 + LLC/SNAP)."""
    r = Reader(frame)
    if r.take(6) != CDP_MAC:
        raise DecodeError("not CDP")
    r.take(6)
    length = r.u16()
    if length > 1500:
        raise DecodeError("CDP is carried in 802.3 length frames")
    if r.take(8) != bytes.fromhex("aaaa0300000c2000"):
        raise DecodeError("not CDP SNAP")
    r.take(4)  # version, TTL, checksum
    while r.remaining >= 4:
        kind, tlv_len = r.u16(), r.u16()
        if tlv_len < 4:
            raise DecodeError("CDP TLV shorter than its header")
        value = r.take(tlv_len - 4)
        if kind == 0x000E and len(value) >= 3:
            vlan: int = struct.unpack("!H", value[1:3])[0]
            return vlan
    return None


def _bpf_lldp_cdp() -> list[tuple[int, int, int, int]]:
    return [
        (0x28, 0, 0, 12),  # ldh [12] ethertype / length
        (0x15, 4, 0, LLDP_ETHERTYPE),  # LLDP -> accept
        (0x20, 0, 0, 0),  # ld [0]: first 4 bytes of the destination
        (0x15, 0, 3, 0x01000CCC),
        (0x28, 0, 0, 4),  # ldh [4]
        (0x15, 0, 1, 0xCCCC),
        (0x06, 0, 0, 0x40000),
        (0x06, 0, 0, 0),
    ]


def build_lldp_med(
    mac: bytes, system_name: str, model: str, firmware: str, manufacturer: str
) -> bytes:
    """A phone's LLDPDU: chassis/port = its MAC, MED capabilities as an
    endpoint class III (TIA-1057 §10.2.2) and its inventory (§10.2.6)."""
    w = Writer()

    def tlv(kind: int, value: bytes) -> None:
        w.u16(kind << 9 | len(value))
        w.raw(value)

    tlv(1, b"\x04" + mac)  # chassis ID, subtype MAC address
    tlv(2, b"\x03" + mac)  # port ID, subtype MAC address
    tlv(3, struct.pack("!H", 120))
    tlv(5, system_name.encode())
    tlv(7, struct.pack("!HH", 0x24, 0x24))  # capabilities: telephone + bridge
    tlv(127, MED_OUI + b"\x01" + struct.pack("!HB", 0x0033, 3))
    for subtype, text in ((6, firmware), (9, manufacturer), (10, model)):
        tlv(127, MED_OUI + bytes((subtype,)) + text.encode())
    tlv(0, b"")
    return LLDP_MAC + mac + struct.pack("!H", LLDP_ETHERTYPE) + w.getvalue()


@dataclass
class LldpListener:
    """The segment's latest voice VLAN advertisement (LLDP-MED and CDP)."""

    interface: str
    lldp: VoicePolicy | None = None
    cdp_vlan: int | None = None
    frames: int = 0
    bad: int = 0
    heard: asyncio.Event = field(default_factory=asyncio.Event)
    sock: socket.socket | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        attach_filter(sock, _bpf_lldp_cdp())
        sock.bind((self.interface, ETH_P_ALL))
        sock.setblocking(False)
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def send(self, frame: bytes) -> None:
        assert self.sock is not None
        with contextlib.suppress(BlockingIOError):
            self.sock.send(frame)

    def _readable(self) -> None:
        assert self.sock is not None
        for _ in range(64):
            try:
                frame, address = self.sock.recvfrom(2048)
            except BlockingIOError:
                return
            if address[2] == socket.PACKET_OUTGOING:
                continue  # our phones' own LLDPDUs
            self.frames += 1
            try:
                if frame[:6] == CDP_MAC:
                    vlan = parse_cdp_voice_vlan(frame)
                    if vlan is not None:
                        self.cdp_vlan = vlan
                        self.heard.set()
                else:
                    for policy in parse_lldp_policies(frame):
                        self.lldp = policy
                        self.heard.set()
            except DecodeError:
                self.bad += 1

    async def wait_voice_vlan(self, timeout: float) -> tuple[int | None, str]:
        """The voice VLAN once something was heard (or `timeout` passed)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.heard.wait(), timeout)
        return self.voice_vlan()

    def voice_vlan(self) -> tuple[int | None, str]:
        """(VLAN, how it was learned); a phone hearing both trusts LLDP-MED."""
        if self.lldp is not None and self.lldp.tagged:
            return self.lldp.vlan, "lldp-med"
        if self.cdp_vlan is not None:
            return self.cdp_vlan, "cdp"
        return None, "none"


# ------------------------------------------------------------------ addresses


@dataclass(frozen=True)
class PlumbedInterface:
    """A phone-side interface and, across the wire, the appliance's."""

    name: str
    mac: str
    prefix: int
    server_ns: Netns
    server_if: str
    server_mac: str
    server_ips: tuple[str, ...]


class Plumber:
    """Adds leased addresses to the phones' interfaces, many per `ip -batch`."""

    def __init__(self, phones_ns: Netns, interfaces: dict[str, PlumbedInterface]) -> None:
        self.phones_ns = phones_ns
        self.interfaces = interfaces
        self.pending: list[tuple[str, str, asyncio.Future[None]]] = []
        self.batches = 0
        self._flush_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._pinned_servers: set[str] = set()

    async def add(self, interface: str, ip: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending.append((interface, ip, future))
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        await asyncio.sleep(0.01)  # let the phones leased in the same instant join
        async with self._lock:
            batch, self.pending = self.pending, []
            if not batch:
                return
            phone_cmds: list[str] = []
            server_cmds: dict[str, list[str]] = {}
            for interface, ip, _ in batch:
                info = self.interfaces[interface]
                phone_cmds.append(f"address replace {ip}/{info.prefix} dev {interface}")
                server_cmds.setdefault(info.server_ns.name, []).append(
                    f"neigh replace {ip} lladdr {info.mac} dev {info.server_if} nud permanent"
                )
                if interface not in self._pinned_servers:
                    self._pinned_servers.add(interface)
                    for server_ip in info.server_ips:
                        phone_cmds.append(
                            f"neigh replace {server_ip} lladdr {info.server_mac} dev {interface} nud permanent"
                        )
            error: OSError | None = None
            try:
                await asyncio.gather(
                    _ip_batch(self.phones_ns.name, phone_cmds),
                    *(_ip_batch(ns, cmds) for ns, cmds in server_cmds.items()),
                )
            except OSError as exc:
                error = exc
            self.batches += 1
            for _, _, future in batch:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)
        if self.pending:
            self._flush_task = asyncio.create_task(self._flush())


async def _ip_batch(ns: str, commands: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        "ip",
        "-n",
        ns,
        "-batch",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate(("\n".join(commands) + "\n").encode())
    if proc.returncode != 0:
        raise OSError(f"ip -n {ns} -batch: {err.decode(errors='replace').strip()}")
