"""Warnings about bad input that a flood cannot turn into a flood of log lines.

A transport that drops a malformed packet says so, but a misbehaving or
hostile sender can send thousands a second. `RateLimitedLog` writes a kind of
problem (a key: "decode", "send", ...) at most once per `every` seconds; the
next line it writes for that key says how many it held back in between.
"""

from __future__ import annotations

import logging


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
