"""TFTP admission engine (engine.py) with a stepped clock: budgets, the boot-storm
queue, and a flood of spoofed requests that must not starve real phones."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from netboot.tftp.engine import AdmissionQueue, Tick, Verdict


@dataclass
class Fake:
    confirmed: bool = False


def engine(
    max_sessions: int = 4, per_source: int = 2, max_queued: int = 8, grace: float = 1.0
) -> AdmissionQueue[str]:
    return AdmissionQueue(max_sessions, per_source, max_queued, grace=grace, idle=15.0)


def start(q: AdmissionQueue[str], peer: tuple[str, int], now: float, answered: bool) -> Fake:
    assert q.offer(peer, "rrq", now).action == "start"
    session = Fake(answered)
    q.attach(peer, session)
    return session


def test_under_the_budgets_every_request_starts() -> None:
    q = engine()
    for i in range(4):
        assert q.offer((f"10.0.0.{i}", 1000), "rrq", 0.0) == Verdict("start")
    assert q.by_host == {f"10.0.0.{i}": 1 for i in range(4)}
    assert q.deadline() is None


def test_per_source_budget_evicts_its_oldest_silent_session_else_refuses() -> None:
    q = engine(per_source=2)
    start(q, ("10.0.0.1", 1000), 0.0, answered=False)
    start(q, ("10.0.0.1", 1001), 1.0, answered=True)
    assert q.offer(("10.0.0.1", 1002), "rrq", 1.5) == Verdict("start", (("10.0.0.1", 1000),))
    q.attach(("10.0.0.1", 1002), Fake(True))
    assert q.offer(("10.0.0.1", 1003), "rrq", 2.0) == Verdict("refused", reason="per-source")


def test_over_the_global_budget_a_request_waits_and_starts_when_a_slot_frees() -> None:
    q = engine(max_sessions=2)
    start(q, ("10.0.0.1", 1000), 0.0, answered=True)
    start(q, ("10.0.0.2", 1000), 0.0, answered=True)
    assert q.offer(("10.0.0.3", 1000), "a", 0.1) == Verdict("queued")
    assert q.offer(("10.0.0.4", 1000), "b", 0.2) == Verdict("queued")
    # A repeated RRQ keeps its place (and is not queued twice).
    assert q.offer(("10.0.0.3", 1000), "a2", 0.5) == Verdict("queued")
    assert q.queued == 2
    assert q.deadline() is None  # every running client answers: nothing to end
    assert q.release(("10.0.0.1", 1000), 1.0, answered=True).start == ((("10.0.0.3", 1000), "a2"),)
    assert q.running(("10.0.0.3", 1000)) and q.queued == 1
    assert q.release(("10.0.0.2", 1000), 1.1, answered=True).start == ((("10.0.0.4", 1000), "b"),)
    assert q.queued == 0


def test_a_silent_session_is_ended_after_grace_only_while_requests_wait() -> None:
    q = engine(max_sessions=2, grace=1.0)
    start(q, ("10.0.0.1", 1000), 0.0, answered=False)  # never answers
    live = start(q, ("10.0.0.2", 1000), 0.2, answered=False)
    # Within grace: a client may not have answered yet: the request waits.
    assert q.offer(("10.0.0.3", 1000), "c", 0.5) == Verdict("queued")
    assert q.deadline() == 1.0
    live.confirmed = True  # the second client answers
    assert q.tick(0.9).evict == ()
    tick = q.tick(1.0)
    assert tick.evict == (("10.0.0.1", 1000),)
    assert tick.start == ((("10.0.0.3", 1000), "c"),)
    assert q.running(("10.0.0.3", 1000)) and not q.running(("10.0.0.1", 1000))
    # A late arrival past grace takes the slot of a silent one at once.
    q.attach(("10.0.0.3", 1000), Fake(False))
    assert q.offer(("10.0.0.4", 1000), "d", 2.5) == Verdict("start", (("10.0.0.3", 1000),))
    # Nothing waits: no timer.
    assert q.deadline() is None


def test_the_queue_has_a_budget_a_full_queue_drops_the_newcomer() -> None:
    q = engine(max_sessions=1, per_source=8, max_queued=3)
    start(q, ("10.0.0.1", 1000), 0.0, answered=True)
    for i in range(3):
        assert q.offer((f"10.0.1.{i}", 1000), str(i), 0.1 * i).action == "queued"
    assert q.offer(("10.0.1.9", 1000), "9", 1.0).action == "dropped"
    assert q.queued == 3 and q.dropped == 1
    started = q.release(("10.0.0.1", 1000), 2.0, answered=True).start
    assert started == ((("10.0.1.0", 1000), "0"),)  # those waiting kept their places
    # A proven source takes the place of the newest unproven request.
    q.known["10.0.0.1"] = None
    assert q.offer(("10.0.1.8", 1000), "8", 2.1).action == "queued"
    assert q.offer(("10.0.0.1", 1001), "proven", 2.2).action == "queued"
    assert list(q.proven) == [("10.0.0.1", 1001)]
    assert list(q.unproven) == [("10.0.1.1", 1000), ("10.0.1.2", 1000)]


def test_per_source_budget_in_the_queue_keeps_the_newest() -> None:
    """Forged requests in a phone's name fill its source's share of the queue:
    the longest-waiting one goes, so the phone's repeated RRQ gets in."""
    q = engine(max_sessions=1, per_source=2)
    start(q, ("10.0.0.1", 1000), 0.0, answered=True)
    assert q.offer(("10.0.0.9", 1), "forged1", 0.0).action == "queued"
    assert q.offer(("10.0.0.9", 2), "forged2", 0.0).action == "queued"
    assert q.offer(("10.0.0.9", 3), "phone", 0.1) == Verdict("queued")
    assert q.queued == 2 and q.dropped == 1
    assert q.queued_by_host == {"10.0.0.9": [("10.0.0.9", 2), ("10.0.0.9", 3)]}


