"""STUN on the wire: up to four UDP sockets (A1:P1, A1:P2, A2:P1, A2:P2).

Each socket is non-blocking and read from the event loop's reader callback in
batches: one recvmmsg(2) brings up to BATCH datagrams (`batch.Batch`; one
recvfrom at a time where libc lacks it). A bare Binding request (no
attributes) takes the engine's memoised fast path and its answer is queued for
one sendmmsg(2) per batch; every other datagram goes through the codec and the
engine, and its reply leaves from the socket the engine picks (CHANGE-REQUEST)
with a plain sendto. A full send buffer drops replies, as UDP would.
Malformed datagrams: logged rate-limited, counted in BAD_INPUT["stun"],
answered only if the engine says so (400 to a broken Binding request, silence
for garbage).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import TYPE_CHECKING

from netboot import metrics
from netboot.clock import Clock, LoopClock
from netboot.ratelog import RateLimitedLog
from netboot.stun import batch as mmsg
from netboot.stun.engine import (
    BARE_HEAD,
    BARE_SIZE,
    Endpoints,
    Reply,
    Site,
    SocketId,
    StunEngine,
    listening,
    tally,
)

if TYPE_CHECKING:
    from netboot.config import Config
    from netboot.supervisor import Context

log = logging.getLogger("netboot.stun")

BATCH = 64
ROUNDS = 8  # batches per wake-up at most, so one busy socket cannot starve the loop
RCVBUF = 1 << 20  # room for bursts from many phones (the kernel caps it at rmem_max)


class StunService:
    name = "stun"

    def __init__(self, ctx: Context, clock: Clock | None = None) -> None:
        cfg = ctx.config.stun
        from netboot import __version__

        self.site = Site(cfg.addresses, cfg.ports, software=f"netboot {__version__}")
        self.engine = StunEngine(self.site, cfg.rate_limit)
        self.clock = clock or LoopClock()
        self.sockets: dict[SocketId, socket.socket] = {}
        self._log = RateLimitedLog(log)  # one key: a line every 10 s, whatever went wrong
        self._endpoints = Endpoints()
        self._batch = mmsg.Batch(BATCH) if mmsg.available() else None

    def reconfigure(self, config: Config) -> None:
        """A reload: the rate limit (addresses and ports are socket keys)."""
        self.engine.reconfigure(config.stun.rate_limit)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for sock_id in self.site.sockets:
            ip, port = self.site.endpoint(sock_id)
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
                sock.bind((str(ip), port))
            except OSError as exc:
                sock.close()
                await self.stop()
                raise OSError(exc.errno, f"stun: cannot bind {ip}:{port}: {exc.strerror}") from None
            self.sockets[sock_id] = sock
        for sock_id, sock in self.sockets.items():
            loop.add_reader(sock.fileno(), self._readable, sock_id, sock)
        log.info("stun: listening on %s", listening(self.site))

    async def serve(self) -> None:
        await asyncio.Event().wait()

    async def stop(self) -> None:
        loop = asyncio.get_running_loop()
        for sock in self.sockets.values():
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(sock.fileno())
            sock.close()
        self.sockets.clear()

    def _readable(self, sock_id: SocketId, sock: socket.socket) -> None:
        if self._batch is None:
            self._read_one_by_one(sock_id, sock)
            return
        fd = sock.fileno()
        for _ in range(ROUNDS):
            try:
                n = self._batch.recv(fd)
            except OSError as exc:  # e.g. ICMP port unreachable reported on a socket
                log.debug("stun: recvmmsg: %s", exc)
                continue
            if n:
                self._serve_batch(n, sock_id, fd)
            if n < BATCH:
                return

    def _serve_batch(self, n: int, sock_id: SocketId, fd: int) -> None:
        """The n datagrams of the last recvmmsg: bare Binding requests answered
        with one sendmmsg, the rest one by one through `receive`."""
        batch = self._batch
        assert batch is not None
        now = self.clock.now()
        handle_bare, sockaddr, names = (
            self.engine.handle_bare,
            self._endpoints.sockaddr,
            batch.names,
        )
        inbuf, lens, stride, index = batch.inbuf, batch.lens, mmsg.LEN_STRIDE, mmsg.LEN_INDEX
        stage = batch.stage
        kinds: list[str] = []
        for i in range(n):
            at = i * mmsg.SLOT
            data = inbuf[at : at + lens[i * stride + index]].tobytes()
            if len(data) == BARE_SIZE and data[:4] == BARE_HEAD:
                source = sockaddr(names[i * 16 + 2 : i * 16 + 8].tobytes())
                answer = handle_bare(data, source, sock_id, now)
                if answer is not None:
                    stage(answer[0], i)
                    kinds.append(answer[1])
            else:
                host, port = batch.source(i)
                self.receive(data, host, port, sock_id)
        if not kinds:
            return
        sent, failed = batch.send(fd)
        for (host, port), err in failed:
            self._warn(f"stun: cannot answer {host}:{port}: {os.strerror(err)}", now)
        for kind, count in tally(kinds, sent).items():
            metrics.STUN_RESPONSES.labels(kind).inc(count)

    def _read_one_by_one(self, sock_id: SocketId, sock: socket.socket) -> None:
        for _ in range(BATCH):
            try:
                data, (host, port) = sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ICMP port unreachable reported on a socket
                log.debug("stun: recvfrom: %s", exc)
                continue
            self.receive(data, host, port, sock_id)

    def receive(self, data: bytes, host: str, port: int, sock_id: SocketId) -> None:
        now = self.clock.now()
        reply, bad = self.engine.datagram(data, (self._endpoints.host(host), port), sock_id, now)
        if bad is not None:
            metrics.BAD_INPUT.labels("stun").inc()
            self._warn(f"stun: dropped bad datagram from {host}:{port}: {bad}", now)
        if reply is not None:
            self.send(reply)

    def send(self, reply: Reply) -> None:
        sock = self.sockets.get(reply.socket)
        if sock is None:
            return
        ip, port = reply.destination
        try:
            sock.sendto(reply.data, (str(ip), port))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._warn(f"stun: cannot answer {ip}:{port}: {exc.strerror}", self.clock.now())
            return
        metrics.STUN_RESPONSES.labels(reply.kind).inc()

    def _warn(self, message: str, now: float) -> None:
        self._log.warning("stun", message, now)


def create(ctx: Context) -> StunService:
    return StunService(ctx)
