"""The phone registry's SQLite store: per-phone rows and their timelines.

Two tables in the state database: `phones` (one row per MAC: the latest facts,
the provisioning state and its reason, first/last seen, the last event, files
fetched) and `events` (the timelines: service, kind and the event's fields as
JSON, netboot.events). The in-memory side (netboot.registry) queues events and
works out each phone's new state; this module only writes a batch, applies the
budgets and reads (the status page and `netboot phones` read with the same
functions, on their own read-only connections).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from netboot.config import RegistryConfig
from netboot.events import FACTS, FACTS_KEY, Event, decode, describe, to_json
from netboot.state.db import open_reader, open_state, tolerant, transaction

_T = TypeVar("_T")

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
CREATE INDEX IF NOT EXISTS phones_seen ON phones (last_seen, mac);
CREATE INDEX IF NOT EXISTS phones_state ON phones (state, last_seen, mac);
"""


@dataclass(frozen=True)
class TimelineEntry:
    """One stored event as a timeline shows it: `detail` is what the event
    shows (its JSON without the facts kept beside it), `event()` the typed event."""

    mac: str
    when: float
    service: str
    kind: str
    detail: Mapping[str, Any]
    facts: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return describe(self.service, self.kind, self.detail)

    def event(self) -> Event | None:
        """The typed event (None for a kind no event class describes)."""
        stored = dict(self.detail)
        if self.facts:
            stored[FACTS_KEY] = dict(self.facts)
        return decode(self.mac, self.service, self.kind, stored)


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


@dataclass
class PhoneUpdate:
    """What one flush learned about one phone (one upsert)."""

    first: float
    last: float
    touched: bool = False  # an event by the phone itself: last_seen/last_event move
    event: str | None = None  # "service kind" of its latest event
    files: int = 0
    state: tuple[str, str | None] | None = None  # the state it moved to, and why
    facts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pruned:
    """What one prune removed, per budget, and the phones it forgot."""

    removed: dict[str, int]
    forgotten: list[str]
    more: bool  # it stopped at its batch: call again
    events: int = 0  # events it removed, for whatever budget
    unknown_more: bool = False  # the unknown MACs' budget stopped at its batch


def encode(event: Event) -> str:
    """The `events.detail` column of `event`."""
    return to_json(event.stored())


