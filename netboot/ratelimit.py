"""The one token bucket: a rate with a burst, and a bounded table of them per key.

A bucket holds at most `burst` tokens, gains `rate` a second, and each event
takes one; an event finding less than one token is refused. It starts full.
Time is passed in (`now`, seconds on a monotonic clock), so engines test it
with a stepped clock.

`TokenBuckets` keeps one bucket per key (a source address, ...) in the order
the keys were last used, so both ways of forgetting work from the front:
`expire` drops the buckets idle for longer than a given time, and at
`max_keys` a new key makes room by dropping the bucket used least recently
(counted in `evicted`: a bucket dropped before it was full again forgave its
key some refusals). A bucket idle for `burst / rate` seconds is full, the
same as no bucket: those go first and are not counted.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class TokenBucket:
    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.last = now

    def take(self, now: float) -> bool:
        """One event at `now`: True if it had a token (and took it)."""
        tokens = self.tokens + (now - self.last) * self.rate
        self.tokens = tokens if tokens < self.burst else self.burst
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class TokenBuckets(Generic[K]):
    """One `TokenBucket` per key, at most `max_keys` of them."""

    def __init__(self, rate: float, burst: float, max_keys: int) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.evicted = 0  # buckets dropped at the cap before they were full again
        self._buckets: dict[K, TokenBucket] = {}

    def reconfigure(self, rate: float, burst: float, max_keys: int) -> None:
        """A new limit (a reload): every bucket keeps its tokens (at most the
        new burst) and refills at the new rate."""
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        for bucket in self._buckets.values():
            bucket.rate, bucket.burst = rate, burst
            bucket.tokens = min(bucket.tokens, burst)
        while len(self._buckets) > max_keys:
            del self._buckets[next(iter(self._buckets))]
            self.evicted += 1

    def allow(self, key: K, now: float) -> bool:
        """One event of `key` at `now`: True if its bucket had a token."""
        buckets = self._buckets
        bucket = buckets.pop(key, None)  # re-inserted last: the front is least recent
        if bucket is None:
            if len(buckets) >= self.max_keys:
                self._make_room(now)
            bucket = TokenBucket(self.rate, self.burst, now)
        buckets[key] = bucket
        return bucket.take(now)

    def expire(self, now: float, idle: float) -> None:
        """Forget the buckets not used for more than `idle` seconds."""
        buckets = self._buckets
        while buckets:
            key = next(iter(buckets))
            if now - buckets[key].last <= idle:
                return
            del buckets[key]

    def _make_room(self, now: float) -> None:
        self.expire(now, self.burst / self.rate if self.rate > 0 else float("inf"))
        buckets = self._buckets
        while len(buckets) >= self.max_keys:
            del buckets[next(iter(buckets))]
            self.evicted += 1

    def take_evicted(self) -> int:
        """Evictions since the last call (for a metric)."""
        count, self.evicted = self.evicted, 0
        return count

    def keys(self) -> list[K]:
        """The keys, least recently used first."""
        return list(self._buckets)

    def __len__(self) -> int:
        return len(self._buckets)
