"""The HTTP(S) listening socket, accepted at the connection budget's pace.

asyncio's own server accepts whatever the kernel has queued, at once; at
`http.max_connections` the budget then had to close something, and in a boot
storm new connections closed each other before they were served (issue 18).
Here a connection taken from the backlog is served only when the budget
(`limits.py`) admits one more: at the cap it is held (one at most) and the
listening socket is left unread, so the next connections wait in the
kernel's listen backlog (`http.max_queued`) until one closes, or until a
keep-alive connection has been idle long enough to be closed for room
(asked with a connection in hand, room is made only for one that really
waits). The decisions are the budget's; this is the thin transport.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any, Protocol

from netboot import metrics
from netboot.http.limits import Admission
from netboot.ratelog import RateLimitedLog

log = logging.getLogger("netboot.http")

BATCH = 128  # accept() calls per wakeup at most: other work gets the loop between batches
# accept() out of descriptors or kernel memory (or failing otherwise): stop
# accepting this long (what asyncio's server does), the connections wait in
# the backlog; no busy loop on a listening socket that stays readable.
RESOURCE_PAUSE = 1.0


class Taker(Protocol):
    """The connection manager the acceptor feeds (`app.GuardedServer`)."""

    def make_room(self, now: float) -> Admission: ...

    def take(
        self,
        conn: socket.socket,
        peer: Any,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float,
    ) -> None: ...


class Acceptor(asyncio.AbstractServer):
    """One listening socket; `resume()` when the budget may have room again."""

    def __init__(
        self,
        sock: socket.socket,
        taker: Taker,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout: float,
    ) -> None:
        self.sock = sock
        self.taker = taker
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout
        self.loop = asyncio.get_running_loop()
        self.reading = False
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self.errors = RateLimitedLog(log)
        # Accepted, waiting for room (one at most: the rest wait in the backlog).
        self.held: tuple[socket.socket, Any] | None = None

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return () if self.closed else (self.sock,)

    def start(self) -> None:
        self.resume()

    def resume(self) -> None:
        """Read the listening socket again (a connection closed, a timer)."""
        if self.closed or self.reading:
            return
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.loop.add_reader(self.sock.fileno(), self._ready)
        self.reading = True
        if self.held is not None:  # not in the backlog: the reader would not see it
            self.loop.call_soon(self._ready)

    def wake_at(self, when: float) -> None:
        """While paused, look again at `when` at the latest (a keep-alive
        connection may make room then)."""
        if not self.reading and not self.closed:
            self._pause(when)

    def _pause(self, wake: float | None) -> None:
        if self.reading:
            self.loop.remove_reader(self.sock.fileno())
            self.reading = False
        if wake is None:
            return
        if self.timer is not None and self.timer.when() > wake:
            self.timer.cancel()
            self.timer = None
        if self.timer is None:
            self.timer = self.loop.call_at(wake, self._timer)

    def _timer(self) -> None:
        self.timer = None
        self.resume()

    def _ready(self) -> None:
        if self.closed:
            return
        for _ in range(BATCH):
            if self.held is None:
                try:
                    conn, peer = self.sock.accept()
                except (BlockingIOError, InterruptedError):
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:  # EMFILE, ENFILE, ENOBUFS, ENOMEM, or stranger
                    metrics.LIMITED.labels("http", "accept-failed").inc()
                    self.errors.warning(
                        "accept",
                        f"http: cannot accept a connection: {exc.strerror}; pausing"
                        f" {RESOURCE_PAUSE:.0f} s (the connections wait in the backlog)",
                        self.loop.time(),
                    )
                    self._pause(self.loop.time() + RESOURCE_PAUSE)
                    return
                conn.setblocking(False)
                self.held = (conn, peer)
            # Asked with a connection in hand: room is made for one only
            # when one is really waiting.
            admission = self.taker.make_room(self.loop.time())
            if not admission.accept:
                # It waits here, the next ones in the kernel's backlog.
                self._pause(admission.wake)
                return
            conn, peer = self.held
            self.held = None
            self.taker.take(conn, peer, self.ssl_context, self.handshake_timeout)

    # ---------------------------------------------------- asyncio.AbstractServer

    def close(self) -> None:
        if self.closed:
            return
        self._pause(None)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.closed = True
        self.sock.close()
        if self.held is not None:
            self.held[0].close()
            self.held = None

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self.loop

    def is_serving(self) -> bool:
        return not self.closed

    async def start_serving(self) -> None:
        self.start()

    async def serve_forever(self) -> None:
        self.start()
        try:
            await asyncio.Event().wait()
        finally:
            self.close()

    async def wait_closed(self) -> None:
        return None


def listen(host: str, port: int, backlog: int) -> socket.socket:
    """A non-blocking TCP listening socket (SO_REUSEADDR, like aiohttp's sites)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
