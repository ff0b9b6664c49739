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

import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


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
    """Per-phone records and their timelines, in SQLite under state_dir."""

    def __init__(self, state_dir: Path) -> None:
        self._conn = open_database(state_dir)
        self._conn.executescript(SCHEMA)
        self._queue: list[tuple[str, float, str, str, dict[str, Any], dict[str, Any]]] = []
        self._states: dict[str, str] | None = None

    def close(self) -> None:
        self.flush()
        self._conn.close()

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

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self, limit: int | None = None) -> int:
        """Write every queued event (the oldest `limit` of them) in one
        transaction; returns how many.

        Events go in with one executemany; each phone touched gets one upsert
        carrying its merged facts and its new state (worked out here, against
        a cache of each phone's state: this registry is the only writer)."""
        if not self._queue:
            return 0
        if limit is None or limit >= len(self._queue):
            batch, self._queue = self._queue, []
        else:
            batch, self._queue = self._queue[:limit], self._queue[limit:]
        if self._states is None:
            self._states = dict(self._conn.execute("SELECT mac, state FROM phones").fetchall())
        states = self._states
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
                current = states.get(mac, "seen")
                if _moves(current, moved[0]):
                    states[mac] = moved[0]
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
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            cur.executemany(
                "INSERT INTO events (mac, ts, service, kind, detail) VALUES (?, ?, ?, ?, ?)", rows
            )
            cur.executemany(_UPSERT, upserts)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            self._states = None
            raise
        return len(batch)

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
