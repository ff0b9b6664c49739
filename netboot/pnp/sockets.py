"""The PnP socket mechanics: opening one interface's socket, a send backlog
for a full socket buffer, and the ICMP error queue (IP_RECVERR).

Each socket is bound to 0.0.0.0:<pnp.port> and to its device
(SO_BINDTODEVICE), and joined to 224.0.1.75 with the interface's address
(IP_ADD_MEMBERSHIP; IP_MULTICAST_IF for anything sent). Binding the group
address instead would make the unicast answers' source wrong and unicast
SUBSCRIBEs unreachable. The phones' multicast SUBSCRIBEs and unicast ones
arrive on the same socket; every answer is unicast from our own address.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import socket
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network
from typing import TYPE_CHECKING, Protocol

from netboot import metrics, netif
from netboot.pnp.engine import Address, Send
from netboot.sockbuf import set_receive_buffer, set_send_buffer

if TYPE_CHECKING:
    from netboot.config import Config

log = logging.getLogger("netboot.pnp")

PNP_GROUP = "224.0.1.75"
READS_PER_WAKE = 64
MAX_BACKLOG = 4096  # sends waiting for room in a full socket buffer (oldest dropped)
IP_RECVERR = 11  # <linux/in.h>: ICMP errors of an unconnected socket, on its error queue

OnError = Callable[[Send, OSError], None]


class _Sendto(Protocol):
    def sendto(self, data: bytes, dest: Address, /) -> int: ...

    def fileno(self) -> int: ...


def served_interfaces(config: Config) -> list[tuple[str, IPv4Address, tuple[IPv4Network, ...]]]:
    """Each served interface, the address PnP answers from (its configured
    server address, else its first) and its subnets."""
    found: list[tuple[str, IPv4Address, tuple[IPv4Network, ...]]] = []
    for ifname in config.interfaces:
        nets = netif.addresses(ifname)
        address = config.server_address(ifname) or (nets[0].ip if nets else None)
        if address is None:
            raise OSError(f"pnp: interface {ifname} has no IPv4 address")
        found.append((ifname, address, tuple(n.network for n in nets)))
    return found


def open_socket(ifname: str, address: IPv4Address, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
        sock.bind(("0.0.0.0", port))
        set_receive_buffer(sock)
        set_send_buffer(sock)
        group = socket.inet_aton(PNP_GROUP) + address.packed
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, group)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, address.packed)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(f"pnp: cannot listen on {ifname} UDP port {port}: {exc}") from exc
    return sock


def failed_destinations(sock: socket.socket, name: str) -> list[Address]:
    """The destinations the ICMP errors queued on the socket name (IP_RECVERR).
    Drained every time, or the queue would keep the socket readable."""
    out: list[Address] = []
    for _ in range(READS_PER_WAKE):
        try:
            _, _, _, dest = sock.recvmsg(1, 512, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            log.debug("pnp: error queue on %s: %s", name, exc)
            break
        if isinstance(dest, tuple) and len(dest) >= 2:
            out.append((str(dest[0]), int(dest[1])))
    return out


class Sender:
    """Sends in order; when the socket's send budget is spent (datagrams to
    unresolved spoofed addresses hold it for seconds) the rest wait for room
    (a bounded backlog, oldest dropped) instead of being dropped."""

    def __init__(self, sock: _Sendto) -> None:
        self.sock = sock
        self.backlog: collections.deque[Send] = collections.deque(maxlen=MAX_BACKLOG)

    def send(self, send: Send, on_error: OnError) -> None:
        if self.backlog:  # keep the order: after what already waits
            self._queue(send, on_error)
            return
        try:
            self.sock.sendto(send.data, send.dest)
        except BlockingIOError:
            self._queue(send, on_error)
        except OSError as exc:
            on_error(send, exc)

    def _queue(self, send: Send, on_error: OnError) -> None:
        if len(self.backlog) == self.backlog.maxlen:
            metrics.LIMITED.labels("pnp", "send-backlog-dropped").inc()
        if not self.backlog:
            asyncio.get_running_loop().add_writer(self.sock.fileno(), self._writable, on_error)
        self.backlog.append(send)

    def _writable(self, on_error: OnError) -> None:
        while self.backlog:
            send = self.backlog[0]
            try:
                self.sock.sendto(send.data, send.dest)
            except BlockingIOError:
                return
            except OSError as exc:
                on_error(send, exc)
            self.backlog.popleft()
        asyncio.get_running_loop().remove_writer(self.sock.fileno())

    def close(self) -> None:
        if self.backlog:
            asyncio.get_running_loop().remove_writer(self.sock.fileno())
            self.backlog.clear()
