"""Warnings about bad input that a flood cannot turn into a flood of log lines.

A transport that drops a malformed packet says so, but a misbehaving or
hostile sender can send thousands a second. This is the one place for it:
services do not keep their own "last warned at" counters. `RateLimitedLog` writes a kind of
problem (a key: "decode", "send", ...) at most once per `every` seconds; the
next line it writes for that key says how many it held back in between.
"""

from __future__ import annotations

import logging

from netboot.ratelimit import TokenBucket


class RateLimitedLog:
    """Log a kind of problem at most once per `every` seconds, with a count."""

    def __init__(self, logger: logging.Logger, every: float = 10.0) -> None:
        self.logger = logger
        self.every = every
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str, now: float) -> None:
        self.log(logging.WARNING, key, message, now)

    def log(self, level: int, key: str, message: str, now: float) -> None:
        if now - self.last.get(key, -1e9) >= self.every:
            extra = self.suppressed.pop(key, 0)
            suffix = f" ({extra} more suppressed)" if extra else ""
            self.logger.log(level, "%s%s", message, suffix)
            self.last[key] = now
        else:
            self.suppressed[key] = self.suppressed.get(key, 0) + 1


class LogBudget:
    """Per-event lines (a phone's NOTIFY, a refused file) that a flood must not
    turn into a log flood: a token bucket of `burst` lines refilled at `rate`
    lines per second. A floor of phones booting together is logged in full;
    a sustained flood gets `rate` lines a second, and the first line after a
    gap says how many were held back."""

    def __init__(self, logger: logging.Logger, rate: float = 20.0, burst: float = 1000.0) -> None:
        self.logger = logger
        self.rate = rate
        self.burst = burst
        self.bucket: TokenBucket | None = None  # full at the first line
        self.suppressed = 0

    def info(self, now: float, message: str, *args: object) -> None:
        if self.bucket is None:
            self.bucket = TokenBucket(self.rate, self.burst, now)
        if not self.bucket.take(now):
            self.suppressed += 1
            return
        if self.suppressed:
            self.logger.info("(%d similar lines suppressed)", self.suppressed)
            self.suppressed = 0
        self.logger.info(message, *args)
