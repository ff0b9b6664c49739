"""Receive buffers big enough for a floor of phones booting at once.

A few hundred phones powering up together send their DHCP, LLDP, SIP PnP and
TFTP requests within milliseconds; a socket's default buffer (~208 kB, about
90 datagrams) drops most of such a burst before the event loop reads it.
"""

from __future__ import annotations

import socket

BURST_BUFFER = 4 << 20
SO_RCVBUFFORCE = 33  # Linux: as root (CAP_NET_ADMIN), past net.core.rmem_max
SO_SNDBUFFORCE = 32  # Linux: as root (CAP_NET_ADMIN), past net.core.wmem_max


def set_receive_buffer(sock: socket.socket, size: int = BURST_BUFFER) -> None:
    """`size` bytes of receive buffer; without CAP_NET_ADMIN, as much as
    net.core.rmem_max allows."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def set_send_buffer(sock: socket.socket, size: int = BURST_BUFFER) -> None:
    """`size` bytes of send buffer. A datagram to an address whose ARP entry
    is unresolved waits in the kernel (up to ~3 s) on the socket's send
    budget: answers to a flood of spoofed, non-existent sources would
    otherwise fill the default ~208 kB and make the next send fail."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
