"""The supervisor's registry writer (netboot/supervisor.py): it writes only in
its turn on netboot.db (`Context.db_turn`, which DHCP's lease commits hold
while their fsync runs), and a flood's prune between two full ones applies the
budgets by count at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from netboot import supervisor
from netboot.config import RegistryConfig
from netboot.events import LeaseOffered
from netboot.registry import Registry
from netboot.state.leases import LeaseStore
from netboot.statedisk import DiskReserve


def _count(reg: Registry, table: str) -> int:
    return int(reg.connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


async def _drained(reg: Registry, task: asyncio.Task[None]) -> int:
    """Wait (5 s at most) until the flusher has written everything; stop it."""
    async with asyncio.timeout(5):
        while reg.pending:
            await asyncio.sleep(0.01)
    task.cancel()
    return reg.pending


def test_registry_flush_waits_for_the_db_turn(tmp_path: Path) -> None:
    reg = Registry(tmp_path)

    async def scenario() -> tuple[int, int]:
        turn = asyncio.Lock()
        await turn.acquire()  # a lease commit in flight
        task = asyncio.create_task(supervisor._flush_registry(reg, turn, interval=0.01))
        reg.record(LeaseOffered(mac="00:30:4f:00:00:01", offered="10.0.0.9"))
        for _ in range(20):  # 20 flush intervals: none may write
            await asyncio.sleep(0.01)
        held = reg.pending
        turn.release()
        return held, await _drained(reg, task)

    held, left = asyncio.run(scenario())
    assert held == 1 and left == 0
    assert _count(reg, "events") == 1
    reg.close()


def test_registry_writes_a_batch_an_interval_while_dhcp_requests_wait(tmp_path: Path) -> None:
    """History is written in DHCP's gaps: while a request waits in DHCP's
    socket (`Context.dhcp_waiting`), one batch a flush interval; once DHCP's
    socket is empty, everything."""
    reg = Registry(tmp_path)
    waiting = [True]

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(
            supervisor._flush_registry(reg, asyncio.Lock(), lambda: waiting[0], interval=0.05)
        )
        for n in range(1000):  # ten batches of FLUSH_BATCH
            reg.record(
                LeaseOffered(mac=f"00:30:4f:00:{n >> 8:02x}:{n & 255:02x}", offered="10.0.0.9")
            )
        async with asyncio.timeout(5):
            while reg.pending > 1000 - 2 * supervisor.FLUSH_BATCH:  # two intervals
                await asyncio.sleep(0.005)
        await asyncio.sleep(0)
        held = reg.pending
        waiting[0] = False
        return held, await _drained(reg, task)

    held, left = asyncio.run(scenario())
    # batch by batch while DHCP was busy: far from the ten batches a free loop writes at once
    assert 0 < held <= 1000 - 2 * supervisor.FLUSH_BATCH and held % supervisor.FLUSH_BATCH == 0
    assert left == 0
    assert _count(reg, "events") == 1000
    reg.close()


def test_flood_prune_does_not_wait_for_the_minute(tmp_path: Path) -> None:
    reg = Registry(tmp_path, RegistryConfig(max_phones=100))
    leases = LeaseStore(tmp_path)
    for n in range(400):
        reg.record(LeaseOffered(mac=f"00:30:4f:00:{n >> 8:02x}:{n & 255:02x}", offered="10.0.0.9"))
    reg.flush()
    assert reg.needs_prune and _count(reg, "phones") == 400

    async def scenario() -> None:
        task = asyncio.create_task(
            supervisor._state_housekeeping(reg, leases, DiskReserve(tmp_path, 0), asyncio.Lock())
        )
        async with asyncio.timeout(10):
            while _count(reg, "phones") > 100:
                await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(scenario())
    assert _count(reg, "phones") == 100
    reg.close()
    leases.close()
