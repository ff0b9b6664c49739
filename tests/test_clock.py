"""netboot.clock: the stepped clock runs each timer at its own time."""

from __future__ import annotations

from netboot.clock import SteppedClock


def test_stepped_clock_runs_due_timers_in_order_at_their_time() -> None:
    clock = SteppedClock(100.0)
    seen: list[tuple[str, float]] = []
    clock.call_at(103.0, lambda: seen.append(("b", clock.now())))
    clock.call_at(101.0, lambda: seen.append(("a", clock.now())))
    cancelled = clock.call_at(102.0, lambda: seen.append(("x", clock.now())))
    cancelled.cancel()
    clock.advance(2.5)
    assert seen == [("a", 101.0)] and clock.now() == 102.5
    clock.advance(10.0)
    assert seen == [("a", 101.0), ("b", 103.0)] and clock.now() == 112.5
    assert clock.pending == 0


def test_a_timer_may_arm_the_next_one() -> None:
    clock = SteppedClock()
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(clock.now())
        clock.call_at(clock.now() + 1.0, tick)

    clock.call_at(0.0, tick)
    clock.advance(3.0)
    assert ticks == [0.0, 1.0, 2.0, 3.0]
