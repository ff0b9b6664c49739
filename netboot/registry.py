"""What the appliance knows per phone (MAC), fed by every service.

DHCP, PnP, LLDP, TFTP, HTTP, FTP and Action URL all call `Registry.record`
with (mac, service, kind, detail). Events are queued in memory and written in
one transaction per flush (the supervisor flushes a few times a second and at
shutdown), so recording never stalls a hot path. The per-phone row keeps the
latest facts (IP, vendor, model, firmware) and a provisioning state that only
moves forward along: seen -> url-sent -> fetched-common -> fetched-own ->
registered; `failed` (a file a phone asked for was missing or refused) is shown
until a later success replaces it, `registration-failed` when the line failed.
A per-MAC file refused as "forbidden" was asked for by an address that does not
hold that MAC's lease (someone else): it goes into the phone's timeline but
never changes the phone's state, facts, last-seen time or last event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from prometheus_client import Counter

from netboot import metrics
from netboot.config import RegistryConfig
from netboot.ratelog import RateLimitedLog
from netboot.statedisk import HEALTH, StateWriteError, classify

if TYPE_CHECKING:
    from netboot.state.leases import Lease

_T = TypeVar("_T")
PRUNE_BATCH = 2000  # events a prune call removes at most per budget (a few ms of the loop)
PRUNE_PHONES = 500  # phones (each with its events) a prune call removes at most per budget

log = logging.getLogger("netboot.registry")
_budget_log = RateLimitedLog(log, every=60.0)

PRUNED = Counter(
    "netboot_registry_pruned_total",
    "Registry rows removed by a budget (registry.*)",
    ["reason"],
    registry=metrics.REGISTRY,
)
_BUDGET_KEYS = {
    "phone_events": "registry.max_events_per_phone",
    "age_events": "registry.retention_days",
    "age_phones": "registry.retention_days",
    "unknown": "registry.unknown_max_age / registry.max_unknown",
    "phones": "registry.max_phones",
    "events": "registry.max_events",
    "queued": "registry.max_queued",
}
for _reason in _BUDGET_KEYS:
    PRUNED.labels(_reason)


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
    """BEGIN IMMEDIATE ... COMMIT; on any error a ROLLBACK that cannot itself
    raise (SQLite has already rolled back after a failed COMMIT on a full disk)."""
    cur = conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        yield cur
        cur.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                cur.execute("ROLLBACK")
        raise


DB_NAME = "netboot.db"

# Provisioning states and their rank: a later event never moves a phone back.
STATES: dict[str, int] = {
    "seen": 0,
    "url-sent": 1,
    "failed": 2,
    "fetched-common": 3,
    "fetched-own": 4,
    "registration-failed": 5,
    "registered": 6,
}

# Facts a service may report with an event; they update the phone row.
FACTS = ("ip", "vendor", "model", "firmware", "hostname", "vendor_class", "url", "lldp_name")

SCHEMA = """
CREATE TABLE IF NOT EXISTS phones (
    mac TEXT PRIMARY KEY,
    ip TEXT, vendor TEXT, model TEXT, firmware TEXT, hostname TEXT,
    vendor_class TEXT, url TEXT, lldp_name TEXT,
    state TEXT NOT NULL DEFAULT 'seen',
    state_detail TEXT,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    last_event TEXT,
    files INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    mac TEXT NOT NULL,
    ts REAL NOT NULL,
    service TEXT NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_mac ON events (mac, id);
"""


def open_database(state_dir: Path) -> sqlite3.Connection:
    """A connection to the appliance's SQLite file, in WAL mode, schema ready."""
    state_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        state_dir / DB_NAME, timeout=10.0, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA busy_timeout=10000")
    except BaseException:
        conn.close()
        raise
    return conn


def _read_only_fs(path: Path) -> bool:
    """Is `path` (or its nearest existing parent) on a read-only mount?"""
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
            except OSError:
                return False
    return False


def open_state(
    state_dir: Path,
    store: str,
    schema: str,
    *,
    read_only: str | None = None,
    memory: str,
    report: bool = True,
) -> tuple[sqlite3.Connection, str]:
    """`store`'s connection and how it is held: "disk" (writable), "read-only"
    (the file on disk, for reading, when `read_only` says what that means) or
    "memory" (`memory` says what that means). A failure to open for writing is
    reported once to HEALTH, never raised."""
    try:
        conn = open_database(state_dir)
        try:
            conn.executescript(schema)
        except BaseException:
            conn.close()
            raise
        return conn, "disk"
    except (sqlite3.Error, OSError) as exc:
        failure: BaseException = exc
        if _read_only_fs(state_dir):
            failure = StateWriteError(store, "read-only", str(state_dir))
        elif state_dir.is_dir():
            failure = classify(store, exc, state_dir)
    path = state_dir / DB_NAME
    for query in ("mode=ro", "mode=ro&immutable=1"):
        try:
            if read_only is None or not path.exists():
                break
            conn = sqlite3.connect(
                f"file:{path}?{query}",
                uri=True,
                timeout=10.0,
                isolation_level=None,
                check_same_thread=False,
            )
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            except sqlite3.Error:
                conn.close()
                continue
            if report:
                HEALTH.failed(store, failure, read_only)
            return conn, "read-only"
        except (sqlite3.Error, OSError):
            continue
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.executescript(schema)
    if report:
        HEALTH.failed(store, failure, memory)
    return conn, "memory"


@dataclass(frozen=True)
class Event:
    mac: str
    when: float
    service: str
    kind: str
    detail: Mapping[str, Any]

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.detail.items() if v not in (None, "", [], {})]
        return f"{self.service} {self.kind} " + " ".join(parts)


