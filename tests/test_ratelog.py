"""The rate-limited warning every transport uses for bad input."""

from __future__ import annotations

import logging

import pytest

from netboot.ratelog import LogBudget, RateLimitedLog


def test_one_line_per_key_and_period_then_the_count(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(logging.getLogger("netboot.test"), every=10.0)
    with caplog.at_level(logging.WARNING, "netboot.test"):
        for i in range(5):
            log.warning("decode", f"bad packet {i}", now=100.0 + i)
        log.warning("send", "send failed", now=101.0)  # another key is not held back
        log.warning("decode", "bad packet later", now=110.0)
        log.warning("decode", "bad packet again", now=119.9)
        log.warning("decode", "bad packet at last", now=120.0)
    assert [r.getMessage() for r in caplog.records] == [
        "bad packet 0",
        "send failed",
        "bad packet later (4 more suppressed)",
        "bad packet at last (1 more suppressed)",
    ]


def test_log_budget_passes_a_burst_then_a_rate(caplog: pytest.LogCaptureFixture) -> None:
    budget = LogBudget(logging.getLogger("netboot.test"), rate=2.0, burst=5.0)
    with caplog.at_level(logging.INFO, "netboot.test"):
        for i in range(20):  # a burst of 20 at once: 5 written
            budget.info(100.0, "phone %d", i)
        budget.info(100.4, "too soon")  # 0.8 token back: held
        budget.info(101.0, "later")  # 2 tokens back: written, after the count
    assert [r.getMessage() for r in caplog.records] == [
        *(f"phone {i}" for i in range(5)),
        "(16 similar lines suppressed)",
        "later",
    ]
