"""Registry budgets (registry.* keys), on a stepped clock: a flood of random
MACs or of one MAC's INFORMs leaves a bounded table (issue 16)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from netboot import registry as registry_module
from netboot.config import RegistryConfig
from netboot.events import FileFetched, LeaseAcked, LeaseInformed, LeaseOffered
from netboot.http.status import render_index
from netboot.registry import PRUNED, Registry
from netboot.state.leases import Lease, LeaseStore
from netboot.statedisk import HEALTH

T0 = 1_800_000_000.0


def random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] | 0x02) & 0xFE  # locally administered unicast, as a flooder would
    return ":".join(f"{b:02x}" for b in raw)


def count(reg: Registry, table: str) -> int:
    return int(reg.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_random_mac_discover_flood_is_aged_out_and_capped(tmp_path: Path) -> None:
    reg = Registry(tmp_path)  # defaults: max_unknown 1000, unknown_max_age 3600 s
    leased = "00:30:4f:00:00:01"
    reg.record(LeaseAcked(mac=leased, ip="10.0.0.5"), now=T0)
    provisioned = "00:30:4f:00:00:02"
    fetch = FileFetched(mac=provisioned, file="x.cfg", file_kind="common", protocol="http")
    reg.record(fetch, now=T0)
    for i in range(5000):
        reg.record(LeaseOffered(mac=random_mac(), offered="10.0.0.9"), now=T0 + i * 0.01)
    reg.flush()
    assert count(reg, "phones") == 5002
    assert reg.needs_prune  # a flood does not wait for the minutely prune
    before = PRUNED.labels("unknown")._value.get()

    # A batch (PRUNE_PHONES = 500) per call, the oldest first; `more` asks for another.
    calls = [reg.prune(T0 + 60, keep={leased})]
    while reg.more:
        calls.append(reg.prune(T0 + 60, keep={leased}))
    assert calls == [{"unknown": 500}] * 8
    assert not reg.needs_prune
    assert PRUNED.labels("unknown")._value.get() == before + 4000
    phones = {p.mac: p for p in reg.phones()}
    assert len(phones) == 1002 and leased in phones and provisioned in phones
    # The newest unknown MACs are the ones kept.
    assert min(p.last_seen for p in phones.values() if p.state == "seen" and p.mac != leased) >= (
        T0 + 4000 * 0.01 - 0.001
    )
    page = render_index(reg.phones(), "netboot", "n", now=T0 + 60)
    assert len(page) < 800_000, len(page)  # 5002 rows: ~2.9 MB

    # An hour after they were last heard, every unknown MAC is gone; the
    # leased one (still in state "seen": its ACK carried no URL) and the
    # provisioned one stay.
    assert reg.prune(T0 + 50 + 3600, keep={leased}) == {"unknown": 500} and reg.more
    assert reg.prune(T0 + 50 + 3600, keep={leased}) == {"unknown": 500} and not reg.more
    assert {p.mac for p in reg.phones()} == {leased, provisioned}
    assert count(reg, "events") == 2
    reg.close()


def test_inform_flood_from_one_mac_keeps_its_latest_events(tmp_path: Path) -> None:
    reg = Registry(tmp_path, RegistryConfig(max_events_per_phone=50))
    mac = "00:30:4f:00:00:03"
    reg.record(LeaseAcked(mac=mac, ip="10.0.0.7"), now=T0)
    for i in range(2000):
        reg.record(LeaseInformed(mac=mac, ip="10.0.0.7", vendor_class=f"n{i}"), now=T0 + 1 + i)
    reg.flush()
    other = "00:30:4f:00:00:04"
    reg.record(LeaseAcked(mac=other, ip="10.0.0.8"), now=T0)
    reg.flush()
    assert reg.prune(T0 + 3000, keep={mac, other}) == {"phone_events": 1951}
    timeline = reg.timeline(mac)
    assert len(timeline) == 50
    assert [e.detail["vendor_class"] for e in timeline] == [f"n{i}" for i in range(1950, 2000)]
    assert len(reg.timeline(other)) == 1
    phone = reg.phone(mac)
    assert phone is not None and phone.ip == "10.0.0.7"  # the row keeps its facts
    reg.close()


def test_retention_by_age_and_count(tmp_path: Path) -> None:
    budget = RegistryConfig(retention_days=1, max_phones=3, max_events=5)
    reg = Registry(tmp_path, budget)
    macs = [f"00:30:4f:00:01:{n:02x}" for n in range(5)]
    for n, mac in enumerate(macs):
        for k in range(2):
            fetch = FileFetched(mac=mac, file=f"{k}.cfg", file_kind="mac", protocol="http")
            reg.record(fetch, now=T0 + n * 10 + k)
    reg.flush()
    assert reg.prune(T0 + 100, keep=set(macs)) == {"phones": 2, "events": 1}
    # The two least recently seen phones went; of the rest, the oldest event.
    assert [p.mac for p in reg.phones()] == macs[2:]
    assert count(reg, "events") == 5
    assert [e.detail["file"] for e in reg.timeline(macs[2])] == ["1.cfg"]
    # A day later only what is newer than retention_days is left.
    fetch = FileFetched(mac=macs[4], file="n.cfg", file_kind="mac", protocol="http")
    reg.record(fetch, now=T0 + 86400 + 50)
    reg.flush()
    removed = reg.prune(T0 + 86400 + 60, keep=set(macs))
    assert removed == {"age_events": 5, "age_phones": 2}
    assert [p.mac for p in reg.phones()] == [macs[4]]
    assert [e.detail["file"] for e in reg.timeline(macs[4])] == ["n.cfg"]
    reg.close()


def test_acks_lost_to_a_kill_are_recovered_from_the_leases(tmp_path: Path) -> None:
    leases = LeaseStore(tmp_path)
    leases.stage(Lease(0x0A000005, "00:30:4f:00:00:05", "bound", T0 + 3600, "desk", "", T0))
    leases.stage(Lease(0x0A000006, "00:30:4f:00:00:06", "bound", T0 + 3600, "", "", T0))
    leases.stage(Lease(0x0A000007, "00:30:4f:00:00:07", "released", T0, "", "", T0))
    leases.flush()
    reg = Registry(tmp_path)
    # .06's ack reached the registry before the kill; .05's did not.
    reg.record(LeaseAcked(mac="00:30:4f:00:00:06", ip="10.0.0.6"), now=T0)
    reg.flush()
    assert reg.reconcile(leases) == 1
    events = reg.timeline("00:30:4f:00:00:05")
    assert [(e.service, e.kind, e.detail["ip"]) for e in events] == [("dhcp", "ack", "10.0.0.5")]
    phone = reg.phone("00:30:4f:00:00:05")
    assert phone is not None and phone.ip == "10.0.0.5" and phone.hostname == "desk"
    assert len(reg.timeline("00:30:4f:00:00:06")) == 1
    assert reg.timeline("00:30:4f:00:00:07") == []
    assert reg.reconcile(leases) == 0  # once only
    reg.close()
    leases.close()


def test_registry_keys_are_read_and_checked() -> None:
    import tomllib

    import pytest

    from netboot.config import ConfigError, parse_config

    base = '[appliance]\ninterface = "lo"\nstate_reserve_kib = 0\n[dhcp]\nenabled = false\n'
    config = parse_config(
        tomllib.loads(
            base + "[registry]\nmax_unknown = 5\nunknown_max_age = 60\nretention_days = 7\n"
        )
    )
    assert config.appliance.state_reserve_kib == 0
    assert (config.registry.max_unknown, config.registry.unknown_max_age) == (5, 60.0)
    assert config.registry.retention_days == 7.0
    assert config.registry.max_events_per_phone == 200  # default
    with pytest.raises(ConfigError) as caught:
        parse_config(tomllib.loads(base + "[registry]\nmax_phones = 0\nmax_event = 3\n"))
    assert caught.value.problems == [
        "registry.max_phones: must be between 1 and 10000000, got 0",
        "registry.max_event: unknown key (did you mean max_events?)",
    ]


def test_a_small_reserve_is_a_check_warning() -> None:
    import tomllib

    from netboot.config import parse_config, site_warnings

    base = '[appliance]\ninterface = "eth0"\n[provisioning]\nurl = "http://x/$mac.cfg"\n'
    base += '[dhcp]\nsubnet = "10.0.0.0/24"\npool = "10.0.0.10-10.0.0.20"\n'
    for reserve, expect in ((8192, None), (1024, "may not be enough"), (0, "sends no ACK")):
        text = base.replace('"eth0"\n', f'"eth0"\nstate_reserve_kib = {reserve}\n', 1)
        warnings = [w for w in site_warnings(parse_config(tomllib.loads(text))) if "reserve" in w]
        assert (
            (warnings[0] if warnings else None) is None if expect is None else expect in warnings[0]
        )


def test_flood_prune_costs_what_it_removes_and_keeps_exact_totals(tmp_path: Path) -> None:
    """Between two minutely (full) prunes, a flood's prune applies the budgets
    by count from the sizes kept in memory; those sizes stay equal to the
    tables', and the budgets by age wait for the next full prune."""
    budget = RegistryConfig(
        max_phones=300, max_events=500, max_events_per_phone=3, retention_days=1
    )
    reg = Registry(tmp_path, budget)
    old = "00:30:4f:00:02:00"
    reg.record(LeaseAcked(mac=old, ip="10.0.0.2", url="http://x/"), now=T0)
    reg.flush()
    later = T0 + 2 * 86400  # `old` is past retention_days from here on
    leased = [f"00:30:4f:01:{n >> 8:02x}:{n & 255:02x}" for n in range(400)]
    for n, mac in enumerate(leased):
        when = later + n
        reg.record(LeaseOffered(mac=mac, offered="10.0.0.9"), now=when)
        reg.record(LeaseAcked(mac=mac, ip="10.0.0.9", url="http://x/"), now=when)
    for k in range(10):  # one phone over its own budget
        reg.record(
            LeaseInformed(mac=leased[-1], ip="10.0.0.9", vendor_class=f"n{k}"), now=later + 500 + k
        )
    reg.flush()
    removed = reg.prune(later + 600, keep=set(leased), full=False)
    while reg.more:
        for reason, n in reg.prune(later + 600, keep=set(leased), full=False).items():
            removed[reason] = removed.get(reason, 0) + n
    # max_phones: the least recently seen 101 went, `old` first; not by age.
    assert removed["phones"] == 101 and "age_events" not in removed
    assert removed["phone_events"] == 9  # 12 events of leased[-1], 3 kept
    phones = {p.mac for p in reg.phones()}
    assert len(phones) == 300 and old not in phones and leased[-1] in phones
    assert count(reg, "events") <= 500
    assert len(reg.timeline(leased[-1])) == 3
    # The sizes the next prune starts from are the tables' own.
    assert reg._events == count(reg, "events")
    assert reg._phones == count(reg, "phones")
    reg.close()