def test_a_request_not_repeated_for_idle_seconds_is_dropped_at_its_turn() -> None:
    q = engine(max_sessions=1)
    start(q, ("10.0.0.1", 1000), 0.0, answered=True)
    q.offer(("10.0.0.2", 1000), "gone", 0.0)
    q.offer(("10.0.0.3", 1000), "here", 0.0)
    q.offer(("10.0.0.3", 1000), "here", 10.0)  # repeats its RRQ
    assert q.release(("10.0.0.1", 1000), 16.0, answered=True).start == (
        (("10.0.0.3", 1000), "here"),
    )
    assert q.dropped == 1


def test_proven_sources_start_before_a_flood_of_unproven_ones() -> None:
    """A phone that answered a transfer before (its address is real) is not
    queued behind spoofed requests; the flood drains at max_sessions per grace."""
    q = engine(max_sessions=4, per_source=8, max_queued=100, grace=1.0)
    phone = ("10.0.0.77", 5000)
    start(q, phone, 0.0, answered=True)
    assert q.release(phone, 0.1, answered=True).start == ()
    # The flood: 4 silent sessions, 50 waiting.
    for i in range(54):
        verdict = q.offer((f"10.9.{i // 200}.{i % 200}", 20000 + i), f"spoof{i}", 1.0)
        if verdict.action == "start":
            q.attach((f"10.9.{i // 200}.{i % 200}", 20000 + i), Fake(False))
    assert q.queued == 50
    assert q.offer(("10.0.0.77", 5001), "phone", 1.2) == Verdict("queued")
    # At grace the flood's silent sessions end; the phone starts first.
    assert q.deadline() == 2.0
    tick = q.tick(2.0)
    assert len(tick.evict) == 4
    assert tick.start[0] == (("10.0.0.77", 5001), "phone")
    assert len(tick.start) == 4


