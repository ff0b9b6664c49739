"""The DHCP service's sockets and its interfaces' addresses (no decisions).

Per served interface: an AF_PACKET socket with a BPF filter for untagged IPv4
UDP to port 67 (it sees clients that have no address yet, and knows which
interface a request came in on); a UDP socket bound to port 67 on the same
device that never reads (it keeps the kernel from answering with ICMP
port-unreachable) and sends the L3 unicast replies (relay, ciaddr); an
AF_PACKET ARP socket for the address probes; an AF_PACKET socket for
BOOTREPLYs to port 68 (the rogue-DHCP guard). One raw ICMP socket probes
addresses behind a relay with an echo, as ISC dhcpd does.
"""

from __future__ import annotations

import array
import fcntl
import logging
import socket
import termios
from typing import TYPE_CHECKING

from netboot import netif
from netboot.dhcp import bpf, codec

if TYPE_CHECKING:
    from netboot.config import DhcpConfig

log = logging.getLogger("netboot.dhcp")


def links(config: DhcpConfig) -> dict[str, tuple[bytes, int]]:
    """Each scope's interface -> (its MAC, the server address DHCP answers from)."""
    out: dict[str, tuple[bytes, int]] = {}
    for scope in config.scopes:
        mac = netif.mac(scope.interface)
        addrs = [a.ip for a in netif.addresses(scope.interface)]
        if scope.address is not None:
            ip = scope.address
            if addrs and ip not in addrs:
                log.warning(
                    "%s: configured address %s is not on the interface", scope.interface, ip
                )
        else:
            inside = [a for a in addrs if a in scope.subnet]
            if not inside:
                raise OSError(
                    f"dhcp: interface {scope.interface} has no address in {scope.subnet}; "
                    f"set the scope's address or give the interface one"
                )
            ip = inside[0]
        out[scope.interface] = (mac, int(ip))
    return out


def guard(interface: str) -> socket.socket:
    try:
        return bpf.packet_socket(interface, codec.ETH_P_IP, bpf.udp_dport(68))
    except PermissionError:
        raise OSError("dhcp: raw sockets need root or CAP_NET_RAW") from None


def serving(interface: str) -> tuple[socket.socket, socket.socket, socket.socket]:
    """(raw DHCP, ARP, UDP) for `interface`."""
    try:
        raw = bpf.packet_socket(interface, codec.ETH_P_IP, bpf.udp_dport(67))
        arp = bpf.packet_socket(interface, codec.ETH_P_ARP, bpf.arp_reply())
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        udp.bind(("0.0.0.0", 67))
        udp.setblocking(False)
    except PermissionError:
        raise OSError("dhcp: raw sockets need root or CAP_NET_RAW + CAP_NET_BIND_SERVICE") from None
    return raw, arp, udp


def icmp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)
    return sock


def queued(sock: socket.socket) -> int:
    """Bytes of the next datagram waiting in `sock` (0: none; FIONREAD, which
    packet and UDP sockets answer with the next one's length)."""
    size = array.array("i", [0])
    try:
        fcntl.ioctl(sock.fileno(), termios.FIONREAD, size)
    except (OSError, ValueError):  # closed (fileno -1)
        return 0
    return size[0]
