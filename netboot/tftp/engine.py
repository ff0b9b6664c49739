"""TFTP admission: which read requests run now, which wait, which are refused.

No I/O and no clock of its own: `now` is passed in, and the transport asks
`deadline()` when to call `tick()` (a stepped clock in the tests).

Every transfer costs a socket (its TID, RFC 1350 §4), so the running table
has a global budget (`max_sessions`) and a per-source one. After a power cut
every phone of a site asks within seconds, far more than the budget: a
request over the global budget waits in a bounded FIFO queue (`max_queued`)
and starts when a slot frees, instead of an ERROR "busy" that a phone's
firmware treats as a failed download (issue 18: 2778 of 5000 lab phones
failed that way). The client retransmits its RRQ while it waits (RFC 1350
§2: the requester times out and retransmits); a repeated RRQ only refreshes
its place.

A flood of spoofed RRQs (issue 16) must not starve real phones:

- a session whose client has not answered within `grace` (the server's own
  retransmission timeout) is ended to make room while requests wait; a
  forged request never gets an answer, so the flood drains at
  `max_sessions / grace` per second, and sessions of live clients (which
  answer within a round trip) are never ended;
- sources that have proven their address (a client answered one of our
  transfers; a spoofer never sees our DATA) wait in a queue of their own
  that starts first, so a phone fetching its second file is not queued behind
  the flood; the set of proven sources has a budget (least recently proven
  forgotten first);
- the queue is bounded: when full, a new request is dropped without an
  answer (its client retransmits its RRQ; those waiting keep their places),
  a proven source's request taking the place of the newest unproven one; each source
  has at most `per_source` entries waiting, as it has at most that many
  running, past it its own longest-waiting entry is dropped (so requests
  forged in a phone's name do not hold its place); an entry not heard from
  for `idle` seconds has gone away and is dropped when its turn comes.

A client waiting for its turn repeats its RRQ at its own pace (every 1 s to
5 s); one that stopped has given up (its firmware tries again later, from a
new port: a new entry). After a client's second RRQ its pace is known, and an
entry silent for more than twice that (plus half a second) is dropped when
its turn comes, without waiting for `idle`: in a boot storm the queue was
long enough for requests to wait longer than their clients, and a transfer
started for a client that had gone held a slot unanswered for `grace` while
live ones waited behind it (10 000 lab phones: 3107 such transfers).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

Peer = tuple[str, int]
T = TypeVar("T")

# A waiting client that has not repeated its RRQ for this long has given up
# (clients retransmit every 1 to 5 s: tftp-hpa's client every 5 s).
IDLE = 8.0
KNOWN_BUDGET = 16384  # proven source addresses remembered


class Confirmable(Protocol):
    """What admission needs of a running session: has its client answered?"""

    @property
    def confirmed(self) -> bool: ...


@dataclass
class _Slot:
    started: float
    session: Confirmable | None = None  # None: being opened


@dataclass
class _Waiting(Generic[T]):
    item: T
    heard: float  # the last time the client sent its RRQ
    pace: float | None = None  # seconds between its last two RRQs

    def gone(self, now: float, idle: float) -> bool:
        """Has its client stopped asking (given up on this request)?"""
        quiet = now - self.heard
        if self.pace is None:
            return quiet > idle
        return quiet > min(idle, 2 * self.pace + 0.5)


@dataclass(frozen=True)
class Verdict:
    """`offer`'s answer. `action` is "start" (after ending `evict`), "queued"
    (waits; also for a repeated RRQ of a waiting request), "dropped" (the
    queue is full: no answer, the client repeats its RRQ), or "refused"
    (`reason`: "per-source": the source runs its budget, every client answering)."""

    action: str
    evict: tuple[Peer, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Tick(Generic[T]):
    """`tick`'s answer: sessions to end (silent past `grace`), then requests to start."""

    evict: tuple[Peer, ...] = ()
    start: tuple[tuple[Peer, T], ...] = ()