def test_the_set_of_proven_sources_has_a_budget() -> None:
    q: AdmissionQueue[str] = AdmissionQueue(8, 8, 8, grace=1.0, known_budget=2)
    for i in range(3):
        start(q, (f"10.0.0.{i}", 1), float(i), answered=True)
        q.release((f"10.0.0.{i}", 1), float(i), answered=True)
    assert list(q.known) == ["10.0.0.1", "10.0.0.2"]


def test_cancel_gives_a_reserved_slot_back() -> None:
    q = engine(max_sessions=1)
    assert q.offer(("10.0.0.1", 1), "a", 0.0).action == "start"
    assert q.offer(("10.0.0.2", 1), "b", 0.0).action == "queued"
    q.cancel(("10.0.0.1", 1))
    assert q.by_host == {}
    assert q.release(("10.0.0.1", 1), 0.1, answered=False).start == ((("10.0.0.2", 1), "b"),)


@pytest.mark.parametrize("answered", [True, False])
def test_a_session_being_opened_is_never_a_victim(answered: bool) -> None:
    q = engine(max_sessions=1, grace=0.0)
    assert q.offer(("10.0.0.1", 1), "a", 0.0).action == "start"  # no session attached yet
    assert q.offer(("10.0.0.2", 1), "b", 5.0).action == "queued"
    assert q.tick(5.0).evict == ()
    q.attach(("10.0.0.1", 1), Fake(answered))
    assert (q.tick(5.0).evict == ()) is answered


def test_a_waiting_request_whose_source_is_at_its_budget_ends_a_silent_one_of_it() -> None:
    """Requests forged in a real phone's name hold its source's budget: the
    phone's own request, when its turn comes, ends the oldest of them."""
    q = engine(max_sessions=3, per_source=2)
    start(q, ("10.0.0.6", 1), 0.0, answered=True)
    start(q, ("10.0.0.7", 1), 0.0, answered=True)
    start(q, ("10.0.0.5", 1), 0.0, answered=False)  # forged
    assert q.offer(("10.0.0.5", 2), "forged2", 0.2).action == "queued"
    assert q.offer(("10.0.0.5", 3), "phone", 0.3).action == "queued"
    assert q.release(("10.0.0.6", 1), 0.5, answered=True).start == ((("10.0.0.5", 2), "forged2"),)
    q.attach(("10.0.0.5", 2), Fake(False))
    tick = q.release(("10.0.0.7", 1), 0.6, answered=True)
    assert tick == Tick((("10.0.0.5", 1),), ((("10.0.0.5", 3), "phone"),))
    assert q.by_host == {"10.0.0.5": 2}


def test_a_client_that_stopped_repeating_at_its_own_pace_has_given_up() -> None:
    """A boot storm's queue outlasts a client's patience: once two RRQs show
    a client's pace, silence for twice that (+0.5 s) means it gave up, and its
    turn goes to a client still asking; a slow client (5 s) is kept."""
    q = engine(max_sessions=1)
    start(q, ("10.0.0.1", 1000), 0.0, answered=True)
    fast_gone, slow, fresh = ("10.0.0.2", 1000), ("10.0.0.3", 1000), ("10.0.0.4", 1000)
    for t in (0.0, 1.0, 2.0):  # retransmits every second, then gives up
        q.offer(fast_gone, "gave up", t)
    q.offer(slow, "slow", 0.5)
    q.offer(slow, "slow", 5.5)  # every 5 s
    q.offer(fresh, "fresh", 3.0)  # once: its pace is unknown, `idle` applies
    assert q.release(("10.0.0.1", 1000), 9.0, answered=True).start == ((slow, "slow"),)
    assert q.dropped == 1  # the one that stopped asking at 2.0, 7 s before
    assert q.release(slow, 9.5, answered=True).start == ((fresh, "fresh"),)
