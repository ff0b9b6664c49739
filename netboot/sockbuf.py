"""Receive buffers big enough for a floor of phones booting at once.

A few hundred phones powering up together send their DHCP, LLDP, SIP PnP and
TFTP requests within milliseconds; a socket's default buffer (~208 kB, about
90 datagrams) drops most of such a burst before the event loop reads it.
"""

from __future__ import annotations

import socket

BURST_BUFFER = 4 << 20
SO_RCVBUFFORCE = 33  # Linux: as root (CAP_NET_ADMIN), past net.core.rmem_max


def set_receive_buffer(sock: socket.socket, size: int = BURST_BUFFER) -> None:
    """`size` bytes of receive buffer; without CAP_NET_ADMIN, as much as
    net.core.rmem_max allows."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except OSError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