class AdmissionQueue(Generic[T]):
    """The running table and the waiting queue. Call `offer` for each RRQ
    (after `running(peer)` is false), `attach` once its session exists,
    `release` when it ends (its answer: queued requests to start now), and
    `tick` at `deadline()`. Each request started (from `offer` or from the
    queue) holds a slot until `release`."""

    def __init__(
        self,
        max_sessions: int,
        per_source: int,
        max_queued: int,
        grace: float,
        idle: float = IDLE,
        known_budget: int = KNOWN_BUDGET,
    ) -> None:
        self.max_sessions = max_sessions
        self.per_source = per_source
        self.max_queued = max_queued
        self.grace = grace
        self.idle = idle
        self.known_budget = known_budget
        self.slots: dict[Peer, _Slot] = {}
        self.by_host: dict[str, int] = {}  # running per source address
        self.silent: OrderedDict[Peer, float] = OrderedDict()  # not yet answered, oldest first
        self.proven: OrderedDict[Peer, _Waiting[T]] = OrderedDict()  # queue of proven sources
        self.unproven: OrderedDict[Peer, _Waiting[T]] = OrderedDict()
        self.queued_by_host: dict[str, list[Peer]] = {}  # waiting, oldest first
        self.known: OrderedDict[str, None] = OrderedDict()
        self.dropped = 0  # waiting requests dropped (queue full, or gone idle)

    # ------------------------------------------------------------ queries

    def running(self, peer: Peer) -> bool:
        return peer in self.slots

    @property
    def queued(self) -> int:
        return len(self.proven) + len(self.unproven)

    def deadline(self) -> float | None:
        """When `tick` may end a silent session for a waiting request."""
        if not self.queued:
            return None
        victim = self._oldest_silent()
        return None if victim is None else self.silent[victim] + self.grace

    # ------------------------------------------------------------ events

    def offer(self, peer: Peer, item: T, now: float) -> Verdict:
        host = peer[0]
        waiting = self.proven.get(peer) or self.unproven.get(peer)
        if waiting is not None:  # the client repeated its RRQ while it waits
            if now > waiting.heard:
                waiting.pace = now - waiting.heard
            waiting.heard = now
            waiting.item = item
            return Verdict("queued")
        evict: list[Peer] = []
        if self.by_host.get(host, 0) >= self.per_source:
            victim = next((p for p in self.silent if p[0] == host and self._silent(p)), None)
            if victim is None:
                return Verdict("refused", reason="per-source")
            evict.append(victim)
        if len(self.slots) - len(evict) >= self.max_sessions:
            victim = self._oldest_silent(now, exclude=evict)
            if victim is None:
                return self._enqueue(peer, item, now)
            evict.append(victim)
        for victim in evict:
            self._drop_slot(victim)
        self._reserve(peer, now)
        return Verdict("start", evict=tuple(evict))

    def attach(self, peer: Peer, session: Confirmable) -> None:
        slot = self.slots.get(peer)
        if slot is not None:
            slot.session = session

    def release(self, peer: Peer, now: float, answered: bool) -> Tick[T]:
        """`peer`'s transfer ended (`answered`: its client answered at least
        once, so its address is real). Its slot goes to waiting requests."""
        if answered:
            self.known[peer[0]] = None
            self.known.move_to_end(peer[0])
            while len(self.known) > self.known_budget:
                self.known.popitem(last=False)
        if peer in self.slots:
            self._drop_slot(peer)
        evict: list[Peer] = []
        start = self._start_waiting(now, evict)
        return Tick(tuple(evict), tuple(start))

    def tick(self, now: float) -> Tick[T]:
        evict: list[Peer] = []
        while self.queued > self.max_sessions - len(self.slots):
            victim = self._oldest_silent(now)
            if victim is None:
                break
            self._drop_slot(victim)
            evict.append(victim)
        start = self._start_waiting(now, evict)
        return Tick(tuple(evict), tuple(start))

    def cancel(self, peer: Peer) -> None:
        """A slot reserved for `peer` that never became a transfer (its
        socket could not be opened): given back."""
        if peer in self.slots:
            self._drop_slot(peer)

    # ------------------------------------------------------------ internals

    def _silent(self, peer: Peer) -> bool:
        slot = self.slots[peer]
        return slot.session is not None and not slot.session.confirmed

    def _oldest_silent(self, now: float | None = None, exclude: Sequence[Peer] = ()) -> Peer | None:
        """The session started first whose client never answered (past
        `grace` at `now`; any age when `now` is None)."""
        silent = self.silent
        while silent:
            peer = next(iter(silent))
            slot = self.slots.get(peer)
            if slot is None or (slot.session is not None and slot.session.confirmed):
                del silent[peer]  # answered since (or gone): never a victim again
                continue
            break
        for peer, started in silent.items():
            if now is not None and started + self.grace > now:
                return None  # the rest started later still
            if peer not in exclude and self._silent(peer):
                return peer
        return None

    def _reserve(self, peer: Peer, now: float) -> None:
        self.slots[peer] = _Slot(now)
        self.by_host[peer[0]] = self.by_host.get(peer[0], 0) + 1
        self.silent[peer] = now

    def _drop_slot(self, peer: Peer) -> None:
        del self.slots[peer]
        self.silent.pop(peer, None)
        left = self.by_host[peer[0]] - 1
        if left:
            self.by_host[peer[0]] = left
        else:
            del self.by_host[peer[0]]

    def _enqueue(self, peer: Peer, item: T, now: float) -> Verdict:
        host = peer[0]
        mine = self.queued_by_host.get(host, [])
        if len(mine) >= self.per_source:
            # Its longest-waiting one goes (requests forged in a phone's name
            # must not hold its place: the phone repeats its RRQ, they do not).
            oldest = mine[0]
            self._unqueue(self.proven if oldest in self.proven else self.unproven, oldest)
            self.dropped += 1
        elif self.queued >= self.max_queued:
            # Full: the newcomer is dropped (its client repeats the RRQ: the
            # requests already waiting keep their places), unless it is a
            # proven source and an unproven request can make room.
            self.dropped += 1
            if host not in self.known or not self.unproven:
                return Verdict("dropped")
            self._unqueue(self.unproven, next(reversed(self.unproven)))
        queue = self.proven if host in self.known else self.unproven
        queue[peer] = _Waiting(item, now)
        self.queued_by_host.setdefault(host, []).append(peer)
        return Verdict("queued")

    def _unqueue(self, queue: OrderedDict[Peer, _Waiting[T]], peer: Peer) -> _Waiting[T]:
        waiting = queue.pop(peer)
        mine = self.queued_by_host[peer[0]]
        mine.remove(peer)
        if not mine:
            del self.queued_by_host[peer[0]]
        return waiting

    def _start_waiting(self, now: float, evict: list[Peer]) -> list[tuple[Peer, T]]:
        out: list[tuple[Peer, T]] = []
        while len(self.slots) < self.max_sessions and self.queued:
            queue = self.proven if self.proven else self.unproven
            peer = next(iter(queue))
            waiting = self._unqueue(queue, peer)
            if waiting.gone(now, self.idle):
                self.dropped += 1  # its client gave up on it
                continue
            if self.by_host.get(peer[0], 0) >= self.per_source:
                # Its source's budget is taken (maybe by requests forged in its
                # name): its oldest silent session makes room, as in `offer`.
                victim = next((p for p in self.silent if p[0] == peer[0] and self._silent(p)), None)
                if victim is None:
                    self.dropped += 1
                    continue
                self._drop_slot(victim)
                evict.append(victim)
            self._reserve(peer, now)
            out.append((peer, waiting.item))
        return out