@dataclass(frozen=True)
class Phone:
    mac: str
    ip: str | None
    vendor: str | None
    model: str | None
    firmware: str | None
    hostname: str | None
    vendor_class: str | None
    url: str | None
    state: str
    state_detail: str | None
    first_seen: float
    last_seen: float
    last_event: str | None
    files: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def state_after(
    kind: str, service: str, detail: Mapping[str, Any]
) -> tuple[str, str | None] | None:
    """The provisioning state an event moves a phone to, if any."""
    if service == "dhcp" and kind == "ack" and detail.get("url"):
        return "url-sent", f"DHCP option {detail.get('url_options')}"
    if service == "pnp" and kind == "notify":
        return "url-sent", "SIP PnP NOTIFY"
    if kind == "fetch":
        name = str(detail.get("file", ""))
        if detail.get("result") == "forbidden":
            return None  # another address asked for this phone's file: not the phone's doing
        if detail.get("result") != "ok":
            return "failed", f"{detail.get('protocol', service)} {name}: {detail.get('result')}"
        if detail.get("file_kind") == "common":
            return "fetched-common", name
        return "fetched-own", name
    if service == "action" and kind == "registration-succeeded":
        return "registered", str(detail.get("line") or detail.get("active_user") or "")
    if service == "action" and kind == "registration-failed":
        return "registration-failed", str(detail.get("line") or detail.get("active_user") or "")
    return None


def by_the_phone(kind: str, detail: Mapping[str, Any]) -> bool:
    """False for an event about a phone that the phone did not cause: its per-MAC
    file refused to another address."""
    return not (kind == "fetch" and detail.get("result") == "forbidden")


def _moves(current: str, new: str) -> bool:
    """Successes only move a phone forward; a failure is shown (unless the phone
    has registered) until a later success replaces it."""
    if new == "failed":
        return current != "registered"
    return current == "failed" or STATES[new] >= STATES.get(current, 0)


class _Merged:
    """What one flush learned about one phone."""

    __slots__ = ("event", "facts", "files", "first", "last", "state", "touched")

    def __init__(self, when: float) -> None:
        self.first = when
        self.last = when
        self.touched = False  # an event by the phone itself: last_seen/last_event move
        self.event: str | None = None
        self.files = 0
        self.state: tuple[str, str | None] | None = None
        self.facts: dict[str, str] = {}