def test_phones_beyond_the_state_cache_flush_and_prune_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the phones written last keep their state in memory
    (CACHED_PHONES, 8 here): any other phone's is read from the table with
    its batch; the tables' sizes kept in memory stay equal to count(*)
    through writes, prunes and a write whose outcome is unknown."""
    monkeypatch.setattr(registry_module, "CACHED_PHONES", 8)
    reg = Registry(tmp_path, RegistryConfig(max_phones=25, max_events_per_phone=2))

    def sizes() -> tuple[int | None, int | None]:
        return reg._phones, reg._events

    def own(mac: str) -> FileFetched:
        return FileFetched(mac=mac, file=f"{mac}.cfg", file_kind="mac", protocol="http")

    def common(mac: str) -> FileFetched:
        return FileFetched(mac=mac, file="common.cfg", file_kind="common", protocol="http")

    def state(mac: str) -> str | None:
        phone = reg.phone(mac)
        return phone.state if phone is not None else None

    macs = [f"00:30:4f:03:00:{n:02x}" for n in range(30)]
    for n, mac in enumerate(macs):
        reg.record(LeaseAcked(mac=mac, ip=f"10.0.3.{n}", url="http://x/"), now=T0 + n)
        reg.record(own(mac), now=T0 + n)
    assert reg.flush() == 60
    assert list(reg._cache) == macs[-8:]  # the rest: in the table only
    assert sizes() == (count(reg, "phones"), count(reg, "events")) == (30, 60)

    # A common file after the phone's own does not move it back, whether its
    # state was in memory or not; nor is a phone that has a row a new one.
    late = macs[3]
    for mac in (macs[0], macs[-1]):
        reg.record(common(mac), now=T0 + 100)
    reg.record(own(late), now=T0 - 50)  # written last, seen least recently
    assert reg.flush() == 3
    assert [state(m) for m in (macs[0], macs[-1], late)] == ["fetched-own"] * 3
    assert sizes() == (count(reg, "phones"), count(reg, "events")) == (30, 63)
    assert list(reg._cache)[-3:] == [macs[0], macs[-1], late] and len(reg._cache) == 8

    # max_events_per_phone: the 3 phones with 3 events lose one (the grouped
    # count finds them whether they are in memory or not); max_phones: the 5
    # least recently seen go, `late` among them (in the cache).
    removed = reg.prune(T0 + 200, keep=set(macs))
    assert removed == {"phone_events": 3, "phones": 5}
    assert late not in reg._cache and state(late) is None
    assert sizes() == (count(reg, "phones"), count(reg, "events")) == (25, 50)
    # Back after it was forgotten: a new row, moved from `seen`.
    reg.record(common(late), now=T0 + 300)
    assert reg.flush() == 1
    assert state(late) == "fetched-common"
    assert sizes() == (count(reg, "phones"), count(reg, "events")) == (26, 51)

    # A write that raised after its commit (its outcome unknown): the events
    # wait and go again; the sizes are counted again, not guessed.
    real = reg._store.write
    failure = [sqlite3.OperationalError("disk I/O error")]

    def committed_then_failed(*args: Any) -> None:
        real(*args)
        if failure:
            raise failure.pop()

    monkeypatch.setattr(reg._store, "write", committed_then_failed)
    reg.record(own(macs[10]), now=T0 + 400)
    reg.record(own("00:30:4f:03:01:00"), now=T0 + 400)
    assert reg.flush() == 0 and reg.pending == 2
    assert sizes() == (None, None) and not reg._cache
    assert reg.flush() == 2 and "registry" not in HEALTH.problems
    assert sizes() == (count(reg, "phones"), count(reg, "events")) == (27, 55)
    assert state("00:30:4f:03:01:00") == "fetched-own"
    reg.close()


def test_a_backlog_of_phones_reads_the_unknown_macs_once(tmp_path: Path) -> None:
    """max_phones removes 500 phones a call; the unknown MACs' budget, which
    reads every MAC in state `seen`, runs at the first call only (it had
    nothing left to remove), not once per call of the backlog."""
    reg = Registry(tmp_path, RegistryConfig(max_phones=100))
    leased = [f"00:30:4f:04:{n >> 8:02x}:{n & 255:02x}" for n in range(1300)]
    for n, mac in enumerate(leased):
        reg.record(LeaseAcked(mac=mac, ip="10.0.0.9"), now=T0 + n)  # no URL: stays `seen`
    reg.flush()
    statements: list[str] = []
    reg.connection.set_trace_callback(statements.append)
    calls = [reg.prune(T0 + 2000, keep=set(leased), full=False)]
    while reg.more:
        calls.append(reg.prune(T0 + 2000, keep=set(leased), full=False))
    assert calls == [{"phones": 500}, {"phones": 500}, {"phones": 200}]
    assert sum("ORDER BY last_seen DESC" in s for s in statements) == 1
    assert reg._phones == count(reg, "phones") == 100
    assert {p.mac for p in reg.phones()} == set(leased[-100:])
    reg.close()
