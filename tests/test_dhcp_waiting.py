"""`dhcp.sockets.queued`: how the registry's writer knows a DHCP request waits
(netboot/supervisor.py `_flush_registry` writes only in DHCP's gaps)."""

from __future__ import annotations

import socket

from netboot.dhcp import sockets


def test_queued_is_the_next_datagrams_length_and_zero_when_empty() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        rx.bind(("127.0.0.1", 0))
        rx.setblocking(False)
        assert sockets.queued(rx) == 0
        tx.sendto(b"x" * 300, rx.getsockname())
        tx.sendto(b"y" * 548, rx.getsockname())
        rx.settimeout(5)
        first = rx.recv(4096, socket.MSG_PEEK)  # delivered (loopback is synchronous, but wait)
        assert len(first) == 300
        assert sockets.queued(rx) == 300
        rx.recv(4096)
        assert sockets.queued(rx) == 548
        rx.recv(4096)
        assert sockets.queued(rx) == 0


def test_queued_of_a_closed_socket_is_zero() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.close()
    assert sockets.queued(sock) == 0
