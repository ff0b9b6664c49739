"""HTTP connection budgets, without I/O (time passed as `now`).

Each connection costs a descriptor for as long as the client keeps it open.
A slowloris client (issue 16: 1100 idle connections from one address) used to
hold them until the process ran out, and then every accept() failed. The
budget has two caps:

- `per_address`: connections at once from one client address. A new one over
  it is refused (closed as soon as it is accepted): a phone needs one or two.
- `total`: connections at once. The server asks `admit()` before it serves
  a new connection (one taken from the listen backlog, in hand): at the cap
  that one waits, and the next ones wait in the kernel's listen backlog
  (`http.max_queued`, bounded by the kernel's net.core.somaxconn; past it the
  kernel drops the SYN and the client sends it again), until a connection
  closes. A boot storm (issue 18: 10 000
  phones at once) is served in turn instead of evicting itself.

  To make room at the cap only a keep-alive connection is closed: one that
  has had a response and has sat idle for `grace` seconds since, the one of
  the address holding the most connections first, then the one idle longest.
  A connection that has not had its first request yet is never closed for
  room (before, a storm's new connections closed each other before their
  request arrived); it has `idle_timeout` for its request header, like any.

The timeouts that end idle and slow connections are aiohttp's keep-alive
timer (the whole request header must arrive within `idle_timeout` of the
connection opening or of the previous response, however slowly it trickles),
the TLS handshake timeout, and the body read in `app.py`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

# Seconds a keep-alive connection (idle after a response) is left alone before
# it may be closed to let a waiting connection in: a phone fetching its
# common and then its own file on one connection asks again within
# milliseconds.
KEEPALIVE_GRACE = 1.0


@dataclass(frozen=True)
class Verdict:
    accept: bool
    refused: str | None = None  # "per-address" | "total"


@dataclass(frozen=True)
class Admission:
    """May the server accept() a waiting connection now?"""

    accept: bool
    evict: Hashable | None = None  # close this keep-alive connection first: it made the room
    wake: float | None = None  # not now; ask again then (None: when a connection closes)


@dataclass
class _Connection:
    address: str
    opened: float
    idle_since: float
    busy: int = 0


class ConnectionBudget:
    def __init__(self, total: int, per_address: int, grace: float = KEEPALIVE_GRACE) -> None:
        self.total = total
        self.per_address = per_address
        self.grace = grace
        self._connections: dict[Hashable, _Connection] = {}
        self._by_address: dict[str, int] = {}
        # Keep-alive connections (idle after a response), idle longest first:
        # at the cap only these are looked at, not every connection.
        self._resting: OrderedDict[Hashable, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._connections)

    def count(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def admit(self, now: float) -> Admission:
        """Before accept(): room for one more connection, made by closing a
        keep-alive one idle past the grace if need be, or when to ask again."""
        if len(self._connections) < self.total:
            return Admission(True)
        victim, wake = self._keepalive(now)
        if victim is None:
            return Admission(False, wake=wake)
        self.closed(victim)
        return Admission(True, evict=victim)

    def opened(self, key: Hashable, address: str, now: float) -> Verdict:
        """A connection was accepted; it is tracked when the verdict accepts it."""
        if self.count(address) >= self.per_address:
            return Verdict(False, refused="per-address")
        if len(self._connections) >= self.total:
            return Verdict(False, refused="total")  # accepted without asking admit()
        self._connections[key] = _Connection(address, now, now)
        self._by_address[address] = self.count(address) + 1
        return Verdict(True)

    def busy(self, key: Hashable) -> None:
        """A request arrived on the connection."""
        conn = self._connections.get(key)
        if conn is not None:
            conn.busy += 1
            self._resting.pop(key, None)

    def idle(self, key: Hashable, now: float) -> None:
        """Its response went out."""
        conn = self._connections.get(key)
        if conn is not None:
            conn.busy = max(0, conn.busy - 1)
            conn.idle_since = now
            if not conn.busy:
                self._resting.pop(key, None)
                self._resting[key] = None  # the most recently idle: last

    def closed(self, key: Hashable) -> None:
        conn = self._connections.pop(key, None)
        if conn is None:
            return
        self._resting.pop(key, None)
        left = self._by_address[conn.address] - 1
        if left:
            self._by_address[conn.address] = left
        else:
            del self._by_address[conn.address]

    def _keepalive(self, now: float) -> tuple[Hashable | None, float | None]:
        """The keep-alive connection to close for room (idle past the grace),
        else when the first one will be."""
        ripe: list[tuple[Hashable, _Connection]] = []
        wake: float | None = None
        for key in self._resting:  # idle longest first (`now` only grows)
            conn = self._connections[key]
            due = conn.idle_since + self.grace
            if due > now:
                wake = due
                break
            ripe.append((key, conn))
        if not ripe:
            return None, wake
        heaviest = max(self._by_address[c.address] for _, c in ripe)
        candidates = [(k, c) for k, c in ripe if self._by_address[c.address] == heaviest]
        return min(candidates, key=lambda kc: kc[1].idle_since)[0], None
