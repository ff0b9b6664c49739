"""Address conflict checks in flight, without I/O: time comes in as `now`.

RFC 2131 §4.4.1 / §3.1: a server SHOULD probe an address before it offers
it. The engine names the address (`Decision.probe`); this table remembers
each check until the address answers (ARP reply on our own link, ICMP echo
reply through a relay) or its deadline passes, with the requests that wait
on it, so that one slow check stalls nobody else. One check per address
however many requests wait on it; at most `budget` checks at once (a
DISCOVER flood cannot grow it: past the budget a request is offered without
a check, as when a probe cannot be sent).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

MAX_PROBES = 4096


@dataclass
class Check(Generic[T]):
    interface: str
    deadline: float
    waiting: list[T] = field(default_factory=list)


class ProbeTable(Generic[T]):
    def __init__(self, timeout: float, budget: int = MAX_PROBES) -> None:
        self.timeout = timeout
        self.budget = budget
        self.checks: dict[int, Check[T]] = {}
        self._deadlines: list[tuple[float, int]] = []  # heap; stale entries skipped

    def __contains__(self, ip: int) -> bool:
        return ip in self.checks

    def __len__(self) -> int:
        return len(self.checks)

    def start(self, ip: int, interface: str, item: T, now: float) -> bool | None:
        """Make `item` wait on a check of `ip`: True when the probe must be
        sent now (the first for this address), False when one is already in
        flight, None when the budget is spent (decide without a check)."""
        check = self.checks.get(ip)
        if check is not None:
            check.waiting.append(item)
            return False
        if len(self.checks) >= self.budget:
            return None
        check = Check(interface, now + self.timeout, [item])
        self.checks[ip] = check
        heapq.heappush(self._deadlines, (check.deadline, ip))
        return True

    def finish(self, ip: int) -> Check[T] | None:
        """The check of `ip` is over (answered, or the probe could not be
        sent): its waiting requests, or None when there was none."""
        return self.checks.pop(ip, None)

    def expired(self, now: float) -> list[tuple[int, Check[T]]]:
        """The checks whose deadline has passed (nobody answered: free)."""
        out = []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, ip = heapq.heappop(self._deadlines)
            check = self.checks.get(ip)
            if check is not None and check.deadline == deadline:
                out.append((ip, self.checks.pop(ip)))
        return out

    def next_deadline(self) -> float | None:
        while self._deadlines:
            deadline, ip = self._deadlines[0]
            check = self.checks.get(ip)
            if check is not None and check.deadline == deadline:
                return deadline
            heapq.heappop(self._deadlines)
        return None
