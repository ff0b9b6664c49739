"""One way to open the appliance's SQLite file, for writing or for reading.

Every store (leases, registry, render versions) lives in `state_dir/netboot.db`:
`open_database` opens it with the project's pragmas (WAL, a busy timeout),
`open_state` opens a store's tables and falls back to the file read-only or to
memory when `state_dir` cannot be written (reported once to HEALTH),
`open_reader` is the read-only connection of the CLI commands and the status
page, and `transaction` is the one BEGIN IMMEDIATE ... COMMIT block whose
ROLLBACK after a failed COMMIT cannot itself raise.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from netboot.statedisk import HEALTH, StateWriteError, classify

DB_NAME = "netboot.db"

_T = TypeVar("_T")


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


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
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


def _read_only_fs(path: Path) -> bool:
    """Is `path` (or its nearest existing parent) on a read-only mount?"""
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return bool(os.statvfs(candidate).f_flag & os.ST_RDONLY)
            except OSError:
                return False
    return False


def _connect_read_only(path: Path, *, shared: bool) -> sqlite3.Connection | None:
    """`path` opened read only in WAL mode or, when even that cannot be set up
    on a read-only file system (no -shm file), immutable; None when neither."""
    for query in ("mode=ro", "mode=ro&immutable=1"):
        try:
            if shared:
                conn = sqlite3.connect(
                    f"file:{path}?{query}",
                    uri=True,
                    timeout=10.0,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                conn = sqlite3.connect(f"file:{path}?{query}", uri=True, timeout=10.0)
        except (sqlite3.Error, OSError):
            continue
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error:
            conn.close()
            continue
        return conn
    return None


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
    if read_only is not None and path.exists():
        reader = _connect_read_only(path, shared=True)
        if reader is not None:
            if report:
                HEALTH.failed(store, failure, read_only)
            return reader, "read-only"
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.executescript(schema)
    if report:
        HEALTH.failed(store, failure, memory)
    return conn, "memory"


def open_reader(state_dir: Path) -> sqlite3.Connection | None:
    """A read-only connection to the database (None when there is none): read
    only in WAL mode, or, when even that cannot be set up on a read-only file
    system (no -shm file), immutable."""
    path = state_dir / DB_NAME
    if not path.exists():
        return None
    return _connect_read_only(path, shared=False)


def missing_table(exc: sqlite3.OperationalError) -> bool:
    """The error of reading a store that was never created (a fresh state_dir)."""
    return "no such table" in str(exc)


def tolerant(fn: Callable[[sqlite3.Connection], _T], conn: sqlite3.Connection, empty: _T) -> _T:
    """fn(conn), or `empty` when its table does not exist yet."""
    try:
        return fn(conn)
    except sqlite3.OperationalError as exc:
        if missing_table(exc):
            return empty
        raise
