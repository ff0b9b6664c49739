"""The lease store: DHCP leases, an in-memory index mirrored in SQLite under
state_dir (the appliance's one database file, shared with the registry; the opening and
rollback helpers come from netboot.registry until netboot/state/db.py holds
them). The DHCP engine decides on the index it is handed; the transport
commits.

A lease is on disk before its ACK leaves: the engine `stage`s a lease (the
in-memory index changes at once, so later decisions see it), the transport
collects the replies that depend on staged leases and `commit`s the whole batch
in one fsynced transaction (group commit), and only then sends them. `ip` is
the table's primary key, so one address can never belong to two MACs on disk,
whatever moment the process is killed at.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from pathlib import Path

from netboot.state.db import open_database, open_reader, open_state, transaction
from netboot.statedisk import HEALTH, DiskReserve, StateWriteError, classify


def reason_of_problem(store: str) -> str | None:
    problem = HEALTH.problems.get(store)
    return problem.reason if problem is not None else None


SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    ip INTEGER PRIMARY KEY,
    mac TEXT NOT NULL,
    state TEXT NOT NULL,
    expires REAL NOT NULL,
    hostname TEXT NOT NULL DEFAULT '',
    client_id TEXT NOT NULL DEFAULT '',
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS leases_mac ON leases (mac);
"""

# bound: the client holds it until `expires`; declined: quarantined until
# `expires`; released/expired: free, but remembered so the same MAC gets it back.
STATES = ("bound", "declined", "released", "expired")


@dataclass(frozen=True, slots=True)
class Lease:
    ip: int
    mac: str
    state: str
    expires: float
    hostname: str = ""
    client_id: str = ""
    updated: float = 0.0

    @property
    def address(self) -> IPv4Address:
        return IPv4Address(self.ip)

    def active(self, now: float) -> bool:
        """Does this lease keep its address from anybody else at `now`?"""
        return self.state in ("bound", "declined") and self.expires > now


