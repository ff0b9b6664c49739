"""What the appliance knows per phone (MAC), fed by every service.

DHCP, PnP, LLDP, TFTP, HTTP, FTP and Action URL all call `Registry.record`
with one event (netboot.events: `LeaseAcked`, `PnpNotified`, `FileFetched`,
...). Events are queued in memory and written in one transaction per flush (the
supervisor flushes a few times a second and at shutdown), so recording never
stalls a hot path. The per-phone row keeps the latest facts (IP, vendor, model,
firmware) and a provisioning state that moves along netboot.events.TRANSITIONS:
seen -> url-sent -> fetched-common -> fetched-own -> registered; `failed` (a
file a phone asked for was missing or refused) is shown until a later success
replaces it, `registration-failed` when the line failed. A per-MAC file
refused as "forbidden" was asked for by an address that does not hold that
MAC's lease (someone else): it goes into the phone's timeline but never
changes the phone's state, facts, last-seen time or last event.

This module is the in-memory side (the queue, the state of the phones
written last, the tables' sizes for the budgets, HEALTH), bounded whatever
the tables hold; the tables are netboot.state.registry.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import Counter

from netboot import metrics, vendors
from netboot.config import RegistryConfig
from netboot.events import Event, LeaseAcked, PhoneState, next_state, state_named
from netboot.ratelog import RateLimitedLog
from netboot.state.registry import (
    Phone,
    PhoneUpdate,
    RegistryStore,
    TimelineEntry,
    read_phone,
    read_phones,
    read_timeline,
)
from netboot.statedisk import HEALTH, classify

if TYPE_CHECKING:
    from netboot.state.leases import LeaseStore

PRUNE_BATCH = 2000  # events a prune call removes at most per budget (a few ms of the loop)
PRUNE_PHONES = 500  # phones (each with its events) a prune call removes at most per budget
# Phones whose state is kept in memory, the most recently written (~150 bytes
# each): a phone's next events (its ACK after its OFFER, its file fetches)
# find it there; any other phone's is read with the flush's batch.
CACHED_PHONES = 4096

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
EVENTS = Counter(
    "netboot_registry_events_total",
    "Events recorded in the phone registry, by service and kind (netboot.events)",
    ["service", "kind"],
    registry=metrics.REGISTRY,
)


_SEEN = PhoneState.SEEN.value
_EVENT_COUNTERS: dict[tuple[str, str], Counter] = {}


def _counted(service: str, kind: str) -> Counter:
    """EVENTS' child for (service, kind), looked up once (`labels()` takes a
    lock and builds a key on every call); a bounded table (the event kinds)."""
    child = _EVENT_COUNTERS.get((service, kind))
    if child is None:
        child = EVENTS.labels(service, kind)
        if len(_EVENT_COUNTERS) < 256:
            _EVENT_COUNTERS[(service, kind)] = child
    return child


def merge(
    batch: Iterable[tuple[float, Event]], states: dict[str, str]
) -> tuple[dict[str, PhoneUpdate], dict[str, str]]:
    """What a batch of events does to each phone (one update per MAC), and
    the phones' new states; `states` (each phone's state now) is not changed."""
    changes: dict[str, str] = {}
    merged: dict[str, PhoneUpdate] = {}
    for when, event in batch:
        mac = event.mac
        m = merged.get(mac)
        if m is None:
            m = merged[mac] = PhoneUpdate(when, when)
        elif when < m.first:
            m.first = when
        name = event.service + " " + event.kind
        if not event.by_phone:
            if m.event is None:  # only for a row created by this event
                m.event = name
        elif not m.touched or when >= m.last:
            m.last = when if not m.touched else max(m.last, when)
            m.event = name
            m.touched = True
        facts = event.facts()
        if "vendor" in facts:  # one name per family, whichever service said it
            facts["vendor"] = vendors.family_label(facts["vendor"])
        m.facts.update(facts)
        if event.counts_file:
            m.files += 1
        step = event.step()
        if step is not None:
            current = state_named(changes.get(mac) or states.get(mac, _SEEN))
            moved = next_state(current, step[0])
            if moved is not None:
                changes[mac] = moved.value
                m.state = (moved.value, step[1])
    return merged, changes


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
        self._store = RegistryStore(state_dir)
        self.storage = self._store.storage
        self._queue: list[tuple[float, Event]] = []
        # The state of the phones written last (at most CACHED_PHONES, the
        # least recently written dropped first): a flush reads the others'
        # from the table, one statement for its batch. Right as long as this
        # registry is the only writer; emptied when a write fails.
        self._cache: OrderedDict[str, str] = OrderedDict()
        # The tables' sizes (a prune's budgets by count), counted at the first
        # write and kept by writes and prunes; None: count again.
        self._phones: int | None = None
        self._events: int | None = None
        self._paused = paused or (lambda: False)
        self._touched: set[str] = set()  # MACs with new events since the last prune
        self.more = False  # the last prune stopped at its batch: call again
        self._unknown_due = False
        self.dropped = 0
        self._new_phones = 0  # rows and events written since the last prune
        self._new_events = 0

    def close(self) -> None:
        self.flush()
        self._store.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The registry's own connection (the status page reads it when the
        registry lives in memory)."""
        return self._store.conn

    def record(self, event: Event, *, now: float | None = None) -> None:
        """Queue one event about one phone; the facts it carries update its
        row. Cheap: nothing is written until `flush`."""
        when = time.time() if now is None else now
        self._queue.append((when, event))
        _counted(event.service, event.kind).inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("registry: %s %s", event.mac, event.describe())
        if len(self._queue) > self.budget.max_queued:
            self._drop(len(self._queue) - self.budget.max_queued + self.budget.max_queued // 10)

    def _drop(self, count: int) -> None:
        del self._queue[:count]
        self.dropped += count
        PRUNED.labels("queued").inc(count)
        _budget_log.warning(
            "queued",
            f"registry: {count} event(s) dropped: more than registry.max_queued = "
            f"{self.budget.max_queued} waited to be written",
            time.monotonic(),
        )

    @property
    def pending(self) -> int:
        return len(self._queue)

    def flush(self, limit: int | None = None) -> int:
        """Write every queued event (the oldest `limit` of them) in one
        transaction; returns how many (0 when the write failed or is paused).

        Events go in with one executemany; each phone touched gets one upsert
        carrying its merged facts and its new state (worked out here, from
        the states of the batch's phones: those of the phones written last
        are in memory, the others read in one statement; this registry is
        the only writer)."""
        if not self._queue or self._paused():
            return 0
        if limit is None or limit >= len(self._queue):
            batch, self._queue = self._queue, []
        else:
            batch, self._queue = self._queue[:limit], self._queue[limit:]
        try:
            self._write(batch)
        except (sqlite3.Error, OSError) as exc:
            self._forget_caches()
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
        return len(batch)

    def _forget_caches(self) -> None:
        """After a failed write or prune (did its commit happen?): the states
        and the tables' sizes are read from the tables again."""
        self._cache.clear()
        self._phones = self._events = None

    def _write(self, batch: list[tuple[float, Event]]) -> None:
        if self._phones is None or self._events is None:
            self._phones, self._events = self._store.totals()
        cache = self._cache
        states: dict[str, str] = {}  # the batch's phones that have a row, and their state
        missing: list[str] = []
        for mac in {event.mac for _, event in batch}:
            state = cache.get(mac)
            if state is None:
                missing.append(mac)
            else:
                states[mac] = state
        if missing:
            states.update(self._store.states_of(missing))
        merged, changes = merge(batch, states)
        self._store.write(batch, merged)
        # applied to the cache and the sizes once the transaction has committed
        new = 0
        for mac in merged:
            state = states.get(mac)
            if state is None:
                new += 1
            cache[mac] = changes.get(mac) or state or _SEEN
            cache.move_to_end(mac)
        while len(cache) > CACHED_PHONES:
            cache.popitem(last=False)
        self._phones += new
        self._events += len(batch)
        self._touched.update(merged)
        self._new_phones += new
        self._new_events += len(batch)

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
        self,
        now: float,
        keep: Collection[str] = (),
        batch: int = PRUNE_BATCH,
        *,
        full: bool = True,
    ) -> dict[str, int]:
        """Apply the budgets (registry.*): returns how many rows each removed.
        At most about `batch` rows go per call, so a call never holds the
        event loop long; `more` is then true and the caller calls again.

        `keep`: MACs that hold or held a DHCP lease (never "unknown"; a set
        or a dict's keys: it is looked up once per unknown MAC). Unknown
        MACs (state `seen`, no lease) go after `unknown_max_age` and beyond
        `max_unknown`; every phone after `retention_days` unseen and beyond
        `max_phones` (unknown first, then the least recently seen); events
        beyond `max_events_per_phone` per phone, after `retention_days`, and
        beyond `max_events` overall, oldest first. Never raises: a failure is
        reported like a failed flush.

        `full=False` (a flood filling the tables, between the minutely full
        prunes): the budgets by count, at a cost proportional to what is
        removed, and the unknown MACs' when many new phones came; the budgets
        by age wait for the next full one."""
        self.more = False
        if self._paused():
            return {}
        unknown = (
            full
            or self._unknown_due  # the last prune of the unknown MACs stopped at its batch
            or self._new_phones >= max(100, self.budget.max_unknown // 4)
        )
        self._new_phones = self._new_events = 0
        phones = max(1, batch * PRUNE_PHONES // PRUNE_BATCH)
        touched, self._touched = self._touched, set()
        try:
            pruned = self._store.prune(
                now,
                self.budget,
                keep=keep,
                touched=touched,
                batch=batch,
                phones=phones,
                total_phones=self._phones,
                total_events=self._events,
                age=full,
                unknown=unknown,
            )
        except (sqlite3.Error, OSError) as exc:
            self._forget_caches()
            self._touched |= touched
            HEALTH.failed(
                "registry",
                classify("registry", exc, self.state_dir),
                "old entries are not pruned",
            )
            return {}
        for mac in pruned.forgotten:
            self._cache.pop(mac, None)
        if self._phones is not None:
            self._phones -= len(pruned.forgotten)
        if self._events is not None:
            self._events -= pruned.events
        self.more = pruned.more
        # Only when that budget itself stopped at its batch: it reads every
        # unknown MAC, so a backlog of max_phones (500 phones a call) must
        # not repeat it at every call.
        self._unknown_due = unknown and pruned.unknown_more
        for reason, count in pruned.removed.items():
            PRUNED.labels(reason).inc(count)
            _budget_log.warning(
                reason,
                f"registry: budget reached ({_BUDGET_KEYS[reason]}): removed {count} "
                f"{'phone(s)' if reason in ('unknown', 'phones', 'age_phones') else 'event(s)'}",
                now,
            )
        return pruned.removed

    def reconcile(self, leases: LeaseStore, now: float | None = None) -> int:
        """Record an `ack` for every bound lease whose phone has no `ack` event
        since the lease was written (the process was killed between the lease's
        fsync and the registry's next flush); returns how many."""
        self.flush()
        missing = 0
        # The addresses whose ACK the registry has: a set of the leases' own
        # ints, the ACK events read row by row in table order (a dict of every
        # phone's last ACK, 100 000 new strings and floats, stayed in RSS
        # after it was freed; grouping by MAC took twice as long).
        acked: set[int] = set()
        by_mac, by_ip = leases.by_mac, leases.by_ip
        try:
            for mac, seen in self._store.acks():
                for ip in by_mac.get(mac, ()):
                    if seen >= by_ip[ip].updated - 1.0:
                        acked.add(ip)
        except sqlite3.Error:
            return 0
        for lease in leases:
            if lease.state != "bound":
                continue
            if lease.ip not in acked:
                self.record(
                    LeaseAcked(
                        mac=lease.mac,
                        ip=str(lease.address),
                        recovered="from the lease store",
                        hostname=lease.hostname or None,
                    ),
                    now=lease.updated,
                )
                missing += 1
        self.flush()
        return missing

    # ------------------------------------------------------------ reading

    def phones(self) -> list[Phone]:
        self.flush()
        return read_phones(self._store.conn)

    def phone(self, mac: str) -> Phone | None:
        self.flush()
        return read_phone(self._store.conn, mac)

    def timeline(self, mac: str) -> list[TimelineEntry]:
        self.flush()
        return read_timeline(self._store.conn, mac)
