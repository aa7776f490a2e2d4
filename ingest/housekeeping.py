"""Periodic upkeep outside the write path: the hourly rollup and retention (the observations'
and, on its own setting, the audit log's).

The rollup is refreshed here rather than per batch: a busy patient's hour would otherwise be
re-aggregated by every batch. The hours to refresh are queued in ``ingest_rollup_queue`` by the
batch transaction itself, so nothing is missed across a crash.

On TimescaleDB the rollup is a continuous aggregate whose policy refreshes only its last 30 days:
a late row older than that would stay out of it for good. Such spans become windows in
``rollup_late_windows``, handed over in the same transaction that takes them off the queue, and
a TimescaleDB job of the schema's owner refreshes them (migration 0013): only the aggregate's
owner may refresh it, and the services' role owns nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import psycopg

from ingest.failures import StoreFailure, classify_failure
from telemon.database import DatabaseUnavailable, connect, one_row
from telemon.store.audit_chain import MINIMUM_RETENTION_MONTHS, apply_retention
from telemon.store.backend import stored_backend

log = logging.getLogger(__name__)

# Serialises refreshes across ingest workers, so an older snapshot never overwrites a newer one.
_ROLLUP_LOCK = "telemon_ingest_rollup"

TIMESCALE = "timescaledb"  # storage_settings.backend
# The start_offset of observation_hourly's refresh policy (migration 0002, timescale variant).
AGGREGATE_POLICY_WINDOW = timedelta(days=30)
# Spans this close to the window's start are refreshed here too: the policy runs every 15
# minutes, and a span may have left its window by the time it runs.
AGGREGATE_POLICY_MARGIN = timedelta(days=1)


def hour_floor(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def group_rollup_ranges(
    queued: list[tuple[int, datetime, datetime]],
) -> dict[tuple[datetime, datetime], list[int]]:
    """Merge each patient's queued spans, then group patients sharing the same span of hours."""
    spans: dict[int, tuple[datetime, datetime]] = {}
    for patient_id, first_at, last_at in queued:
        lo, hi = spans.get(patient_id, (first_at, last_at))
        spans[patient_id] = (min(lo, first_at), max(hi, last_at))
    groups: dict[tuple[datetime, datetime], list[int]] = defaultdict(list)
    for patient_id, (lo, hi) in sorted(spans.items()):
        groups[hour_floor(lo), hour_floor(hi) + timedelta(hours=1)].append(patient_id)
    return dict(groups)


def aggregate_refresh_windows(
    spans: Iterable[tuple[datetime, datetime]],
    now: datetime,
    *,
    policy_window: timedelta = AGGREGATE_POLICY_WINDOW,
    margin: timedelta = AGGREGATE_POLICY_MARGIN,
) -> list[tuple[datetime, datetime]]:
    """The hour-aligned windows of ``spans`` that the aggregate's policy will not refresh: the
    parts older than its window (less ``margin``), merged where they overlap or touch.

    Hours are UTC hours: the aggregate's buckets align with UTC, and a refresh skips any bucket
    that does not fit whole in its window, so a session in a half-hour time zone must not shift
    the windows."""
    horizon = _utc_hour(now - policy_window + margin)
    windows = sorted(
        (_utc_hour(first), min(_utc_hour(last) + timedelta(hours=1), horizon))
        for first, last in spans
        if _utc_hour(first) < horizon
    )
    merged: list[tuple[datetime, datetime]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _utc_hour(ts: datetime) -> datetime:
    return hour_floor(ts.astimezone(UTC))


def refresh_rollups(conn: psycopg.Connection, *, backend: str) -> int:
    """Refresh the hourly rollup for every queued (patient, span); return buckets written.

    On TimescaleDB, spans older than the aggregate's policy window are handed to the owner's
    refresh job as hour-aligned windows (only buckets that fit whole in a window are refreshed:
    https://docs.timescale.com/api/latest/continuous-aggregates/refresh_continuous_aggregate/)."""
    written = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_ROLLUP_LOCK,))
        now = one_row(conn.execute("SELECT now()"))[0]
        queued = conn.execute(
            "SELECT id, patient_id, first_at, last_at FROM ingest_rollup_queue"
        ).fetchall()
        spans = [row[1:] for row in queued]
        for (start, end), patients in group_rollup_ranges(spans).items():
            row = conn.execute(
                "SELECT telemon_refresh_observation_hourly(%s, %s, %s)", (start, end, patients)
            ).fetchone()
            written += row[0] if row else 0
        if backend == TIMESCALE:
            windows = aggregate_refresh_windows([(first, last) for _, first, last in spans], now)
            if windows:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO rollup_late_windows (window_start, window_end) "
                        "VALUES (%s, %s)",
                        windows,
                    )
                log.info("late rows: %d window(s) queued for the aggregate's refresh", len(windows))
        conn.execute(
            "DELETE FROM ingest_rollup_queue WHERE id = ANY(%s)", ([row[0] for row in queued],)
        )
    return written


def drop_expired(conn: psycopg.Connection) -> int:
    """Apply the configured retention (storage_settings.retention); return partitions dropped.

    The database applies it (migration 0012): the services may not drop partitions themselves.
    """
    with conn.transaction():
        row = conn.execute("SELECT telemon_apply_observation_retention()").fetchone()
    return row[0] if row else 0


class Housekeeper:
    """Runs the rollup every ``rollup_interval`` s and retention every ``retention_interval`` s,
    on its own connection and thread, so a long refresh never holds up a batch."""

    def __init__(
        self,
        database_url: str,
        *,
        rollup_interval: float = 5.0,
        retention_interval: float = 3600.0,
        audit_retention_months: int = MINIMUM_RETENTION_MONTHS,
    ) -> None:
        self.database_url = database_url
        self.audit_retention_months = audit_retention_months
        self.rollup_interval = rollup_interval
        self.retention_interval = retention_interval
        # Why the last pass failed, until one succeeds.
        self.failure: StoreFailure | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-housekeeping", daemon=True)
        self._conn: psycopg.Connection | None = None
        self._backend = "native"

    @property
    def healthy(self) -> bool:
        return self.failure is None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after a last rollup, so that a clean shutdown leaves nothing queued."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self, *, retention: bool) -> None:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.database_url, autocommit=True)
                self._backend = stored_backend(self._conn) or "native"
            refresh_rollups(self._conn, backend=self._backend)
            if retention:
                dropped = drop_expired(self._conn)
                if dropped:
                    log.info("retention dropped %d observation partition(s)", dropped)
                removed = apply_retention(self._conn, self.audit_retention_months)
                if removed:
                    log.info("audit retention removed %d row(s)", removed)
            self.failure = None
        except (psycopg.Error, DatabaseUnavailable) as exc:
            self.failure = classify_failure(exc)
            log.warning("housekeeping failed (%s); will try again", exc)
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run(self) -> None:
        next_retention = 0.0
        while True:
            stopping = self._stop.wait(self.rollup_interval)
            now = time.monotonic()
            self.run_once(retention=not stopping and now >= next_retention)
            if now >= next_retention:
                next_retention = now + self.retention_interval
            if stopping:
                break
        if self._conn is not None:
            self._conn.close()
