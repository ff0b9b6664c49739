"""Rendered config files' versions: file name -> (content hash, version).

A phone applies a file only if its Version is higher than the one it runs, so
each rendered file name has a version that goes up by one whenever the
rendered content changes and stays put otherwise (netboot/provisioning/render.py).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from netboot.state.db import open_state, transaction
from netboot.statedisk import HEALTH, StateWriteError, classify


class VersionStore:
    """File name -> (content hash, version) in the state database."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS config_versions ("
        "name TEXT PRIMARY KEY, hash TEXT NOT NULL, version INTEGER NOT NULL, changed REAL)"
    )

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._conn, storage = open_state(
            state_dir,
            "versions",
            self.SCHEMA,
            read_only="config file versions are read from disk; new ones are counted in memory",
            memory="config file versions are counted in memory only",
        )
        self.storage = storage
        self._cache: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def version(self, name: str, digest: str, now: float) -> int:
        """The version of `name` for this content: unchanged, or one higher.

        When the new version cannot be written (disk full, read-only), it is
        kept in memory and the file is served anyway; HEALTH says so."""
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == digest:
                return cached[1]
            try:
                version = self._store(name, digest, now)
            except (sqlite3.Error, OSError, StateWriteError) as exc:
                try:
                    row = self._conn.execute(
                        "SELECT hash, version FROM config_versions WHERE name = ?", (name,)
                    ).fetchone()
                except sqlite3.Error:
                    row = None
                base = cached[1] if cached is not None else (int(row[1]) if row else 0)
                same = row is not None and row[0] == digest and cached is None
                version = base if same else base + 1
                HEALTH.failed(
                    "versions",
                    classify("versions", exc, self.state_dir),
                    f"{name} version {version} is kept in memory only",
                )
            else:
                if "versions" in HEALTH.problems and self.storage == "disk":
                    HEALTH.ok("versions")
            self._cache[name] = (digest, version)
            return version

    def _store(self, name: str, digest: str, now: float) -> int:
        if self.storage == "read-only":
            raise StateWriteError("versions", "read-only", "state_dir cannot be written")
        with transaction(self._conn) as cur:
            row = cur.execute(
                "SELECT hash, version FROM config_versions WHERE name = ?", (name,)
            ).fetchone()
            if row is None:
                version = 1
                cur.execute(
                    "INSERT INTO config_versions VALUES (?, ?, ?, ?)",
                    (name, digest, version, now),
                )
            elif row[0] != digest:
                version = int(row[1]) + 1
                cur.execute(
                    "UPDATE config_versions SET hash = ?, version = ?, changed = ? WHERE name = ?",
                    (digest, version, now, name),
                )
            else:
                version = int(row[1])
        return version
