"""The LLDP/CDP raw sockets: one AF_PACKET socket per physical interface and
protocol, bound to its ethertype and joined to its multicast group.

LLDP is ethertype 0x88cc to 01:80:c2:00:00:0e (IEEE 802.1AB); CDP frames are
802.3 length frames, which Linux hands to the ETH_P_802_2 type, to
01:00:0c:cc:cc:cc."""

from __future__ import annotations

import socket
import struct

from netboot.lldp.advertiser import LocalPort, Protocol
from netboot.sockbuf import set_receive_buffer

ETH_P_802_2, SOL_PACKET, PACKET_ADD_MEMBERSHIP, PACKET_OUTGOING = 0x0004, 263, 1, 4
GROUPS: dict[Protocol, tuple[int, bytes]] = {
    "lldp": (0x88CC, bytes.fromhex("0180c200000e")),
    "cdp": (ETH_P_802_2, bytes.fromhex("01000ccccccc")),
}


def open_socket(port: LocalPort, protocol: Protocol) -> socket.socket:
    ethertype, group = GROUPS[protocol]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
    try:
        sock.bind((port.name, ethertype))
        set_receive_buffer(sock)
        membership = struct.pack("iHH8s", port.if_index, 0, 6, group)  # PACKET_MR_MULTICAST
        sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(f"lldp: cannot open {protocol} socket on {port.name}: {exc}") from exc
    return sock
