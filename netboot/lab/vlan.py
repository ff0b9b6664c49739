"""The lab's voice VLAN: a user-space 802.1Q port for the appliance.

A real appliance serving a voice VLAN has a VLAN subinterface (`eth0.100`) on
its switch port. Kernels without 802.1Q (no 8021q module, no bridge
vlan_filtering) cannot make one, so the lab builds the same thing from a veth
pair and this sidecar, in the appliance's namespace:

    eth0      the bridge port: untagged traffic goes through the kernel as
              always, the sidecar never sees it
    eth0.100  the appliance's voice interface: one end of a veth pair
    vl100     the other end, the sidecar's port

A frame arriving on `eth0` tagged with the voice VID (IEEE 802.1Q-2018 §9:
TPID 0x8100, TCI = PCP(3) DEI(1) VID(12)) is written untagged into `vl100`,
so it arrives on `eth0.100`; whatever the appliance sends out of `eth0.100`
arrives on `vl100` and goes out of `eth0` tagged (priority 5, voice). The
receiving kernel strips a tag before a packet socket sees the frame and
reports it in PACKET_AUXDATA (`tp_vlan_tci`, TP_STATUS_VLAN_VALID); a
classic BPF filter on `eth0` reads the same tag (SKF_AD_VLAN_TAG) so only
voice-VLAN frames ever reach user space. Our own transmissions
(PACKET_OUTGOING) are never forwarded back.

It runs as a thread of the `netboot lab` process (sockets opened in the
appliance's namespace, then the thread), stopped with the lab.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from netboot.dhcp.bpf import attach_filter
from netboot.sockbuf import set_receive_buffer, set_send_buffer

log = logging.getLogger("netboot.lab")

ETH_P_ALL = 0x0003
ETH_P_8021Q = 0x8100
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_VLAN_VALID = 0x10
AUXDATA = struct.Struct("IIIHHHH")  # struct tpacket_auxdata
SKF_AD_OFF = 0xFFFFF000
SKF_AD_PKTTYPE = SKF_AD_OFF + 4
SKF_AD_VLAN_TAG = SKF_AD_OFF + 44
SKF_AD_VLAN_TAG_PRESENT = SKF_AD_OFF + 48
PRIORITY = 5  # PCP of voice frames
SIDECAR_BUFFER = 32 << 20
PACKET_STATISTICS = 6  # <linux/if_packet.h>: struct tpacket_stats, read and reset


def bpf_vlan(vid: int) -> list[tuple[int, int, int, int]]:
    """Accept frames tagged `vid` (tag in the metadata or still inline) that
    this host did not send; drop everything else in the kernel."""
    return [
        (0x20, 0, 0, SKF_AD_PKTTYPE),  # 0 ld pkttype
        (0x15, 11, 0, PACKET_OUTGOING),  # 1 jeq OUTGOING -> drop
        (0x20, 0, 0, SKF_AD_VLAN_TAG_PRESENT),  # 2 ld vlan_avail
        (0x15, 3, 0, 0),  # 3 jeq 0 -> inline check
        (0x20, 0, 0, SKF_AD_VLAN_TAG),  # 4 ld vlan_tci
        (0x54, 0, 0, 0x0FFF),  # 5 and VID
        (0x15, 5, 6, vid),  # 6 jeq vid -> accept, else drop
        (0x28, 0, 0, 12),  # 7 ldh [12]
        (0x15, 0, 4, ETH_P_8021Q),  # 8 jne 802.1Q -> drop
        (0x28, 0, 0, 14),  # 9 ldh [14] TCI
        (0x54, 0, 0, 0x0FFF),  # 10 and VID
        (0x15, 0, 1, vid),  # 11 jne vid -> drop
        (0x06, 0, 0, 0x40000),  # 12 accept
        (0x06, 0, 0, 0),  # 13 drop
    ]


def bpf_not_outgoing() -> list[tuple[int, int, int, int]]:
    return [
        (0x20, 0, 0, SKF_AD_PKTTYPE),
        (0x15, 0, 1, PACKET_OUTGOING),
        (0x06, 0, 0, 0),
        (0x06, 0, 0, 0x40000),
    ]


def frame_vid(data: bytes, ancillary: list[tuple[int, int, bytes]]) -> tuple[bytes, int | None]:
    """The frame without its 802.1Q tag, and the VID it carried (None: untagged)."""
    for level, kind, value in ancillary:
        if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= AUXDATA.size:
            status, _, _, _, _, tci, _ = AUXDATA.unpack_from(value)
            if status & TP_STATUS_VLAN_VALID:
                return data, tci & 0x0FFF
    if len(data) >= 18 and int.from_bytes(data[12:14], "big") == ETH_P_8021Q:
        return data[:12] + data[16:], int.from_bytes(data[14:16], "big") & 0x0FFF
    return data, None


def add_tag(frame: bytes, vid: int, priority: int = PRIORITY) -> bytes:
    return frame[:12] + struct.pack("!HH", ETH_P_8021Q, priority << 13 | vid) + frame[12:]


def _open(ifname: str, program: list[tuple[int, int, int, int]]) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # receives nothing yet
    try:
        attach_filter(sock, program)
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        # The kernel's 802.1Q, which this stands in for, queues in the device:
        # this thread shares the lab's GIL with thousands of phones, and in a
        # boot storm a default buffer (~90 frames) dropped their voice DHCP.
        set_receive_buffer(sock, SIDECAR_BUFFER)
        set_send_buffer(sock, SIDECAR_BUFFER)
        sock.bind((ifname, ETH_P_ALL))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class SidecarCounts:
    to_port: int = 0  # tagged on the trunk -> untagged into the port
    to_trunk: int = 0  # from the port -> tagged onto the trunk
    dropped: int = 0  # short frames, wrong VID, send errors
    overflowed: int = 0  # frames the kernel dropped on a full sidecar socket


class VlanSidecar:
    """Bridges VLAN `vid` on `trunk` to the untagged `port` (see the module doc)."""

    def __init__(self, trunk: str, port: str, vid: int) -> None:
        self.trunk_name, self.port_name, self.vid = trunk, port, vid
        self.counts = SidecarCounts()
        self.trunk: socket.socket | None = None
        self.port: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = -1, -1

    def open(self) -> None:
        """Open the sockets; the calling thread must be in the appliance's namespace."""
        self.trunk = _open(self.trunk_name, bpf_vlan(self.vid))
        try:
            self.port = _open(self.port_name, bpf_not_outgoing())
        except OSError:
            self.trunk.close()
            raise
        self._stop_r, self._stop_w = os.pipe()

    def start(self) -> None:
        assert self.trunk is not None and self.port is not None
        self._thread = threading.Thread(target=self._run, name=f"vlan{self.vid}", daemon=True)
        self._thread.start()

    def overflows(self) -> int:
        """Frames the kernel dropped on the sidecar's full sockets, so far."""
        for sock in (self.trunk, self.port):
            if sock is not None:
                with contextlib.suppress(OSError):
                    _, drops = struct.unpack(
                        "II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
                    )
                    self.counts.overflowed += drops
        return self.counts.overflowed

    def close(self) -> None:
        self.overflows()
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
            self._thread = None
        for sock in (self.trunk, self.port):
            if sock is not None:
                sock.close()
        self.trunk = self.port = None
        for fd in (self._stop_r, self._stop_w):
            if fd >= 0:
                os.close(fd)
        self._stop_r = self._stop_w = -1

    def _run(self) -> None:
        assert self.trunk is not None and self.port is not None
        trunk, port = self.trunk, self.port
        watched = [trunk.fileno(), port.fileno(), self._stop_r]
        while True:
            readable, _, _ = select.select(watched, [], [])
            if self._stop_r in readable:
                return
            if trunk.fileno() in readable:
                self._drain(trunk, self._from_trunk)
            if port.fileno() in readable:
                self._drain(port, self._from_port)

    def _drain(
        self, sock: socket.socket, handle: Callable[[bytes, list[tuple[int, int, bytes]]], None]
    ) -> None:
        for _ in range(256):
            try:
                data, ancillary, _, address = sock.recvmsg(65536, socket.CMSG_SPACE(AUXDATA.size))
            except BlockingIOError:
                return
            except OSError as exc:
                self.counts.dropped += 1
                log.debug("vlan sidecar: receive: %s", exc)
                return
            if address[2] == PACKET_OUTGOING:
                continue
            if len(data) < 14:
                self.counts.dropped += 1
                continue
            handle(data, ancillary)

    def _from_trunk(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> None:
        frame, vid = frame_vid(data, ancillary)
        if vid != self.vid:
            self.counts.dropped += 1
        elif self._send(self.port, frame):
            self.counts.to_port += 1

    def _from_port(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> None:
        frame, vid = frame_vid(data, ancillary)
        if vid is not None:  # the appliance's voice interface sends untagged only
            self.counts.dropped += 1
        elif self._send(self.trunk, add_tag(frame, self.vid)):
            self.counts.to_trunk += 1

    def _send(self, sock: socket.socket | None, frame: bytes) -> bool:
        """One frame out; a full queue or a send error drops it (the sender retransmits)."""
        if sock is None:
            return False
        try:
            sock.send(frame)
        except OSError as exc:
            self.counts.dropped += 1
            log.debug("vlan sidecar: send: %s", exc)
            return False
        return True
