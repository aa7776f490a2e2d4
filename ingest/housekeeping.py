"""Periodic upkeep outside the write path: the hourly rollup and retention.

The rollup is refreshed here rather than per batch: a busy patient's hour would otherwise be
re-aggregated by every batch. The hours to refresh are queued in ``ingest_rollup_queue`` by the
batch transaction itself, so nothing is missed across a crash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import datetime, timedelta

import psycopg

from telemon.database import DatabaseUnavailable, connect

log = logging.getLogger(__name__)

# Serialises refreshes across ingest workers, so an older snapshot never overwrites a newer one.
_ROLLUP_LOCK = "telemon_ingest_rollup"


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


def refresh_rollups(conn: psycopg.Connection) -> int:
    """Refresh the hourly rollup for every queued (patient, span); return buckets written."""
    written = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_ROLLUP_LOCK,))
        queued = conn.execute(
            "DELETE FROM ingest_rollup_queue RETURNING patient_id, first_at, last_at"
        ).fetchall()
        for (start, end), patients in group_rollup_ranges(queued).items():
            row = conn.execute(
                "SELECT telemon_refresh_observation_hourly(%s, %s, %s)", (start, end, patients)
            ).fetchone()
            written += row[0] if row else 0
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
    ) -> None:
        self.database_url = database_url
        self.rollup_interval = rollup_interval
        self.retention_interval = retention_interval
        self.healthy = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-housekeeping", daemon=True)
        self._conn: psycopg.Connection | None = None

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
            refresh_rollups(self._conn)
            if retention:
                dropped = drop_expired(self._conn)
                if dropped:
                    log.info("retention dropped %d observation partition(s)", dropped)
            self.healthy = True
        except (psycopg.Error, DatabaseUnavailable) as exc:
            self.healthy = False
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