class Registry:
    """Per-phone records and their timelines, in SQLite under state_dir.

    A write that fails (disk full, read-only, I/O error) is reported to HEALTH
    and the events wait in memory (at most `max_queued`, the oldest dropped
    first) for the next flush; it never raises. While `paused()` is true (the
    disk reserve was released for DHCP leases) nothing is written."""

    def __init__(
        self,
        state_dir: Path,
        budget: RegistryConfig | None = None,
        *,
        paused: Callable[[], bool] | None = None,
    ) -> None:
        self.budget = budget or RegistryConfig()
        self.state_dir = state_dir
        self._conn, self.storage = open_state(
            state_dir,
            "registry",
            SCHEMA,
            memory="phone history is kept in memory only (restart netboot once it can be written)",
        )
        self._queue: list[tuple[str, float, str, str, dict[str, Any], dict[str, Any]]] = []
        self._states: dict[str, str] | None = None
        self._paused = paused or (lambda: False)
        self._touched: set[str] = set()  # MACs with new events since the last prune
        self.more = False  # the last prune stopped at its batch: call again
        self.dropped = 0
        self._new_phones = 0  # rows and events written since the last prune
        self._new_events = 0

    def close(self) -> None:
        self.flush()
        self._conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The registry's own connection (the status page reads it when the
        registry lives in memory)."""
        return self._conn

    def record(
        self,
        mac: str,
        service: str,
        kind: str,
        detail: Mapping[str, Any] | None = None,
        *,
        now: float | None = None,
        **facts: Any,
    ) -> None:
        """Queue one event about one phone; `facts` (ip=, vendor=, model=, ...)
        update its row. Cheap: nothing is written until `flush`."""
        unknown = set(facts) - set(FACTS)
        if unknown:
            raise TypeError(f"unknown phone facts: {sorted(unknown)}")
        when = time.time() if now is None else now
        self._queue.append((mac, when, service, kind, dict(detail or {}), facts))
        if len(self._queue) > self.budget.max_queued:
            self._drop(len(self._queue) - self.budget.max_queued + self.budget.max_queued // 10)

    def _drop(self, count: int) -> None:
        del self._queue[:count]
        self.dropped += count
        PRUNED.labels("queued").inc(count)
        _budget_log.warning(
            "queued",
            f"registry: {count} event(s) dropped: more than registry.max_queued = "
            f"{self.budget.max_queued} waited for the disk",
            time.monotonic(),
        )

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self, limit: int | None = None) -> int:
        """Write every queued event (the oldest `limit` of them) in one
        transaction; returns how many (0 when the write failed or is paused).

        Events go in with one executemany; each phone touched gets one upsert
        carrying its merged facts and its new state (worked out here, against
        a cache of each phone's state: this registry is the only writer)."""
        if not self._queue or self._paused():
            return 0
        if limit is None or limit >= len(self._queue):
            batch, self._queue = self._queue, []
        else:
            batch, self._queue = self._queue[:limit], self._queue[limit:]
        try:
            self._write(batch)
        except (sqlite3.Error, OSError) as exc:
            self._states = None
            self._queue[:0] = batch  # kept for the next flush, within max_queued
            if len(self._queue) > self.budget.max_queued:
                self._drop(len(self._queue) - self.budget.max_queued)
            HEALTH.failed(
                "registry",
                classify("registry", exc, self.state_dir),
                f"{len(self._queue)} event(s) wait in memory",
            )
            return 0
        if "registry" in HEALTH.problems and self.storage == "disk":
            HEALTH.ok("registry")
        self._touched.update(row[0] for row in batch)
        return len(batch)

    def _write(
        self, batch: list[tuple[str, float, str, str, dict[str, Any], dict[str, Any]]]
    ) -> None:
        if self._states is None:
            self._states = dict(self._conn.execute("SELECT mac, state FROM phones").fetchall())
        states = self._states
        changes: dict[str, str] = {}  # applied to the cache once the transaction commits
        rows: list[tuple[str, float, str, str, str]] = []
        merged: dict[str, _Merged] = {}
        for mac, when, service, kind, detail, facts in batch:
            rows.append((mac, when, service, kind, json.dumps(detail, default=str, sort_keys=True)))
            m = merged.get(mac)
            if m is None:
                m = merged[mac] = _Merged(when)
            m.first = min(m.first, when)
            if not by_the_phone(kind, detail):
                if m.event is None:  # only for a row created by this event
                    m.event = f"{service} {kind}"
            elif not m.touched or when >= m.last:
                m.last = when if not m.touched else max(m.last, when)
                m.event = f"{service} {kind}"
                m.touched = True
            for key, value in facts.items():
                if value not in (None, ""):
                    m.facts[key] = str(value)
            if kind == "fetch" and detail.get("result") == "ok":
                m.files += 1
            moved = state_after(kind, service, detail)
            if moved is not None:
                current = changes.get(mac) or states.get(mac, "seen")
                if _moves(current, moved[0]):
                    changes[mac] = moved[0]
                    m.state = moved
        upserts = []
        for mac, m in merged.items():
            state, why = m.state or (None, None)
            values = tuple(m.facts.get(k) for k in FACTS)
            upserts.append(
                (
                    mac,
                    *values,
                    state or "seen",
                    why,
                    m.first,
                    m.last,
                    m.event,
                    m.files,
                    state,
                    m.touched,
                )
            )
        new = [mac for mac in merged if mac not in states]
        with _transaction(self._conn) as cur:
            cur.executemany(
                "INSERT INTO events (mac, ts, service, kind, detail) VALUES (?, ?, ?, ?, ?)", rows
            )
            cur.executemany(_UPSERT, upserts)
        for mac in new:
            states.setdefault(mac, "seen")
        states.update(changes)
        self._new_phones += len(new)
        self._new_events += len(rows)

    @property
    def needs_prune(self) -> bool:
        """A flood is filling the tables faster than the minutely prune would
        catch: prune now (new phones past a quarter of max_unknown, or new
        events past a tenth of max_events)."""
        b = self.budget
        return (
            self._new_phones >= max(100, b.max_unknown // 4)
            or self._new_events >= max(1000, b.max_events // 10)
            or self.more
        )

    # ------------------------------------------------------------ budgets

    def prune(
        self, now: float, keep: Collection[str] = (), batch: int = PRUNE_BATCH
    ) -> dict[str, int]:
        """Apply the budgets (registry.*): returns how many rows each removed.
        At most about `batch` rows go per call, so a call never holds the
        event loop long; `more` is then true and the caller calls again.

        `keep`: MACs that hold or held a DHCP lease (never "unknown"). Unknown
        MACs (state `seen`, no lease) go after `unknown_max_age` and beyond
        `max_unknown`; every phone after `retention_days` unseen and beyond
        `max_phones` (unknown first, then the least recently seen); events
        beyond `max_events_per_phone` per phone, after `retention_days`, and
        beyond `max_events` overall, oldest first. Never raises: a failure is
        reported like a failed flush."""
        self.more = False
        if self._paused():
            return {}
        self._new_phones = self._new_events = 0
        b = self.budget
        removed: dict[str, int] = {}
        keep_set = set(keep)
        phones = max(1, batch * PRUNE_PHONES // PRUNE_BATCH)
        touched, self._touched = self._touched, set()
        try:
            with _transaction(self._conn) as cur:
                # One phone's events beyond its budget (an INFORM flood from one MAC).
                n = 0
                for mac in touched:
                    n += cur.execute(
                        "DELETE FROM events WHERE mac = ?1 AND id <= (SELECT id FROM events "
                        "WHERE mac = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                        (mac, b.max_events_per_phone),
                    ).rowcount
                removed["phone_events"] = n
                cutoff = now - b.retention_days * 86400
                removed["age_events"] = cur.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE ts < ? LIMIT ?)",
                    (cutoff, batch),
                ).rowcount
                gone: list[str] = [
                    r[0]
                    for r in cur.execute(
                        "SELECT mac FROM phones WHERE last_seen < ? LIMIT ?", (cutoff, phones)
                    )
                ]
                removed["age_phones"] = self._forget(cur, gone)
                # Unknown MACs: heard (a DISCOVER, an LLDP frame), never leased or provisioned.
                unknown = [
                    (r[0], r[1])
                    for r in cur.execute(
                        "SELECT mac, last_seen FROM phones WHERE state = 'seen' "
                        "ORDER BY last_seen DESC, mac"
                    )
                    if r[0] not in keep_set
                ]
                stale = [
                    mac
                    for i, (mac, seen) in enumerate(unknown)
                    if seen < now - b.unknown_max_age or i >= b.max_unknown
                ]
                removed["unknown"] = self._forget(cur, stale[-phones:])  # the oldest first
                self.more |= len(stale) > phones
                total = int(cur.execute("SELECT count(*) FROM phones").fetchone()[0])
                if total > b.max_phones:
                    over = [
                        r[0]
                        for r in cur.execute(
                            "SELECT mac FROM phones ORDER BY (state = 'seen') DESC, last_seen, mac "
                            "LIMIT ?",
                            (min(total - b.max_phones, phones),),
                        )
                    ]
                    removed["phones"] = self._forget(cur, over)
                events = int(cur.execute("SELECT count(*) FROM events").fetchone()[0])
                if events > b.max_events:
                    removed["events"] = cur.execute(
                        "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id "
                        "LIMIT 1 OFFSET ?)",
                        (min(events - b.max_events, batch) - 1,),
                    ).rowcount
        except (sqlite3.Error, OSError) as exc:
            self._states = None
            self._touched |= touched
            HEALTH.failed(
                "registry", classify("registry", exc, self.state_dir), "old entries are not pruned"
            )
            return {}
        removed = {k: v for k, v in removed.items() if v}
        self.more |= any(removed.get(k, 0) >= batch for k in ("age_events", "events")) or any(
            removed.get(k, 0) >= phones for k in ("age_phones", "phones")
        )
        for reason, count in removed.items():
            PRUNED.labels(reason).inc(count)
            _budget_log.warning(
                reason,
                f"registry: budget reached ({_BUDGET_KEYS[reason]}): removed {count} "
                f"{'phone(s)' if reason in ('unknown', 'phones', 'age_phones') else 'event(s)'}",
                now,
            )
        return removed

    def _forget(self, cur: sqlite3.Cursor, macs: list[str]) -> int:
        """Delete phones and their events; returns how many phones."""
        if not macs:
            return 0
        cur.executemany("DELETE FROM events WHERE mac = ?", [(m,) for m in macs])
        cur.executemany("DELETE FROM phones WHERE mac = ?", [(m,) for m in macs])
        if self._states is not None:
            for mac in macs:
                self._states.pop(mac, None)
        return len(macs)

    def reconcile(self, leases: Iterable[Lease], now: float | None = None) -> int:
        """Record an `ack` for every bound lease whose phone has no `ack` event
        since the lease was written (the process was killed between the lease's
        fsync and the registry's next flush); returns how many."""
        self.flush()
        missing = 0
        try:
            last_ack: dict[str, float] = dict(
                self._conn.execute(
                    "SELECT mac, max(ts) FROM events WHERE service = 'dhcp' AND kind = 'ack' "
                    "GROUP BY mac"
                ).fetchall()
            )
        except sqlite3.Error:
            return 0
        for lease in leases:
            if lease.state != "bound":
                continue
            seen = last_ack.get(lease.mac)
            if seen is None or seen < lease.updated - 1.0:
                self.record(
                    lease.mac,
                    "dhcp",
                    "ack",
                    {"ip": str(lease.address), "recovered": "from the lease store"},
                    now=lease.updated,
                    ip=str(lease.address),
                    hostname=lease.hostname or None,
                )
                missing += 1
        self.flush()
        return missing

    # ------------------------------------------------------------ reading

    def phones(self) -> list[Phone]:
        self.flush()
        return read_phones(self._conn)

    def phone(self, mac: str) -> Phone | None:
        self.flush()
        return read_phone(self._conn, mac)

    def timeline(self, mac: str) -> list[Event]:
        self.flush()
        return read_timeline(self._conn, mac)


class RegistryReader:
    """The registry as `netboot phones` reads it, from another process: never
    writes, so it works on a read-only state_dir too (and shows nothing when
    there is no database yet)."""

    def __init__(self, state_dir: Path) -> None:
        self._conn = open_reader(state_dir)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def phones(self) -> list[Phone]:
        return self._read(lambda c: read_phones(c), [])

    def phone(self, mac: str) -> Phone | None:
        return self._read(lambda c: read_phone(c, mac), None)

    def timeline(self, mac: str) -> list[Event]:
        return self._read(lambda c: read_timeline(c, mac), [])

    def _read(self, fn: Callable[[sqlite3.Connection], _T], empty: _T) -> _T:
        if self._conn is None:
            return empty
        try:
            return fn(self._conn)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return empty
            raise


def open_reader(state_dir: Path) -> sqlite3.Connection | None:
    """A read-only connection to the database (None when there is none): read
    only in WAL mode, or, when even that cannot be set up on a read-only file
    system (no -shm file), immutable."""
    path = state_dir / DB_NAME
    if not path.exists():
        return None
    for query in ("mode=ro", "mode=ro&immutable=1"):
        conn = sqlite3.connect(f"file:{path}?{query}", uri=True, timeout=10.0)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            conn.close()
            continue
        return conn
    return None


# Parameters: mac, the FACTS, state, state_detail, first_seen, last_seen,
# last_event, files, then the new state or NULL when it did not move, then
# whether the phone itself did something (else last_seen/last_event stay).
_FACT_UPDATES = ", ".join(f"{k} = coalesce(excluded.{k}, {k})" for k in FACTS)
_MOVED = f"?{len(FACTS) + 8}"
_TOUCHED = f"?{len(FACTS) + 9}"
_UPSERT = (
    f"INSERT INTO phones (mac, {', '.join(FACTS)}, state, state_detail, first_seen, last_seen, last_event, files) "
    f"VALUES (?, {', '.join('?' for _ in FACTS)}, ?, ?, ?, ?, ?, ?) "
    f"ON CONFLICT(mac) DO UPDATE SET {_FACT_UPDATES}, "
    f"last_seen = CASE WHEN {_TOUCHED} THEN max(last_seen, excluded.last_seen) ELSE last_seen END, "
    f"last_event = CASE WHEN {_TOUCHED} THEN excluded.last_event ELSE last_event END, "
    "files = files + excluded.files, "
    f"state = CASE WHEN {_MOVED} IS NULL THEN state ELSE excluded.state END, "
    f"state_detail = CASE WHEN {_MOVED} IS NULL THEN state_detail ELSE excluded.state_detail END"
)

_PHONE_COLUMNS = (
    "mac, ip, vendor, model, firmware, hostname, vendor_class, url, state, state_detail, "
    "first_seen, last_seen, last_event, files"
)


def read_phones(conn: sqlite3.Connection) -> list[Phone]:
    rows = conn.execute(f"SELECT {_PHONE_COLUMNS} FROM phones ORDER BY mac").fetchall()
    return [Phone(*row) for row in rows]


def read_phone(conn: sqlite3.Connection, mac: str) -> Phone | None:
    row = conn.execute(f"SELECT {_PHONE_COLUMNS} FROM phones WHERE mac = ?", (mac,)).fetchone()
    return Phone(*row) if row else None


def read_timeline(conn: sqlite3.Connection, mac: str) -> list[Event]:
    rows = conn.execute(
        "SELECT mac, ts, service, kind, detail FROM events WHERE mac = ? ORDER BY id", (mac,)
    ).fetchall()
    return [Event(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]
