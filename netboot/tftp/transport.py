"""TFTP server over asyncio UDP: read-only, many transfers at once.

Requests arrive on `tftp.port`. Each accepted read gets its own socket on a
fresh ephemeral port, connected to the client (RFC 1350 §4: the server's TID),
so transfers never see each other's packets and the kernel drops strays. A
retransmitted RRQ (same client address and port while its transfer runs) is
ignored instead of starting a second transfer. Write requests are refused with
ERROR 2 (read-only server).

Files are read (source.py) in chunks with `os.pread` as blocks are needed (a 32 MB firmware
costs a chunk of memory per transfer, not 32 MB); rendered files are bytes
already. A transfer holds no open file between chunks: the file is opened for
each chunk and must still be the same file (inode, size, mtime), so a session
costs one descriptor, its socket, and a session whose client never answered
costs one block of memory.

Budgets (issue 16: ~2200 spoofed RRQs used to exhaust the descriptors):
`max_sessions` transfers at once and `max_sessions_per_source` per client
address; which request runs, waits or is refused is the admission engine's
decision (engine.py: a boot storm waits in a bounded queue, a flood of forged
requests drains); this module only carries it out. A client's `timeout`
option over `max_client_timeout` is ignored.

Long transfers (firmware: more than BIG_BLOCKS blocks) run in a thread of
their own on a blocking socket, up to MAX_THREADS at once; the rest (config
files, and long ones beyond that) run on the event loop. Lock-step TFTP is one
round trip per block, and per block the loop costs an epoll wait, a recvfrom
and its own bookkeeping where a blocking recv costs one system call: measured
in bench/files.sh, that is the difference between 0.8x and 1x tftpd-hpa. The
session engine is the same; the thread hands the ending back to the loop
(registry and metrics are written there only). netascii transfers convert line ends in memory (RFC 1350 appendix;
config-sized files only). Names go through the shared `FileResolver`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import threading
import time
from typing import Any, cast

from netboot import metrics
from netboot.config import Config
from netboot.fdlimit import raise_descriptor_limit
from netboot.provisioning.files import FileResolver, Refusal, Resolved
from netboot.ratelog import LogBudget, RateLimitedLog
from netboot.sockbuf import set_receive_buffer
from netboot.supervisor import Context
from netboot.tftp import codec
from netboot.tftp.engine import AdmissionQueue
from netboot.tftp.session import BlockSource, ReadSession, negotiate
from netboot.tftp.source import MAX_NETASCII, FileChunks, bytes_source, netascii
from netboot.wire import DecodeError

log = logging.getLogger("netboot.tftp")

MEMORY_BUDGET = 64 * 1024 * 1024  # bytes held by transfers served from memory, all together
BIG_BLOCKS = 64  # transfers longer than this get a thread (see the module docstring)
MAX_THREADS = 8
RECV_WAKE = 0.05
# A client's first answer (ACK 1, or ACK 0 of an OACK) is waited for this
# long without retransmitting (a forged request still buys one answer): in a
# boot storm of 5000 lab phones, 1 s ended a third of the transfers of real
# phones whose ACK the busy server read late. While requests wait for a slot,
# a session silent this long is ended to make room (engine.py `grace`).
FIRST_WAIT = 3.0  # a threaded transfer looks at its timer and at stop this often when idle

_ERROR_FOR = {
    "not-found": (codec.ERR_NOT_FOUND, "file not found"),
    "forbidden": (codec.ERR_ACCESS, "access violation"),
    "refused-name": (codec.ERR_ACCESS, "access violation: bad file name"),
    "unreadable": (codec.ERR_ACCESS, "access violation: file not readable"),
}


class _Transfer(asyncio.DatagramProtocol):
    """One read transfer on its own connected socket."""

    def __init__(
        self,
        server: TftpService,
        peer: tuple[str, int],
        session: ReadSession,
        outcome: Resolved,
    ) -> None:
        self.server = server
        self.peer = peer
        self.session = session
        self.outcome = outcome
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
            self.server.bad_packet(self.peer, exc)
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
        self.server.transfer_ended(self)


class _ThreadedTransfer:
    """One long read transfer in its own thread, on a blocking connected socket
    (SO_RCVTIMEO wakes it to run the session's timer). Everything but the
    socket and the session stays on the loop: the thread ends by scheduling
    `finish` there."""

    def __init__(
        self,
        server: TftpService,
        peer: tuple[str, int],
        session: ReadSession,
        outcome: Resolved,
        sock: socket.socket,
    ) -> None:
        self.server = server
        self.peer = peer
        self.session = session
        self.outcome = outcome
        self.sock = sock
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
                        self.loop.call_soon_threadsafe(self.server.bad_packet, self.peer, exc)
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
        self.server.transfer_ended(self)

    def _close(self) -> None:
        self.closed = True
        self.sock.close()


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, server: TftpService) -> None:
        self.server = server
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.server.request_received(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.debug("tftp: listener: %s", exc)


class TftpService:
    name = "tftp"

    def __init__(
        self, ctx: Context, resolver: FileResolver | None = None, host: str = "0.0.0.0"
    ) -> None:
        self.ctx = ctx
        self.config = ctx.config.tftp
        self.resolver = resolver or ctx.files
        self.host = host
        self.port = self.config.port
        self.listener: asyncio.DatagramTransport | None = None
        self.transfers: dict[tuple[str, int], _Transfer | _ThreadedTransfer] = {}
        self.threads = 0  # threaded transfers running
        self.pending: set[asyncio.Task[None]] = set()
        self.bad = RateLimitedLog(log)
        self.limits = RateLimitedLog(log)
        self.admission: AdmissionQueue[Any] = AdmissionQueue(
            self.config.max_sessions,
            self.config.max_sessions_per_source,
            self.config.max_queued,
            grace=max(self.config.timeout, FIRST_WAIT),
        )
        self.tick_handle: asyncio.TimerHandle | None = None
        self.held: dict[tuple[str, int], int] = {}  # bytes of in-memory sources per transfer
        self.events = LogBudget(log)  # a line per refused or failed file, within a budget

    async def start(self) -> None:
        raise_descriptor_limit(self.ctx.config)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Listener(self), local_addr=(self.host, self.port), family=socket.AF_INET
            )
        except OSError as exc:
            raise OSError(
                exc.errno, f"tftp: cannot bind UDP {self.host}:{self.port}: {exc.strerror}"
            ) from None
        # Every phone of a floor asks for its files within the same second:
        # room for thousands of RRQs instead of the default ~90 datagrams.
        sock = transport.get_extra_info("socket")
        set_receive_buffer(sock)
        self.listener = transport
        self.port = transport.get_extra_info("sockname")[1]
        log.info("tftp: serving %s on UDP port %d", self.resolver.root, self.port)

    async def serve(self) -> None:
        await asyncio.Event().wait()

    def reconfigure(self, config: Config) -> None:
        """A reload: timeout and retries for the next transfers (the root is
        the shared resolver's), and the admission budgets."""
        self.config = config.tftp
        self.admission.max_sessions = self.config.max_sessions
        self.admission.per_source = self.config.max_sessions_per_source
        self.admission.max_queued = self.config.max_queued
        self.admission.grace = max(self.config.timeout, FIRST_WAIT)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            # The socket closes on the loop's next turn: wait, so the port is
            # free when stop returns (a reload may bind it again at once).
            protocol = self.listener.get_protocol()
            if isinstance(protocol, _Listener):
                await protocol.closed
        if self.tick_handle is not None:
            self.tick_handle.cancel()
            self.tick_handle = None
        self.admission.max_sessions = 0  # nothing starts from the queue any more
        for task in list(self.pending):
            task.cancel()
        for transfer in list(self.transfers.values()):
            transfer.finish()
        threads = [t.thread for t in self.transfers.values() if isinstance(t, _ThreadedTransfer)]
        for thread in threads:  # each leaves within RECV_WAKE of being asked
            await asyncio.to_thread(thread.join, 5.0)
        for transfer in list(self.transfers.values()):
            transfer.finish()

    def bad_packet(self, peer: tuple[str, int], exc: DecodeError) -> None:
        metrics.BAD_INPUT.labels("tftp").inc()
        self.bad.warning(
            "packet", f"tftp: bad packet from {peer[0]}:{peer[1]}: {exc}", time.monotonic()
        )

    # ------------------------------------------------------------ requests

    def _reply_error(self, peer: tuple[str, int], code: int, message: str) -> None:
        if self.listener is not None:
            self.listener.sendto(codec.error_packet(code, message), peer)

    def request_received(self, data: bytes, peer: tuple[str, int]) -> None:
        try:
            message = codec.decode(data)
        except DecodeError as exc:
            metrics.BAD_INPUT.labels("tftp").inc()
            self.bad.warning(
                "request", f"tftp: bad request from {peer[0]}:{peer[1]}: {exc}", time.monotonic()
            )
            return
        if isinstance(message, codec.WriteRequest):
            metrics.FILES_SERVED.labels("tftp", "write-refused").inc()
            self._reply_error(
                peer, codec.ERR_ACCESS, "read-only server: write requests are refused"
            )
            return
        if not isinstance(message, codec.ReadRequest):
            # DATA/ACK/... for a transfer that is not ours (RFC 1350 §4: unknown TID).
            self._reply_error(peer, codec.ERR_UNKNOWN_TID, "unknown transfer ID")
            return
        running = self.transfers.get(peer)
        if running is not None:
            # The client retransmitted its RRQ: its transfer is already running
            # (resent once if our first window was lost; ignored once it answered).
            running.request_again()
            return
        if self.admission.running(peer):
            return  # its transfer is being opened
        mode = message.mode.lower()
        if mode not in ("octet", "netascii"):
            self._reply_error(peer, codec.ERR_ILLEGAL, f"unsupported mode {message.mode!r}")
            return
        outcome = self.resolver.resolve(message.filename, peer[0])
        if isinstance(outcome, Refusal):
            code, text = _ERROR_FOR[outcome.result]
            self.events.info(
                time.monotonic(),
                "tftp: %s:%d %r: %s (%s)",
                *peer,
                outcome.name,
                outcome.result,
                outcome.reason,
            )
            self.resolver.record(outcome, "tftp")
            self._reply_error(peer, code, text)
            return
        now = time.monotonic()
        verdict = self.admission.offer(peer, (message, mode, outcome), now)
        if verdict.action == "refused":
            metrics.LIMITED.labels("tftp", f"sessions-{verdict.reason}").inc()
            self.limits.warning(
                verdict.reason,
                f"tftp: refusing {peer[0]}:{peer[1]}: {verdict.reason} session budget reached",
                now,
            )
            self._reply_error(peer, codec.ERR_UNDEFINED, "busy")  # shorter than any RRQ
            return
        if verdict.action == "queued":
            metrics.LIMITED.labels("tftp", "sessions-queued").inc()
            self._arm()
            return
        if verdict.action == "dropped":
            metrics.LIMITED.labels("tftp", "queue").inc()
            self.limits.warning(
                "queue", "tftp: queue full: a request waits for its repetition", now
            )
            return
        self._evict(verdict.evict, now)
        self._launch(peer, message, mode, outcome)

    def _evict(self, victims: tuple[tuple[str, int], ...], now: float) -> None:
        for victim in victims:
            metrics.LIMITED.labels("tftp", "sessions-evicted").inc()
            self.limits.warning(
                "evict",
                f"tftp: session budget reached: ending the silent transfer to {victim[0]}:{victim[1]}",
                now,
            )
            evicted = self.transfers.get(victim)
            if evicted is not None:
                evicted.session.failed = "evicted"
                evicted.finish()

    def _launch(
        self, peer: tuple[str, int], message: codec.ReadRequest, mode: str, outcome: Resolved
    ) -> None:
        try:
            task = asyncio.get_running_loop().create_task(self._open(message, mode, outcome, peer))
        except RuntimeError:
            self.admission.cancel(peer)
            return
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    def _arm(self) -> None:
        """One timer for the admission engine's next decision."""
        deadline = self.admission.deadline()
        if self.tick_handle is not None:
            if deadline is not None and self.tick_handle.when() <= deadline:
                return
            self.tick_handle.cancel()
            self.tick_handle = None
        if deadline is not None:
            self.tick_handle = asyncio.get_running_loop().call_at(deadline, self._tick)

    def _tick(self) -> None:
        self.tick_handle = None
        now = time.monotonic()
        tick = self.admission.tick(now)
        self._evict(tick.evict, now)
        self._start(tick.start)
        self._arm()

    def _start(self, starts: tuple[tuple[tuple[str, int], Any], ...]) -> None:
        for peer, (message, mode, outcome) in starts:
            self._launch(peer, message, mode, outcome)

    async def _open(
        self, request: codec.ReadRequest, mode: str, outcome: Resolved, peer: tuple[str, int]
    ) -> None:
        try:
            if outcome.path is not None and mode == "octet":
                st = os.stat(outcome.path)
                size = st.st_size
                source: BlockSource = FileChunks(outcome.path, st)
            else:
                if outcome.size > MAX_NETASCII:
                    self._reply_error(
                        peer, codec.ERR_ILLEGAL, "file too big for netascii: use octet"
                    )
                    self._give_back(peer)
                    return
                # Served from memory (netascii, rendered files): within a
                # budget, or a flood of such requests would hold it many times.
                if sum(self.held.values()) + 2 * outcome.size > MEMORY_BUDGET:
                    metrics.LIMITED.labels("tftp", "memory").inc()
                    self.limits.warning(
                        "memory",
                        "tftp: memory budget reached: refusing a netascii read",
                        time.monotonic(),
                    )
                    self._reply_error(peer, codec.ERR_UNDEFINED, "busy")
                    self._give_back(peer)
                    return
                with outcome.open() as handle:
                    raw = handle.read()
                data = netascii(raw) if mode == "netascii" else raw
                size = len(data)
                source = bytes_source(data)
                if peer not in self.transfers:
                    self.held[peer] = size
        except OSError as exc:
            log.warning("tftp: cannot read %s: %s", outcome.name, exc.strerror)
            self._reply_error(peer, *_ERROR_FOR["unreadable"])
            self.resolver.record(outcome, "tftp", result="unreadable")
            self._give_back(peer)
            return
        session = ReadSession(
            source,
            size,
            negotiate(request, size, max_timeout=self.config.max_client_timeout),
            timeout=self.config.timeout,
            retries=self.config.retries,
            first_wait=FIRST_WAIT,
        )
        if peer in self.transfers:  # the RRQ came again while the file was opened
            return
        self.admission.attach(peer, session)
        if session.last_block > BIG_BLOCKS and self.threads < MAX_THREADS:
            self._start_thread(peer, session, outcome)
            return
        loop = asyncio.get_running_loop()
        transfer = _Transfer(self, peer, session, outcome)
        self._register(peer, transfer)
        try:
            await loop.create_datagram_endpoint(
                lambda: transfer, remote_addr=peer, family=socket.AF_INET
            )
        except OSError as exc:
            log.warning("tftp: cannot open a socket for %s:%d: %s", *peer, exc.strerror)
            transfer.finish()

    def _start_thread(self, peer: tuple[str, int], session: ReadSession, outcome: Resolved) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            wake = int(RECV_WAKE * 1_000_000)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, wake))
            sock.connect(peer)
        except OSError as exc:
            sock.close()
            self.held.pop(peer, None)
            log.warning("tftp: cannot open a socket for %s:%d: %s", *peer, exc.strerror)
            self._give_back(peer)
            return
        transfer = _ThreadedTransfer(self, peer, session, outcome, sock)
        self._register(peer, transfer)
        self.threads += 1
        transfer.start()

    def _register(self, peer: tuple[str, int], transfer: _Transfer | _ThreadedTransfer) -> None:
        self.transfers[peer] = transfer

    def _give_back(self, peer: tuple[str, int]) -> None:
        """A slot reserved for `peer` that never became a transfer."""
        self.admission.cancel(peer)
        now = time.monotonic()
        tick = self.admission.release(peer, now, answered=False)
        self._evict(tick.evict, now)
        self._start(tick.start)
        self._arm()

    @property
    def by_host(self) -> dict[str, int]:
        """Running transfers per client address (the admission engine's)."""
        return self.admission.by_host

    def transfer_ended(self, transfer: _Transfer | _ThreadedTransfer) -> None:
        if isinstance(transfer, _ThreadedTransfer):
            self.threads -= 1
        session = transfer.session
        if self.transfers.get(transfer.peer) is transfer:
            del self.transfers[transfer.peer]
            self.held.pop(transfer.peer, None)
            now = time.monotonic()
            tick = self.admission.release(transfer.peer, now, session.confirmed)
            self._evict(tick.evict, now)
            self._start(tick.start)
            self._arm()
        ending = session.ending
        if ending == "ok":
            self.resolver.record(transfer.outcome, "tftp", sent=session.bytes_sent)
        elif ending == "unanswered":
            metrics.FILES_SERVED.labels("tftp", "unanswered").inc()
            self.limits.warning(
                "unanswered",
                f"tftp: {transfer.peer[0]}:{transfer.peer[1]} never answered"
                f" for {transfer.outcome.name} ({session.failed})",
                time.monotonic(),
            )
        elif ending == "client-abort":
            metrics.FILES_SERVED.labels("tftp", "client-abort").inc()
        elif ending is not None:
            self.events.info(
                time.monotonic(),
                "tftp: %s:%d %s: %s",
                *transfer.peer,
                transfer.outcome.name,
                session.failed,
            )
            self.resolver.record(transfer.outcome, "tftp", sent=session.bytes_sent, result=ending)


def create(ctx: Context) -> TftpService:
    return TftpService(ctx)
