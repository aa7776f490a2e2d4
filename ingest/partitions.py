"""Weekly observation partitions, created before a write needs them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import psycopg

_WEEK_S = 7 * 86_400
_EPOCH_MONDAY = datetime(1969, 12, 29, tzinfo=UTC)


def week_index(ts: datetime) -> int:
    """Whole weeks since Monday 1969-12-29 UTC; cheap enough to run on every observation."""
    return int((ts.timestamp() + 3 * 86_400) // _WEEK_S)


def week_start(ts: datetime) -> datetime:
    """Monday 00:00 UTC of the ISO week holding ``ts``: the partition boundary."""
    return _EPOCH_MONDAY + timedelta(weeks=week_index(ts))


def weeks_of(timestamps: Iterable[datetime], first: datetime, last: datetime) -> set[int]:
    """The weeks holding ``timestamps``, whose earliest and latest are ``first`` and ``last``."""
    low, high = week_index(first), week_index(last)
    # Nearly every message falls in one week: two conversions instead of one per observation.
    return {low} if low == high else {week_index(ts) for ts in timestamps}


class PartitionCache:
    """Remembers the weeks known to exist, so the common write costs no extra round trip."""

    def __init__(self) -> None:
        self._weeks: set[int] = set()

    def ensure(self, conn: psycopg.Connection, weeks: set[int]) -> int:
        """Create missing partitions in their own short transaction; return how many."""
        missing = sorted(weeks - self._weeks)
        if not missing:
            return 0
        created = 0
        # Its own transaction: creating a partition locks the parent table, which must not stay
        # locked for the duration of a batch.
        with conn.transaction():
            for index in missing:
                week = _EPOCH_MONDAY + timedelta(weeks=index)
                row = conn.execute(
                    "SELECT telemon_ensure_observation_partitions(%s, %s)", (week, week)
                ).fetchone()
                created += row[0] if row else 0
        self._weeks.update(missing)
        return created

    def forget(self) -> None:
        """Retention dropped partitions: trust nothing remembered."""
        self._weeks.clear()
