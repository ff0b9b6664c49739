"""When `state_dir` cannot be written: disk full, read-only, I/O error.

The registry, the DHCP leases and the rendered files' versions all live in one
SQLite file under `state_dir`. A write to it can fail; the services must not.

- `StateHealth` (one per process, `HEALTH`) is told about every failed and
  every successful write, per store ("leases", "registry", "versions"): it
  logs a store's failure once (then at most once a minute, with a count), says
  so again when writing works again, counts failures in
  `netboot_state_write_failures_total{store,reason}`, keeps
  `netboot_state_writable{store}` at 0 while a store cannot write, and gives
  the status page one line per failing store.
- `DiskReserve` keeps a preallocated file (`state_dir/reserve`, size
  `appliance.state_reserve_kib`) that is deleted the moment a lease commit
  fails for lack of space, so the lease commit can be retried into the freed
  space and the ACK can go out. While the reserve is released, the registry
  does not write (history must not eat the space leases need); the reserve is
  made again once the file system has room for it, and the registry resumes.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import Counter, Gauge

from netboot import metrics
from netboot.ratelog import RateLimitedLog

log = logging.getLogger("netboot.state")

RESERVE_NAME = "reserve"
STORES = ("leases", "registry", "versions")
REASONS = ("disk-full", "read-only", "io-error", "other")

WRITE_FAILURES = Counter(
    "netboot_state_write_failures_total",
    "Writes to state_dir that failed, by store and reason",
    ["store", "reason"],
    registry=metrics.REGISTRY,
)
WRITABLE = Gauge(
    "netboot_state_writable",
    "1 while a store under state_dir can be written, 0 while its writes fail",
    ["store"],
    registry=metrics.REGISTRY,
)
RESERVE_RELEASED = Gauge(
    "netboot_state_reserve_released",
    "1 while the disk reserve is given up for leases (the registry is not written)",
    registry=metrics.REGISTRY,
)


class StateWriteError(Exception):
    """A write to state_dir failed; `reason` is one of REASONS."""

    def __init__(self, store: str, reason: str, message: str) -> None:
        super().__init__(message)
        self.store = store
        self.reason = reason


def reason_of(exc: BaseException) -> str:
    """disk-full | read-only | io-error | other, for a sqlite3 or OS error."""
    if isinstance(exc, StateWriteError):
        return exc.reason
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        text = str(exc).lower()
        if name.startswith("SQLITE_FULL") or "disk is full" in text:
            return "disk-full"
        if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
            return "read-only"
        if name.startswith(("SQLITE_IOERR", "SQLITE_CANTOPEN")) or "i/o error" in text:
            return "io-error"
        return "other"
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "disk-full"
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            return "read-only"
        return "io-error"
    return "other"


def classify(store: str, exc: BaseException, path: Path) -> StateWriteError:
    """`exc` as a StateWriteError whose reason also looks at the file system
    under `path`: SQLite reports a full disk while opening (no room for the
    -shm file) as a mere "disk I/O error"."""
    if isinstance(exc, StateWriteError):
        return exc
    reason = reason_of(exc)
    if reason in ("io-error", "other"):
        try:
            st = os.statvfs(path)
        except OSError:
            pass
        else:
            if st.f_flag & os.ST_RDONLY:
                reason = "read-only"
            elif st.f_bavail * st.f_frsize < 64 * 1024:
                reason = "disk-full"
    return StateWriteError(store, reason, str(exc))


_WORDS = {
    "disk-full": "the disk is full",
    "read-only": "state_dir is read-only",
    "io-error": "I/O error",
    "other": "error",
}


@dataclass
class Problem:
    reason: str
    message: str
    first: float
    last: float
    count: int = 1


class StateHealth:
    """Which stores under state_dir cannot be written, and since when."""

    def __init__(self) -> None:
        self.problems: dict[str, Problem] = {}
        self.notes: dict[str, str] = {}
        self._log = RateLimitedLog(log, every=60.0)
        for store in STORES:
            WRITABLE.labels(store).set(1)
            for reason in REASONS:
                WRITE_FAILURES.labels(store, reason)

    def failed(
        self, store: str, exc: BaseException, what: str, now: float | None = None
    ) -> Problem:
        """A write of `store` failed with `exc`; `what` says what was lost or held."""
        when = time.time() if now is None else now
        reason = reason_of(exc)
        WRITE_FAILURES.labels(store, reason).inc()
        WRITABLE.labels(store).set(0)
        message = f"{store}: cannot write to state_dir ({_WORDS[reason]}: {exc}); {what}"
        problem = self.problems.get(store)
        if problem is None:
            problem = self.problems[store] = Problem(reason, message, when, when)
        else:
            problem.reason, problem.message, problem.last = reason, message, when
            problem.count += 1
        # DHCP without durable leases is an error; lost history a warning.
        level = logging.ERROR if store == "leases" else logging.WARNING
        self._log.log(level, store, message, when)
        return problem

    def ok(self, store: str) -> None:
        """A write of `store` worked."""
        problem = self.problems.pop(store, None)
        WRITABLE.labels(store).set(1)
        if problem is not None:
            log.warning(
                "%s: writing to state_dir again (%d failed write(s) since %s)",
                store,
                problem.count,
                time.strftime("%H:%M:%S", time.localtime(problem.first)),
            )

    def note(self, key: str, text: str | None) -> None:
        """A standing remark for the status page (None removes it)."""
        if text is None:
            self.notes.pop(key, None)
        else:
            self.notes[key] = text

    def lines(self) -> list[str]:
        """One line per failing store and per note, for the status page."""
        out = [
            f"{p.message} ({p.count} failed write(s) since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(p.first))})"
            for p in self.problems.values()
        ]
        out.extend(self.notes.values())
        return out

    def reset(self) -> None:
        """Forget everything (tests)."""
        self.problems.clear()
        self.notes.clear()
        self._log.last.clear()
        self._log.suppressed.clear()
        for store in STORES:
            WRITABLE.labels(store).set(1)


HEALTH = StateHealth()


class DiskReserve:
    """A preallocated file under state_dir given up when a lease cannot be written."""

    def __init__(self, state_dir: Path, size: int) -> None:
        self.path = state_dir / RESERVE_NAME
        self.size = size
        self.released = False

    @property
    def present(self) -> bool:
        return self.path.exists()

    def ensure(self) -> bool:
        """Make the reserve if it is missing and the file system has room for it
        (and a margin as large again): True when it is in place."""
        if self.size <= 0:
            with contextlib.suppress(OSError):
                self.path.unlink()  # reserve turned off: give the space back
            return False
        try:
            if self.path.exists() and self.path.stat().st_size >= self.size:
                if self.path.stat().st_size > self.size:
                    os.truncate(self.path, self.size)  # made smaller in the config
                self._restored()
                return True
            st = os.statvfs(self.path.parent)
            if st.f_bavail * st.f_frsize < 2 * self.size:
                return False
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return False
        self._restored()
        return True

    def _restored(self) -> None:
        if self.released:
            log.warning(
                "state: disk reserve %s made again; the registry is written again", self.path
            )
        self.released = False
        RESERVE_RELEASED.set(0)
        HEALTH.note("reserve", None)

    def release(self) -> bool:
        """Give the reserve up; True if there was one to give."""
        try:
            self.path.unlink()
        except OSError:
            return False
        self.released = True
        RESERVE_RELEASED.set(1)
        log.error(
            "state: state_dir is full: released the %d KiB disk reserve for DHCP leases; "
            "the registry is not written until there is room again",
            self.size // 1024,
        )
        HEALTH.note(
            "reserve",
            "state_dir is full: the disk reserve was released for DHCP leases; "
            "phone history is kept in memory only until there is room again",
        )
        return True
