"""One TFTP read transfer's socket: on the event loop, or in a thread of its own.

Each transfer has its own socket connected to the client (RFC 1350 §4: the
server's TID) and runs its `ReadSession` (session.py): what to send, when to
retransmit and when to give up are the session's; these classes only carry
packets and timers. Short transfers run on the loop (`LoopTransfer`); long
ones (firmware) in a thread on a blocking socket (`ThreadedTransfer`).
Lock-step TFTP is one round trip per block, and per block the event loop
costs an epoll wait, a recvfrom and its own bookkeeping where a blocking recv
costs one system call: measured in bench/files.sh, that is the difference
between 0.8x and 1x tftpd-hpa. The session engine is the same as on the loop;
the thread owns only the socket and the session, and hands the ending back to
the loop (registry and metrics are written there only). SO_RCVTIMEO wakes the
thread every RECV_WAKE seconds to run the session's timer and to see `stop`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, cast

from netboot.provisioning.files import Resolved
from netboot.tftp import codec
from netboot.tftp.session import ReadSession
from netboot.wire import DecodeError

log = logging.getLogger("netboot.tftp")

Peer = tuple[str, int]
RECV_WAKE = 0.05  # a threaded transfer looks at its timer and at stop this often when idle


class LoopTransfer(asyncio.DatagramProtocol):
    """One read transfer on its own connected socket, on the event loop. Ends
    by calling `ended(self)`; a bad packet is reported with `bad(peer, exc)`."""

    threaded = False

    def __init__(
        self,
        peer: Peer,
        session: ReadSession,
        outcome: Resolved,
        ended: Callable[[LoopTransfer], None],
        bad: Callable[[Peer, DecodeError], None],
    ) -> None:
        self.peer, self.session, self.outcome = peer, session, outcome
        self.ended, self.bad = ended, bad
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        if self.closed:  # ended (evicted, stopped) while its socket was being made
            self.transport.close()
            return
        self._send(self.session.start(self.loop.time()))

    def _send(self, packets: list[bytes]) -> None:
        transport = self.transport
        if transport is None:
            return
        for packet in packets:
            transport.sendto(packet)
        if self.session.finished:
            self.finish()
        elif self.timer is None and self.session.deadline is not None:
            self.timer = self.loop.call_at(self.session.deadline, self._tick)

    def _tick(self) -> None:
        self.timer = None
        deadline = self.session.deadline
        if self.closed or deadline is None:
            return
        now = self.loop.time()
        if now < deadline:  # progress moved the deadline: sleep again (one handle, no churn)
            self.timer = self.loop.call_at(deadline, self._tick)
            return
        self._send(self.session.on_timer(now))

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.closed:
            return
        # Hot path: a well-formed ACK without building anything.
        if len(data) == 4 and data[0] == 0 and data[1] == codec.ACK:
            self._send(self.session.ack(data[2] << 8 | data[3], self.loop.time()))
            return
        try:
            message = codec.decode(data)
        except DecodeError as exc:
            self.bad(self.peer, exc)
            return
        self._send(self.session.receive(message, self.loop.time()))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable: the client went away; the timer ends the transfer.
        log.debug("tftp: %s:%d: %s", *self.peer, exc)

    def request_again(self) -> None:
        if not self.closed:
            self._send(self.session.request_again(self.loop.time()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish()

    def finish(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.close()
        self.ended(self)


def connected_socket(peer: Peer) -> socket.socket:
    """A blocking UDP socket connected to `peer` (our TID), waking every RECV_WAKE."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        wake = int(RECV_WAKE * 1_000_000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, wake))
        sock.connect(peer)
    except OSError:
        sock.close()
        raise
    return sock


class ThreadedTransfer:
    """One long read transfer in its own thread. Everything but the socket and
    the session stays on the loop: the thread ends by scheduling `finish` there,
    which calls `ended(self)`; a bad packet is reported with `bad(peer, exc)`
    on the loop."""

    threaded = True

    def __init__(
        self,
        peer: Peer,
        session: ReadSession,
        outcome: Resolved,
        sock: socket.socket,
        ended: Callable[[ThreadedTransfer], None],
        bad: Callable[[Peer, DecodeError], None],
    ) -> None:
        self.peer, self.session, self.outcome, self.sock = peer, session, outcome, sock
        self.ended, self.bad = ended, bad
        self.loop = asyncio.get_running_loop()
        self.stopping = False
        self.again = False  # the client repeated its RRQ (set on the loop, read by the thread)
        self.closed = False
        self.left = False  # the thread has left its loop (set by the thread, read on the loop)
        self.thread = threading.Thread(target=self._run, name=f"tftp {peer[0]}:{peer[1]}")
        self.thread.daemon = True

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        session, sock = self.session, self.sock
        send, recv, clock, ack_op = sock.send, sock.recv, time.monotonic, codec.ACK

        def push(packets: list[bytes]) -> None:
            for packet in packets:
                try:
                    send(packet)
                except ConnectionRefusedError:  # ICMP about an earlier packet: the timer decides
                    return

        try:
            push(session.start(clock()))
            while not session.finished and not self.stopping:
                if self.again:
                    self.again = False
                    push(session.request_again(clock()))
                try:
                    data = recv(65536)
                except OSError as exc:
                    # EAGAIN: SO_RCVTIMEO passed; otherwise an ICMP error (the
                    # client went away): either way the timer decides.
                    if not isinstance(exc, BlockingIOError):
                        log.debug("tftp: %s:%d: %s", *self.peer, exc)
                    now = clock()
                    if session.deadline is not None and now >= session.deadline:
                        push(session.on_timer(now))
                    continue
                now = clock()
                if len(data) == 4 and data[0] == 0 and data[1] == ack_op:  # the hot path
                    push(session.ack(data[2] << 8 | data[3], now))
                else:
                    try:
                        push(session.receive(codec.decode(data), now))
                    except DecodeError as exc:
                        self.loop.call_soon_threadsafe(self.bad, self.peer, exc)
                # Packets that make no progress must not keep the timer from firing.
                if session.deadline is not None and now >= session.deadline:
                    push(session.on_timer(now))
        except OSError as exc:  # sending or reading the file failed for good
            if not session.finished:
                session.failed = f"I/O error: {exc.strerror or exc}"
        finally:
            # Before finish is scheduled: the thread may still be alive when
            # finish runs, and is_alive() then made finish wait for a second
            # call that never came (the transfer was recorded only when a
            # later sweep ended it, 20-45 s on).
            self.left = True
            try:
                self.loop.call_soon_threadsafe(self.finish)
            except RuntimeError:  # the loop is closed: nobody records this any more
                self._close()

    def request_again(self) -> None:
        """A repeated RRQ: the thread answers it (the session is the thread's)."""
        self.again = True

    def finish(self) -> None:
        """On the loop: ends the transfer (asks the thread to stop first if it runs)."""
        if self.closed:
            return
        if not self.left:
            self.stopping = True  # the thread schedules finish again when it has left
            return
        self._close()
        self.ended(self)

    def _close(self) -> None:
        self.closed = True
        self.sock.close()
