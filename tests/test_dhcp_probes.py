"""The conflict-check table on a stepped clock: one check per address, the
requests waiting on it released together, deadlines, and the budget."""

from __future__ import annotations

from netboot.dhcp.probes import ProbeTable


def test_one_check_per_address_and_all_waiters_released_on_answer() -> None:
    table: ProbeTable[str] = ProbeTable(timeout=0.1)
    assert table.start(10, "eth0", "first", now=0.0) is True
    assert table.start(10, "eth0", "second", now=0.05) is False  # already in flight
    assert table.start(11, "eth0", "other", now=0.05) is True
    check = table.finish(10)
    assert check is not None and check.waiting == ["first", "second"]
    assert 10 not in table and 11 in table
    assert table.finish(10) is None  # a late second answer finds nothing


def test_deadlines_expire_in_order_and_a_finished_check_does_not_expire() -> None:
    table: ProbeTable[str] = ProbeTable(timeout=0.1)
    table.start(1, "eth0", "a", now=0.0)
    table.start(2, "eth1", "b", now=0.03)
    table.start(3, "eth0", "c", now=0.06)
    assert table.next_deadline() == 0.1
    assert table.expired(0.099) == []
    table.finish(1)  # answered before its deadline
    assert table.next_deadline() == 0.13
    done = table.expired(0.14)
    assert [(ip, c.interface, c.waiting) for ip, c in done] == [(2, "eth1", ["b"])]
    assert table.next_deadline() == 0.16
    assert [ip for ip, _ in table.expired(1.0)] == [3]
    assert table.next_deadline() is None and len(table) == 0


def test_a_restarted_address_keeps_only_its_new_deadline() -> None:
    table: ProbeTable[str] = ProbeTable(timeout=0.1)
    table.start(5, "eth0", "a", now=0.0)
    table.finish(5)
    table.start(5, "eth0", "b", now=0.5)
    assert table.expired(0.2) == []  # the first check's deadline is stale
    assert [c.waiting for _, c in table.expired(0.6)] == [["b"]]


def test_budget_full_means_decide_without_a_check() -> None:
    table: ProbeTable[int] = ProbeTable(timeout=0.1, budget=2)
    assert table.start(1, "eth0", 1, now=0.0) is True
    assert table.start(2, "eth0", 2, now=0.0) is True
    assert table.start(3, "eth0", 3, now=0.0) is None
    assert table.start(1, "eth0", 4, now=0.0) is False  # joining one in flight is free
    assert len(table) == 2
    table.expired(0.2)
    assert table.start(3, "eth0", 3, now=0.2) is True
