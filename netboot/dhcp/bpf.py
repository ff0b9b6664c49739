"""Classic BPF socket filters and the AF_PACKET sockets they guard: the one
copy the DHCP transport and the lab (netboot.lab.vlan, netboot.lab.segment) use.

A program is a list of (code, jt, jf, k) instructions (linux/filter.h); the
ancillary loads at SKF_AD_OFF + n read packet metadata (pkt_type, VLAN tag).
"""

from __future__ import annotations

import ctypes
import socket
import struct

Program = list[tuple[int, int, int, int]]

SO_ATTACH_FILTER = 26
SKF_AD_OFF = 0xFFFFF000
SKF_AD_PKTTYPE = SKF_AD_OFF + 4
PACKET_OTHERHOST = 3


def udp_dport(port: int, any_host: bool = False) -> Program:
    """IPv4, UDP, not a fragment, destination `port`, addressed to this host.
    A frame tagged for a VLAN that has no interface here reaches the parent's
    sockets with its tag removed and pkt_type OTHERHOST (as does a frame seen
    only in promiscuous mode): it is not ours to answer. With `any_host`,
    whatever the destination MAC (the lab's phones: replies go by L2 unicast
    to each phone's own MAC, seen only because the interface is promiscuous)."""
    mine: Program = [
        (0x20, 0, 0, SKF_AD_PKTTYPE),  # ld pkttype
        (0x15, 10, 0, PACKET_OTHERHOST),  # jeq OTHERHOST -> drop
    ]
    return ([] if any_host else mine) + [
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


def arp_reply() -> Program:
    return [
        (0x28, 0, 0, 12),  # ldh [12]
        (0x15, 0, 3, 0x0806),  # jne ARP -> drop
        (0x28, 0, 0, 20),  # ldh [20] ARP op
        (0x15, 0, 1, 2),  # jne reply -> drop
        (0x06, 0, 0, 0x40000),
        (0x06, 0, 0, 0),
    ]


def attach_filter(sock: socket.socket, program: Program) -> None:
    code = b"".join(struct.pack("HBBI", *insn) for insn in program)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def packet_socket(ifname: str, ethertype: int, program: Program) -> socket.socket:
    """A non-blocking AF_PACKET socket on `ifname` that sees only what
    `program` accepts: opened with protocol 0 (receives nothing), filtered,
    then bound, so no unfiltered packet slips in between."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        attach_filter(sock, program)
        sock.bind((ifname, ethertype))
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    except OSError:
        sock.close()
        raise
    return sock
