"""A full, read-only or failing state_dir degrades; nothing raises into a
service (issue 16). Uses a tiny tmpfs as state_dir (root)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.events import LeaseAcked, LeaseInformed, LeaseOffered
from netboot.registry import Registry
from netboot.state.leases import Lease, LeaseStore, read_leases
from netboot.state.registry import RegistryReader
from netboot.state.versions import VersionStore
from netboot.statedisk import HEALTH, WRITABLE, WRITE_FAILURES, DiskReserve, StateWriteError
from tests.tmpfs import fill, remount, tiny_tmpfs

T0 = 1_800_000_000.0


@pytest.fixture(autouse=True)
def fresh_health() -> Iterator[None]:
    HEALTH.reset()
    yield
    HEALTH.reset()


def lease(n: int, now: float = T0) -> Lease:
    return Lease(
        0x0A000000 + n, f"00:30:4f:00:{n >> 8:02x}:{n & 0xFF:02x}", "bound", now + 3600, updated=now
    )


def failures(store: str, reason: str) -> float:
    return float(WRITE_FAILURES.labels(store, reason)._value.get())


def test_registry_on_a_full_disk_keeps_events_and_writes_them_later(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 4096) as state:
        reg = Registry(state)
        reg.record(LeaseAcked(mac="00:30:4f:00:00:01", ip="10.0.0.1"), now=T0)
        assert reg.flush() == 1
        filler = fill(state)
        before = failures("registry", "disk-full")
        big = "x" * 1000
        for i in range(300):  # more than the WAL's free pages can take
            mac = f"00:30:4f:00:01:{i % 256:02x}"
            reg.record(LeaseOffered(mac=mac, vendor_class=big, offered="10.0.0.9"), now=T0 + i)
        assert reg.flush() == 0  # no exception: the events wait
        assert reg.pending == 300
        assert failures("registry", "disk-full") == before + 1
        assert WRITABLE.labels("registry")._value.get() == 0
        assert any(
            "registry: cannot write to state_dir (the disk is full" in x for x in HEALTH.lines()
        )
        assert reg.prune(T0 + 10) == {}  # neither raises
        filler.unlink()
        assert reg.flush() == 300
        assert "registry" not in HEALTH.problems
        assert WRITABLE.labels("registry")._value.get() == 1
        assert len(reg.phones()) == 1 + 256
        reg.close()


def test_registry_queue_is_bounded_while_the_disk_is_full(tmp_path: Path) -> None:
    from netboot.config import RegistryConfig

    with tiny_tmpfs(tmp_path / "state", 1024) as state:
        reg = Registry(state, RegistryConfig(max_queued=1000))
        fill(state)
        for i in range(5000):
            inform = LeaseInformed(mac="00:30:4f:00:00:02", vendor_class="y" * 500)
            reg.record(inform, now=T0 + i)
            if i % 500 == 0:
                reg.flush()
        assert reg.pending <= 1000
        assert reg.dropped >= 4000
        reg.close()


def test_a_lease_commit_on_a_full_disk_uses_the_reserve(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 2048) as state:
        reserve = DiskReserve(state, 512 * 1024)
        assert reserve.ensure() and reserve.present
        leases = LeaseStore(state, reserve)
        leases.commit([lease(1)])
        fill(state)
        registry = Registry(state, paused=lambda: reserve.released)
        # Many leases in one go: the WAL must grow, and there is no room.
        batch = [lease(n) for n in range(2, 2000)]
        leases.commit(batch)
        assert reserve.released and not reserve.present
        assert any("disk reserve was released" in x for x in HEALTH.lines())
        on_disk = {x.ip for x in read_leases(state)}
        assert {x.ip for x in batch} <= on_disk
        # The registry does not eat what the reserve gave back.
        registry.record(LeaseOffered(mac="00:30:4f:00:00:09", offered="10.0.0.9"), now=T0)
        assert registry.flush() == 0 and registry.pending == 1
        # Room again: the reserve is made again and the registry resumes.
        (state / "filler").unlink()
        assert reserve.ensure() and not reserve.released
        assert registry.flush() == 1
        registry.close()
        leases.close()


def test_without_room_a_lease_commit_raises_state_write_error(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 1024) as state:
        leases = LeaseStore(state)  # no reserve
        leases.commit([lease(1)])
        fill(state)
        with pytest.raises(StateWriteError) as caught:
            leases.commit([lease(n) for n in range(2, 3000)])
        assert caught.value.reason == "disk-full"
        assert {x.ip for x in read_leases(state)} == {lease(1).ip}  # nothing half-written
        leases.close()


def test_read_only_state_dir(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 1024) as state:
        first = LeaseStore(state)
        first.stage(lease(1))
        first.flush()
        first.close()
        VersionStore(state).close()
        before = Registry(state)
        before.record(LeaseAcked(mac="00:30:4f:00:00:01", ip="10.0.0.1"), now=T0)
        before.close()
        remount(state, "ro")
        # `netboot phones` and `netboot leases` still read what is on disk.
        reader = RegistryReader(state)
        assert [p.mac for p in reader.phones()] == ["00:30:4f:00:00:01"]
        assert [e.kind for e in reader.timeline("00:30:4f:00:00:01")] == ["ack"]
        reader.close()
        assert [x.ip for x in read_leases(state)] == [lease(1).ip]
        leases = LeaseStore(state)
        assert not leases.writable
        assert leases.get(lease(1).ip) == lease(1)  # the leases on disk are still known
        with pytest.raises(StateWriteError):
            leases.commit([lease(2)])
        reg = Registry(state)
        assert reg.storage == "memory"
        reg.record(LeaseOffered(mac="00:30:4f:00:00:03", offered="10.0.0.9"), now=T0)
        assert reg.flush() == 1  # in memory
        versions = VersionStore(state)
        assert versions.version("a.cfg", "h1", T0) == 1
        assert versions.version("a.cfg", "h1", T0) == 1
        assert versions.version("a.cfg", "h2", T0) == 2
        lines = HEALTH.lines()
        assert any(
            x.startswith("leases: cannot write to state_dir (state_dir is read-only") for x in lines
        ), lines
        assert any(x.startswith("registry:") for x in lines)
        # Writable again: the next commit (after REOPEN_EVERY) reopens the file.
        remount(state, "rw")
        leases.REOPEN_EVERY = 0.0
        leases.commit([lease(2)])
        assert leases.writable
        assert {x.ip for x in read_leases(state)} == {lease(1).ip, lease(2).ip}
        for closing in (leases, reg, versions):
            closing.close()


def test_a_full_disk_before_the_first_start(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 256) as state:
        fill(state)
        leases = LeaseStore(state)
        reg = Registry(state)
        assert not leases.writable and reg.storage == "memory"
        with pytest.raises(StateWriteError):
            leases.commit([lease(1)])
        (state / "filler").unlink()
        leases.REOPEN_EVERY = 0.0
        leases.commit([lease(1)])
        assert [x.ip for x in read_leases(state)] == [lease(1).ip]
        leases.close()
        reg.close()


def test_reserve_is_not_made_without_room_for_it_twice(tmp_path: Path) -> None:
    with tiny_tmpfs(tmp_path / "state", 1024) as state:
        assert not DiskReserve(state, 600 * 1024).ensure()
        assert not (state / "reserve").exists()
        small = DiskReserve(state, 256 * 1024)
        assert small.ensure() and os.path.getsize(state / "reserve") == 256 * 1024
        assert DiskReserve(state, 128 * 1024).ensure()
        assert os.path.getsize(state / "reserve") == 128 * 1024
        assert DiskReserve(state, 0).ensure() is False
        assert not (state / "reserve").exists()


def test_failures_are_classified() -> None:
    import errno
    import sqlite3

    from netboot.statedisk import classify, reason_of

    full = sqlite3.OperationalError("database or disk is full")
    assert reason_of(full) == "disk-full"
    assert (
        reason_of(sqlite3.OperationalError("attempt to write a readonly database")) == "read-only"
    )
    assert reason_of(sqlite3.OperationalError("disk I/O error")) == "io-error"
    assert reason_of(OSError(errno.ENOSPC, "No space left on device")) == "disk-full"
    assert reason_of(OSError(errno.EROFS, "Read-only file system")) == "read-only"
    assert reason_of(OSError(errno.EIO, "Input/output error")) == "io-error"
    assert reason_of(ValueError("x")) == "other"
    assert classify("leases", full, Path("/")).reason == "disk-full"


def test_a_failing_store_is_logged_once_per_minute(caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    exc = sqlite3.OperationalError("disk I/O error")
    for i in range(500):
        HEALTH.failed("registry", exc, "events wait", now=T0 + i * 0.1)
    lines = [r.getMessage() for r in caplog.records if "registry: cannot write" in r.getMessage()]
    assert len(lines) == 1, lines
    HEALTH.failed("registry", exc, "events wait", now=T0 + 61)
    lines = [r.getMessage() for r in caplog.records if "registry: cannot write" in r.getMessage()]
    assert len(lines) == 2 and lines[1].endswith("(499 more suppressed)"), lines
    assert HEALTH.problems["registry"].count == 501
    HEALTH.ok("registry")
    assert any(
        "registry: writing to state_dir again (501 failed" in r.getMessage() for r in caplog.records
    )
    assert HEALTH.lines() == []


def test_after_the_reserve_is_released_the_wal_stays_short(tmp_path: Path) -> None:
    """Measured: without a checkpoint after each commit, a 256 KiB reserve took
    ~30 one-lease commits (the WAL grew into it); with it, ~3400."""
    with tiny_tmpfs(tmp_path / "state", 3 * 256 + 2048) as state:
        reserve = DiskReserve(state, 256 * 1024)
        assert reserve.ensure()
        leases = LeaseStore(state, reserve)
        leases.commit([lease(1)])
        fill(state)
        for n in range(2, 2002):  # one DHCP ACK's lease per commit, as under light load
            leases.commit([lease(n)])
        assert reserve.released
        assert len(read_leases(state)) == 2001
        wal = state / "netboot.db-wal"
        assert not wal.exists() or wal.stat().st_size < 64 * 1024
        leases.close()
