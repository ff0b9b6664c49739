"""HTTP connection budgets, without I/O (time passed as `now`).

Each connection costs a descriptor for as long as the client keeps it open.
A slowloris client (issue 16: 1100 idle connections from one address) used to
hold them until the process ran out, and then every accept() failed. The
budget has two caps:

- `per_address`: connections at once from one client address. A new one over
  it is refused (closed at once): a phone needs one or two.
- `total`: connections at once. At the cap, the connection that has been idle
  longest (no request in progress) is closed to make room, taken from the
  address holding the most connections; when every connection is busy
  serving a request, the new one is refused.

The timeouts that end idle and slow connections are aiohttp's keep-alive
timer (the whole request header must arrive within `idle_timeout` of the
connection opening or of the previous response, however slowly it trickles)
and the body read in `app.py`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verdict:
    accept: bool
    evict: Hashable | None = None
    refused: str | None = None  # "per-address" | "total"


@dataclass
class _Connection:
    address: str
    opened: float
    idle_since: float
    busy: int = 0


class ConnectionBudget:
    def __init__(self, total: int, per_address: int) -> None:
        self.total = total
        self.per_address = per_address
        self._connections: dict[Hashable, _Connection] = {}
        self._by_address: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._connections)

    def count(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def opened(self, key: Hashable, address: str, now: float) -> Verdict:
        """A connection was accepted; it is tracked when the verdict accepts it."""
        if self.count(address) >= self.per_address:
            return Verdict(False, refused="per-address")
        evict: Hashable | None = None
        if len(self._connections) >= self.total:
            evict = self._idlest()
            if evict is None:
                return Verdict(False, refused="total")
            self.closed(evict)
        self._connections[key] = _Connection(address, now, now)
        self._by_address[address] = self.count(address) + 1
        return Verdict(True, evict=evict)

    def busy(self, key: Hashable) -> None:
        conn = self._connections.get(key)
        if conn is not None:
            conn.busy += 1

    def idle(self, key: Hashable, now: float) -> None:
        conn = self._connections.get(key)
        if conn is not None:
            conn.busy = max(0, conn.busy - 1)
            conn.idle_since = now

    def closed(self, key: Hashable) -> None:
        conn = self._connections.pop(key, None)
        if conn is None:
            return
        left = self._by_address[conn.address] - 1
        if left:
            self._by_address[conn.address] = left
        else:
            del self._by_address[conn.address]

    def _idlest(self) -> Hashable | None:
        idle = [(k, c) for k, c in self._connections.items() if not c.busy]
        if not idle:
            return None
        heaviest = max(self._by_address[c.address] for _, c in idle)
        candidates = [(k, c) for k, c in idle if self._by_address[c.address] == heaviest]
        return min(candidates, key=lambda kc: kc[1].idle_since)[0]