class LeaseStore:
    """The leases, indexed in memory and written to SQLite.

    When state_dir cannot be written (read-only, full disk at start), the
    leases on disk are still read, `writable` is false, and every `commit`
    raises StateWriteError (after trying, at most every REOPEN_EVERY seconds,
    to open the file for writing again): the transport then sends no ACK for
    a lease that is not on disk. A commit that fails for lack of space gives
    up the disk reserve (`reserve`) and is tried once more."""

    REOPEN_EVERY = 5.0

    def __init__(self, state_dir: Path, reserve: DiskReserve | None = None) -> None:
        self.state_dir = state_dir
        self.reserve = reserve
        self._conn, storage = self._open()
        # Opening needs room too (the -wal and -shm files): use the reserve.
        if (
            storage != "disk"
            and reason_of_problem("leases") == "disk-full"
            and reserve is not None
            and reserve.release()
        ):
            self._conn.close()
            self._conn, storage = self._open()
            if storage == "disk":
                HEALTH.ok("leases")
        self.writable = storage == "disk"
        self._tight = False  # state_dir was full: checkpoint after every commit
        self._last_open = time.monotonic()
        if self.writable:
            self._conn.execute("PRAGMA synchronous=FULL")
        self._lock = threading.Lock()
        self.by_ip: dict[int, Lease] = {}
        # A MAC's addresses: a tuple, almost always of one (a set costs 216
        # bytes a lease, a tuple of one 48: 100 k leases are ~17 MB less).
        self.by_mac: dict[str, tuple[int, ...]] = {}
        self._staged: dict[int, Lease] = {}
        # Row by row (no list of every row at once: the peak would stay in RSS),
        # the same state text shared between leases; `_index` inlined (`ip` is
        # the table's key: no address comes twice; 100 k leases load in ~0.1 s
        # less, before READY).
        strings: dict[str, str] = {}
        by_ip, by_mac = self.by_ip, self.by_mac
        try:
            for ip, mac, state, expires, hostname, client_id, updated in self._conn.execute(
                "SELECT ip, mac, state, expires, hostname, client_id, updated FROM leases"
            ):
                state = strings.setdefault(state, state)
                by_ip[ip] = Lease(ip, mac, state, expires, hostname, client_id, updated)
                ips = by_mac.get(mac)
                by_mac[mac] = (ip,) if ips is None else (*ips, ip)
        except sqlite3.Error:
            pass

    def _open(self) -> tuple[sqlite3.Connection, str]:
        return open_state(
            self.state_dir,
            "leases",
            SCHEMA,
            read_only="the leases on disk are known, but no new lease can be saved: "
            "no DHCP ACK is sent until it can",
            memory="no lease can be saved: no DHCP ACK is sent until it can",
        )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ index

    def _index(self, lease: Lease) -> None:
        old = self.by_ip.get(lease.ip)
        if old is not None and old.mac != lease.mac:
            ips = self.by_mac.get(old.mac)
            if ips is not None:
                rest = tuple(ip for ip in ips if ip != lease.ip)
                if rest:
                    self.by_mac[old.mac] = rest
                else:
                    del self.by_mac[old.mac]
        self.by_ip[lease.ip] = lease
        ips = self.by_mac.get(lease.mac, ())
        if lease.ip not in ips:
            self.by_mac[lease.mac] = (*ips, lease.ip)

    def get(self, ip: int) -> Lease | None:
        return self.by_ip.get(ip)

    def for_mac(self, mac: str) -> Iterator[Lease]:
        for ip in self.by_mac.get(mac, ()):
            yield self.by_ip[ip]

    def __iter__(self) -> Iterator[Lease]:
        return iter(list(self.by_ip.values()))

    def __len__(self) -> int:
        return len(self.by_ip)

    def mac_for_ip(self, ip: str | IPv4Address, now: float) -> str | None:
        """The MAC holding an active lease on `ip` (for per-MAC file binding)."""
        lease = self.by_ip.get(int(IPv4Address(ip)))
        return (
            lease.mac
            if lease is not None and lease.state == "bound" and lease.expires > now
            else None
        )

    def ip_for_mac(self, mac: str, now: float) -> IPv4Address | None:
        best: Lease | None = None
        for lease in self.for_mac(mac):
            if (
                lease.state == "bound"
                and lease.expires > now
                and (best is None or lease.updated > best.updated)
            ):
                best = lease
        return best.address if best is not None else None

    # ------------------------------------------------------------ writing

    def stage(self, lease: Lease) -> None:
        """Change the index now; the change reaches disk at the next `commit`."""
        self._index(lease)
        self._staged[lease.ip] = lease

    @property
    def staged(self) -> int:
        return len(self._staged)

    def take_staged(self) -> list[Lease]:
        batch = list(self._staged.values())
        self._staged.clear()
        return batch

    def commit(self, batch: Iterable[Lease]) -> None:
        """Write leases durably in one transaction (safe to call from a worker
        thread); StateWriteError when they could not be written."""
        rows = [
            (x.ip, x.mac, x.state, x.expires, x.hostname, x.client_id, x.updated) for x in batch
        ]
        if not rows:
            return
        with self._lock:
            if not self.writable and not self._reopen():
                raise StateWriteError("leases", "read-only", "state_dir cannot be written")
            try:
                self._write(rows)
                if self._tight:
                    self._checkpoint()
                    self._tight = not self._roomy()
            except (sqlite3.Error, OSError) as exc:
                failure = classify("leases", exc, self.state_dir)
                if failure.reason != "disk-full":
                    raise failure from exc
                # From now on every commit is checkpointed at once, so the WAL
                # stays a few pages long and the room left goes to the leases.
                self._tight = True
                # First the WAL's own room: once checkpointed, the next commit
                # writes over its start instead of growing it.
                if self._checkpoint():
                    try:
                        self._write(rows)
                        self._checkpoint()
                        return
                    except (sqlite3.Error, OSError) as again:
                        failure = classify("leases", again, self.state_dir)
                if self.reserve is None or not self.reserve.release():
                    raise failure from exc
                try:
                    self._write(rows)  # into the space the reserve gave back
                except (sqlite3.Error, OSError) as again:
                    raise classify("leases", again, self.state_dir) from again
                self._checkpoint()

    def _roomy(self) -> bool:
        """Is there room again (the reserve's size free, and the reserve back)?"""
        try:
            st = os.statvfs(self.state_dir)
        except OSError:
            return False
        need = max(self.reserve.size if self.reserve is not None else 0, 1 << 20)
        back = self.reserve is None or self.reserve.size <= 0 or not self.reserve.released
        return back and st.f_bavail * st.f_frsize >= need

    def _checkpoint(self) -> bool:
        """Copy the WAL into the database (PASSIVE: never waits for a reader):
        True when all of it was, so that the next commit writes over the WAL's
        start instead of growing it."""
        try:
            row = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except (sqlite3.Error, OSError):
            return False
        return row is not None and row[0] == 0 and row[1] == row[2]

    def _write(self, rows: list[tuple[int, str, str, float, str, str, float]]) -> None:
        with transaction(self._conn) as cur:
            cur.executemany(
                "INSERT INTO leases (ip, mac, state, expires, hostname, client_id, updated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(ip) DO UPDATE SET mac = excluded.mac, "
                "state = excluded.state, expires = excluded.expires, hostname = excluded.hostname, "
                "client_id = excluded.client_id, updated = excluded.updated",
                rows,
            )

    def _reopen(self) -> bool:
        """state_dir was not writable: try again (at most every REOPEN_EVERY s)."""
        now = time.monotonic()
        if now - self._last_open < self.REOPEN_EVERY:
            return False
        self._last_open = now
        conn: sqlite3.Connection | None = None
        for _ in range(2):
            try:
                conn = open_database(self.state_dir)
                try:
                    conn.executescript(SCHEMA)
                    conn.execute("PRAGMA synchronous=FULL")
                except BaseException:
                    conn.close()
                    raise
                break
            except (sqlite3.Error, OSError) as exc:
                conn = None
                full = classify("leases", exc, self.state_dir).reason == "disk-full"
                if not (full and self.reserve is not None and self.reserve.release()):
                    return False
        if conn is None:
            return False
        self._conn.close()
        self._conn = conn
        self.writable = True
        return True

    def flush(self) -> None:
        """Commit everything staged, synchronously (tests, shutdown)."""
        self.commit(self.take_staged())


def read_leases(state_dir: Path) -> list[Lease]:
    """Every lease on disk, for `netboot leases` (another process may be serving)."""
    conn = open_reader(state_dir)
    if conn is None:
        return []
    try:
        rows = conn.execute(
            "SELECT ip, mac, state, expires, hostname, client_id, updated FROM leases ORDER BY ip"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [Lease(*row) for row in rows]


__all__ = ["Lease", "LeaseStore", "read_leases", "replace"]