class RegistryStore:
    """The registry's tables in the state database (or in memory when it
    cannot be written: `storage`). Every method may raise sqlite3.Error or
    OSError; the caller (netboot.registry) decides what that means."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.conn, self.storage = open_state(
            state_dir,
            "registry",
            SCHEMA,
            memory="phone history is kept in memory only (restart netboot once it can be written)",
        )
        if self.storage == "disk":
            # No fsync per registry commit (WAL, synchronous=NORMAL): the next
            # lease commit's fsync (synchronous=FULL, same WAL) makes it
            # durable, and what a power cut takes between the two is an ack
            # event `Registry.reconcile` writes back from the lease store.
            self.conn.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        self.conn.close()

    def totals(self) -> tuple[int, int]:
        """How many phones and events the tables hold."""
        phones = int(self.conn.execute("SELECT count(*) FROM phones").fetchone()[0])
        events = int(self.conn.execute("SELECT count(*) FROM events").fetchone()[0])
        return phones, events

    def states_of(self, macs: Collection[str]) -> dict[str, str]:
        """The state of each of `macs` that has a row (a few statements of
        IN_CHUNK MACs each, on the primary key)."""
        found: dict[str, str] = {}
        for chunk in _chunks(macs):
            found.update(
                self.conn.execute(
                    f"SELECT mac, state FROM phones WHERE mac IN ({_marks(len(chunk))})", chunk
                )
            )
        return found

    def write(self, events: list[tuple[float, Event]], updates: Mapping[str, PhoneUpdate]) -> None:
        """The events and one upsert per phone, in one transaction."""
        rows = [(e.mac, when, e.service, e.kind, encode(e)) for when, e in events]
        upserts = []
        for mac, m in updates.items():
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
        with transaction(self.conn) as cur:
            cur.executemany(
                "INSERT INTO events (mac, ts, service, kind, detail) VALUES (?, ?, ?, ?, ?)", rows
            )
            cur.executemany(_UPSERT, upserts)

    def prune(
        self,
        now: float,
        budget: RegistryConfig,
        *,
        keep: Collection[str],
        touched: Collection[str],
        batch: int,
        phones: int,
        total_phones: int | None = None,
        total_events: int | None = None,
        age: bool = True,
        unknown: bool = True,
    ) -> Pruned:
        """Apply the budgets (registry.*, see netboot.registry.Registry.prune),
        at most about `batch` events and `phones` phones per budget.

        `keep`: looked up once per unknown MAC, so a set or a dict's keys.
        `touched`: the phones with new events since the last prune (only
        those may be over max_events_per_phone: one grouped count on the
        events_mac index finds them).
        `total_phones`/`total_events`: the tables' sizes when the caller knows
        them (else counted). `age` and `unknown`: also the budgets by age and
        of the unknown MACs, which read whole tables; without them a prune (a
        flood filling the tables) costs what it removes, not what they hold."""
        b = budget
        removed: dict[str, int] = {}
        forgotten: list[str] = []
        more = unknown_more = False
        events_gone = 0

        def forget(cur: sqlite3.Cursor, macs: list[str]) -> int:
            nonlocal events_gone
            if not macs:
                return 0
            cur.executemany("DELETE FROM events WHERE mac = ?", [(m,) for m in macs])
            events_gone += max(cur.rowcount, 0)
            cur.executemany("DELETE FROM phones WHERE mac = ?", [(m,) for m in macs])
            forgotten.extend(macs)
            return len(macs)

        with transaction(self.conn) as cur:
            # One phone's events beyond its budget (an INFORM flood from one MAC).
            over: list[str] = []
            for chunk in _chunks(touched):
                over += [
                    r[0]
                    for r in cur.execute(
                        f"SELECT mac FROM events WHERE mac IN ({_marks(len(chunk))}) "
                        "GROUP BY mac HAVING count(*) > ?",
                        (*chunk, b.max_events_per_phone),
                    )
                ]
            n = 0
            for mac in over:
                n += cur.execute(
                    "DELETE FROM events WHERE mac = ?1 AND id <= (SELECT id FROM events "
                    "WHERE mac = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                    (mac, b.max_events_per_phone),
                ).rowcount
            removed["phone_events"] = n
            if age:
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
                removed["age_phones"] = forget(cur, gone)
            if unknown:
                # Unknown MACs: heard (a DISCOVER, an LLDP frame), never leased or provisioned.
                never_leased = [
                    (r[0], r[1])
                    for r in cur.execute(
                        "SELECT mac, last_seen FROM phones INDEXED BY phones_state "
                        "WHERE state = 'seen' ORDER BY last_seen DESC, mac"
                    )
                    if r[0] not in keep
                ]
                stale = [
                    mac
                    for i, (mac, seen) in enumerate(never_leased)
                    if seen < now - b.unknown_max_age or i >= b.max_unknown
                ]
                removed["unknown"] = forget(cur, stale[-phones:])  # the oldest first
                unknown_more = len(stale) > phones
            if total_phones is None:
                total = int(cur.execute("SELECT count(*) FROM phones").fetchone()[0])
            else:
                total = total_phones - len(forgotten)
            if total > b.max_phones:
                # Unknown first, then the least recently seen (phones_seen index).
                want = min(total - b.max_phones, phones)
                oldest = [
                    r[0]
                    for r in cur.execute(
                        "SELECT mac FROM phones INDEXED BY phones_state WHERE state = 'seen' "
                        "ORDER BY last_seen, mac LIMIT ?",
                        (want,),
                    )
                ]
                if len(oldest) < want:
                    oldest += [
                        r[0]
                        for r in cur.execute(
                            "SELECT mac FROM phones INDEXED BY phones_seen WHERE state != 'seen' "
                            "ORDER BY last_seen, mac LIMIT ?",
                            (want - len(oldest),),
                        )
                    ]
                removed["phones"] = forget(cur, oldest)
            if total_events is None:
                events = int(cur.execute("SELECT count(*) FROM events").fetchone()[0])
            else:
                events = total_events - n - removed.get("age_events", 0) - events_gone
            if events > b.max_events:
                removed["events"] = cur.execute(
                    "DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id "
                    "LIMIT 1 OFFSET ?)",
                    (min(events - b.max_events, batch) - 1,),
                ).rowcount
        events_gone += n + removed.get("age_events", 0) + removed.get("events", 0)
        removed = {k: v for k, v in removed.items() if v}
        more |= unknown_more
        more |= any(removed.get(k, 0) >= batch for k in ("age_events", "events")) or any(
            removed.get(k, 0) >= phones for k in ("age_phones", "phones")
        )
        return Pruned(removed, forgotten, more, events_gone, unknown_more)

    def acks(self) -> Iterator[tuple[str, float]]:
        """The MAC and time of every DHCP ACK event, row by row (no list of
        every phone at once: the peak would stay in RSS)."""
        yield from self.conn.execute(
            "SELECT mac, ts FROM events WHERE service = 'dhcp' AND kind = 'ack'"
        )


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
        return self._read(read_phones, [])

    def phone(self, mac: str) -> Phone | None:
        return self._read(lambda c: read_phone(c, mac), None)

    def timeline(self, mac: str) -> list[TimelineEntry]:
        return self._read(lambda c: read_timeline(c, mac), [])

    def _read(self, fn: Callable[[sqlite3.Connection], _T], empty: _T) -> _T:
        if self._conn is None:
            return empty
        return tolerant(fn, self._conn, empty)


IN_CHUNK = 500  # MACs per `IN (...)` list, well under SQLite's variable limit


def _chunks(macs: Collection[str]) -> Iterator[list[str]]:
    items = list(macs)
    for start in range(0, len(items), IN_CHUNK):
        yield items[start : start + IN_CHUNK]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


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


def read_timeline(
    conn: sqlite3.Connection, mac: str, limit: int | None = None
) -> list[TimelineEntry]:
    """The phone's events, oldest first (only the latest `limit` when given)."""
    if limit is None:
        rows = conn.execute(
            "SELECT mac, ts, service, kind, detail FROM events WHERE mac = ? ORDER BY id", (mac,)
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT mac, ts, service, kind, detail FROM events WHERE mac = ? "
            "ORDER BY id DESC LIMIT ?",
            (mac, limit),
        ).fetchall()
        rows.reverse()
    return [_entry(*row) for row in rows]


def _entry(mac: str, ts: float, service: str, kind: str, detail: str) -> TimelineEntry:
    stored = json.loads(detail)
    if not isinstance(stored, dict):
        return TimelineEntry(mac, ts, service, kind, {"detail": stored})
    facts = stored.pop(FACTS_KEY, None)
    return TimelineEntry(mac, ts, service, kind, stored, facts if isinstance(facts, dict) else {})


def read_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """How many phones are in each state."""
    return dict(conn.execute("SELECT state, count(*) FROM phones GROUP BY state").fetchall())
