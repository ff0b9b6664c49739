"""TFTP requests: what the server does with each RRQ/WRQ and each ending.

No sockets and no clock of its own: the transport hands `Desk` the datagrams
that arrive on the listening port (`request`), asks it for each transfer's
session (`prepare`) and whether it runs in a thread (`threaded`), and tells it
when a transfer ends (`ended`); the desk answers through its `Port` (an error
packet from the listening socket, a transfer to open) and the transfers'
`finish`. Time comes from a `netboot.clock.Clock` (`SteppedClock` in tests),
which also runs the admission engine's timer.

- A write request is refused with ERROR 2 (read-only server); DATA/ACK/... on
  the listening port gets ERROR 5 (RFC 1350 §4: unknown TID); a mode other
  than octet or netascii gets ERROR 4. A retransmitted RRQ (same client
  address and port while its transfer runs) is handed to that transfer
  instead of starting a second one.
- Names go through the shared `FileResolver`; a refusal is answered with the
  error of `ERROR_FOR`, logged within a budget and recorded.
- Which request runs, waits or is refused is the admission engine's decision
  (engine.py); the desk carries it out (busy, queued, dropped, evicted).
- Transfers served from memory (netascii, rendered files) share
  `memory_budget` bytes: a request that would pass it gets ERROR 0 "busy".
  netascii is for config-sized files (source.MAX_NETASCII).
- A transfer longer than `big_blocks` blocks runs in a thread (transfers.py),
  up to `max_threads` at once; the rest on the loop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from netboot import metrics
from netboot.clock import Clock, Timer
from netboot.config import TftpConfig
from netboot.provisioning.files import FileResolver, Refusal, Resolved
from netboot.ratelog import LogBudget, RateLimitedLog
from netboot.tftp import codec
from netboot.tftp.engine import AdmissionQueue
from netboot.tftp.session import ReadSession, negotiate
from netboot.tftp.source import MAX_NETASCII, from_file, in_memory
from netboot.wire import DecodeError

log = logging.getLogger("netboot.tftp")

Peer = tuple[str, int]

MEMORY_BUDGET = 64 * 1024 * 1024  # bytes held by transfers served from memory, all together
BIG_BLOCKS = 64  # transfers longer than this get a thread (transfers.py)
MAX_THREADS = 8
# A client's first answer (ACK 1, or ACK 0 of an OACK) is waited for this
# long without retransmitting (a forged request still buys one answer): in a
# boot storm of 5000 lab phones, 1 s ended a third of the transfers of real
# phones whose ACK the busy server read late. While requests wait for a slot,
# a session silent this long is ended to make room (engine.py `grace`).
FIRST_WAIT = 3.0

ERROR_FOR = {
    "not-found": (codec.ERR_NOT_FOUND, "file not found"),
    "forbidden": (codec.ERR_ACCESS, "access violation"),
    "refused-name": (codec.ERR_ACCESS, "access violation: bad file name"),
    "unreadable": (codec.ERR_ACCESS, "access violation: file not readable"),
}


@dataclass(frozen=True)
class Pending:
    """An admitted read request, until its transfer is open."""

    request: codec.ReadRequest
    mode: str  # "octet" or "netascii"
    outcome: Resolved


class Handle(Protocol):
    """A running transfer, as the desk sees it."""

    peer: Peer
    session: ReadSession
    outcome: Resolved
    threaded: bool  # in a thread of its own (transfers.py)

    def request_again(self) -> None: ...

    def finish(self) -> None: ...


class Port(Protocol):
    """What the transport does for the desk."""

    def reply(self, peer: Peer, packet: bytes) -> None:
        """Send `packet` from the listening socket."""

    def launch(self, peer: Peer, pending: Pending) -> None:
        """Open a transfer for `pending` (then `prepare`, `started`)."""


H = TypeVar("H", bound=Handle)


class Desk(Generic[H]):
    """The server's requests and running transfers (`transfers`, keyed by the
    client's address and port); `threads`, `held` (bytes of in-memory sources)
    and the admission engine's tables are its state."""

    def __init__(
        self, config: TftpConfig, resolver: FileResolver, port: Port, clock: Clock
    ) -> None:
        self.config = config
        self.resolver = resolver
        self.port = port
        self.clock = clock
        self.transfers: dict[Peer, H] = {}
        self.threads = 0  # threaded transfers running
        self.held: dict[Peer, int] = {}  # bytes of in-memory sources per transfer
        self.memory_budget = MEMORY_BUDGET
        self.big_blocks = BIG_BLOCKS
        self.max_threads = MAX_THREADS
        self.admission: AdmissionQueue[Pending] = AdmissionQueue(
            config.max_sessions,
            config.max_sessions_per_source,
            config.max_queued,
            grace=max(config.timeout, FIRST_WAIT),
        )
        self.timer: Timer | None = None
        self.timer_at = 0.0
        self.bad = RateLimitedLog(log)
        self.limits = RateLimitedLog(log)
        self.events = LogBudget(log)  # a line per refused or failed file, within a budget

    def reconfigure(self, config: TftpConfig) -> None:
        """Timeout and retries for the next transfers, and the admission budgets."""
        self.config = config
        self.admission.max_sessions = config.max_sessions
        self.admission.per_source = config.max_sessions_per_source
        self.admission.max_queued = config.max_queued
        self.admission.grace = max(config.timeout, FIRST_WAIT)

    def close(self) -> None:
        """The service stops: nothing starts from the queue; every transfer is ended."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.admission.max_sessions = 0
        for transfer in list(self.transfers.values()):
            transfer.finish()

    def bad_packet(self, peer: Peer, exc: DecodeError, what: str = "packet") -> None:
        metrics.BAD_INPUT.labels("tftp").inc()
        self.bad.warning(
            what, f"tftp: bad {what} from {peer[0]}:{peer[1]}: {exc}", self.clock.now()
        )

    # ------------------------------------------------------------ requests

    def _error(self, peer: Peer, code: int, message: str) -> None:
        self.port.reply(peer, codec.error_packet(code, message))

    def request(self, data: bytes, peer: Peer) -> None:
        """A datagram on the listening port."""
        try:
            message = codec.decode(data)
        except DecodeError as exc:
            self.bad_packet(peer, exc, "request")
            return
        if isinstance(message, codec.WriteRequest):
            metrics.FILES_SERVED.labels("tftp", "write-refused").inc()
            self._error(peer, codec.ERR_ACCESS, "read-only server: write requests are refused")
            return
        if not isinstance(message, codec.ReadRequest):
            # DATA/ACK/... for a transfer that is not ours (RFC 1350 §4: unknown TID).
            self._error(peer, codec.ERR_UNKNOWN_TID, "unknown transfer ID")
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
            self._error(peer, codec.ERR_ILLEGAL, f"unsupported mode {message.mode!r}")
            return
        outcome = self.resolver.resolve(message.filename, peer[0])
        if isinstance(outcome, Refusal):
            self.events.info(
                self.clock.now(),
                "tftp: %s:%d %r: %s (%s)",
                *peer,
                outcome.name,
                outcome.result,
                outcome.reason,
            )
            self.resolver.record(outcome, "tftp")
            self._error(peer, *ERROR_FOR[outcome.result])
            return
        now = self.clock.now()
        verdict = self.admission.offer(peer, Pending(message, mode, outcome), now)
        if verdict.action == "refused":
            metrics.LIMITED.labels("tftp", f"sessions-{verdict.reason}").inc()
            self.limits.warning(
                verdict.reason,
                f"tftp: refusing {peer[0]}:{peer[1]}: {verdict.reason} session budget reached",
                now,
            )
            self._error(peer, codec.ERR_UNDEFINED, "busy")  # shorter than any RRQ
        elif verdict.action == "queued":
            metrics.LIMITED.labels("tftp", "sessions-queued").inc()
            self._arm()
        elif verdict.action == "dropped":
            metrics.LIMITED.labels("tftp", "queue").inc()
            self.limits.warning(
                "queue", "tftp: queue full: a request waits for its repetition", now
            )
        else:
            self._evict(verdict.evict, now)
            self.port.launch(peer, Pending(message, mode, outcome))

    def _evict(self, victims: tuple[Peer, ...], now: float) -> None:
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

    def _arm(self) -> None:
        """One timer for the admission engine's next decision."""
        deadline = self.admission.deadline()
        if self.timer is not None:
            if deadline is not None and self.timer_at <= deadline:
                return
            self.timer.cancel()
            self.timer = None
        if deadline is not None:
            self.timer_at = deadline
            self.timer = self.clock.call_at(deadline, self._tick)

    def _tick(self) -> None:
        self.timer = None
        now = self.clock.now()
        tick = self.admission.tick(now)
        self._evict(tick.evict, now)
        for peer, pending in tick.start:
            self.port.launch(peer, pending)
        self._arm()

    def _release(self, peer: Peer, answered: bool) -> None:
        now = self.clock.now()
        tick = self.admission.release(peer, now, answered)
        self._evict(tick.evict, now)
        for started, pending in tick.start:
            self.port.launch(started, pending)
        self._arm()

    def not_launched(self, peer: Peer) -> None:
        """`launch` could not start opening (the loop is closing): the slot is given back."""
        self.admission.cancel(peer)

    def give_back(self, peer: Peer) -> None:
        """A slot reserved for `peer` that never became a transfer."""
        self.admission.cancel(peer)
        self._release(peer, answered=False)

    # ------------------------------------------------------------ transfers

    def prepare(self, peer: Peer, pending: Pending) -> ReadSession | None:
        """The session for an admitted request, or None (refused and given back;
        or its RRQ came again while the file was opened)."""
        outcome, mode = pending.outcome, pending.mode
        try:
            if outcome.path is not None and mode == "octet":
                source, size = from_file(outcome.path)
            else:
                if outcome.size > MAX_NETASCII:
                    self._error(peer, codec.ERR_ILLEGAL, "file too big for netascii: use octet")
                    self.give_back(peer)
                    return None
                # Served from memory (netascii, rendered files): within a
                # budget, or a flood of such requests would hold it many times.
                if sum(self.held.values()) + 2 * outcome.size > self.memory_budget:
                    metrics.LIMITED.labels("tftp", "memory").inc()
                    self.limits.warning(
                        "memory",
                        "tftp: memory budget reached: refusing a netascii read",
                        self.clock.now(),
                    )
                    self._error(peer, codec.ERR_UNDEFINED, "busy")
                    self.give_back(peer)
                    return None
                source, size = in_memory(outcome.open, mode)
                if peer not in self.transfers:
                    self.held[peer] = size
        except OSError as exc:
            log.warning("tftp: cannot read %s: %s", outcome.name, exc.strerror)
            self._error(peer, *ERROR_FOR["unreadable"])
            self.resolver.record(outcome, "tftp", result="unreadable")
            self.give_back(peer)
            return None
        session = ReadSession(
            source,
            size,
            negotiate(pending.request, size, max_timeout=self.config.max_client_timeout),
            timeout=self.config.timeout,
            retries=self.config.retries,
            first_wait=FIRST_WAIT,
        )
        if peer in self.transfers:  # the RRQ came again while the file was opened
            return None
        self.admission.attach(peer, session)
        return session

    def threaded(self, session: ReadSession) -> bool:
        """Does this transfer get a thread of its own (long, and one is free)?"""
        return session.last_block > self.big_blocks and self.threads < self.max_threads

    def started(self, transfer: H) -> None:
        self.transfers[transfer.peer] = transfer
        if transfer.threaded:
            self.threads += 1

    def not_started(self, peer: Peer) -> None:
        """`prepare` gave a session but no socket could be opened for it."""
        self.held.pop(peer, None)
        self.give_back(peer)

    def ended(self, transfer: H) -> None:
        """A transfer ended (on the loop): its slot is given back and its ending recorded."""
        peer, session, outcome = transfer.peer, transfer.session, transfer.outcome
        if transfer.threaded:
            self.threads -= 1
        if self.transfers.get(peer) is transfer:
            del self.transfers[peer]
            self.held.pop(peer, None)
            self._release(peer, session.confirmed)
        ending = session.ending
        if ending == "ok":
            self.resolver.record(outcome, "tftp", sent=session.bytes_sent)
        elif ending == "unanswered":
            metrics.FILES_SERVED.labels("tftp", "unanswered").inc()
            self.limits.warning(
                "unanswered",
                f"tftp: {peer[0]}:{peer[1]} never answered for {outcome.name} ({session.failed})",
                self.clock.now(),
            )
        elif ending == "client-abort":
            metrics.FILES_SERVED.labels("tftp", "client-abort").inc()
        elif ending is not None:
            self.events.info(
                self.clock.now(), "tftp: %s:%d %s: %s", *peer, outcome.name, session.failed
            )
            self.resolver.record(outcome, "tftp", sent=session.bytes_sent, result=ending)
