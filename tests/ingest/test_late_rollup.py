"""Late rows older than the continuous aggregate's policy window still reach the hourly rollup.

TimescaleDB does not run here. The choice of windows is a pure function, tested as such; the
housekeeper's hand-over of those windows to the owner's refresh job (``rollup_late_windows``,
migration 0013) is tested on the real server with storage_settings saying timescaledb.
"""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ingest.housekeeping import (
    AGGREGATE_POLICY_WINDOW,
    TIMESCALE,
    Housekeeper,
    aggregate_refresh_windows,
    hour_floor,
)
from ingest.inbound import classify
from telemon.store.migrate import PACKAGED_MIGRATIONS

NOW = datetime(2026, 12, 3, 14, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_only_spans_older_than_the_policy_window_are_refreshed_explicitly():
    old = NOW - timedelta(days=40, minutes=-25)  # 40 days ago, mid-hour
    recent = NOW - timedelta(hours=2)
    windows = aggregate_refresh_windows([(recent, NOW), (old, old + timedelta(minutes=10))], NOW)
    assert windows == [(hour_floor(old), hour_floor(old) + HOUR)]


def test_a_span_across_the_window_is_cut_at_its_start_and_touching_spans_merge():
    horizon = hour_floor(NOW - AGGREGATE_POLICY_WINDOW + timedelta(days=1))
    long_ago = NOW - timedelta(days=60)
    windows = aggregate_refresh_windows(
        [
            (long_ago, NOW),  # a backlog from 60 days ago to now: the policy covers its end
            (
                long_ago - timedelta(hours=3),
                long_ago - timedelta(minutes=50),
            ),  # ends where it starts
            (long_ago - timedelta(days=5), long_ago - timedelta(days=5)),
        ],
        NOW,
    )
    assert windows == [
        (hour_floor(long_ago - timedelta(days=5)), hour_floor(long_ago - timedelta(days=5)) + HOUR),
        (hour_floor(long_ago - timedelta(hours=3)), horizon),
    ]
    assert all(w[0].minute == w[1].minute == 0 for w in windows)


def test_windows_are_whole_utc_hours_whatever_the_session_time_zone():
    kolkata = timezone(timedelta(hours=5, minutes=30))
    old = datetime(2026, 10, 1, 10, 45, tzinfo=kolkata)  # 05:15 UTC
    windows = aggregate_refresh_windows([(old, old)], NOW.astimezone(kolkata))
    assert windows == [(datetime(2026, 10, 1, 5, tzinfo=UTC), datetime(2026, 10, 1, 6, tzinfo=UTC))]


def test_no_span_needs_an_explicit_refresh_inside_the_window():
    assert aggregate_refresh_windows([(NOW - timedelta(days=20), NOW)], NOW) == []
    assert aggregate_refresh_windows([], NOW) == []


def test_the_policy_window_matches_the_timescale_migration():
    assert f"start_offset => INTERVAL '{AGGREGATE_POLICY_WINDOW.days} days'" in _timescale("0002")


def _timescale(version: str) -> str:
    """The TimescaleDB variant of a packaged migration (the schema lives in telemon.store)."""
    (entry,) = (
        e
        for e in PACKAGED_MIGRATIONS.iterdir()
        if e.name.startswith(f"{version}_") and e.name.endswith(".timescale.sql")
    )
    return entry.read_text()


@pytest.fixture
def timescale_backend(db):
    """storage_settings says timescaledb, as on a TimescaleDB install."""
    (backend,) = db.execute("SELECT backend FROM storage_settings").fetchone()
    db.execute("UPDATE storage_settings SET backend = %s", (TIMESCALE,))
    try:
        yield
    finally:
        db.execute("UPDATE storage_settings SET backend = %s", (backend,))


def test_housekeeping_hands_late_windows_to_the_owners_refresh_job(
    db, store, patient, database_url, timescale_backend
):
    late = datetime.now(UTC).replace(microsecond=0) - timedelta(days=45)
    recent = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    store.write(
        [
            classify(*patient.obs_message(patient.observations(3, start=late))),
            classify(*patient.obs_message(patient.observations(3, first_seq=3, start=recent))),
        ]
    )
    assert db.execute("SELECT count(*) FROM ingest_rollup_queue").fetchone()[0] == 1

    def horizon() -> datetime:
        return hour_floor(datetime.now(UTC) - AGGREGATE_POLICY_WINDOW + timedelta(days=1))

    before = horizon()
    housekeeper = Housekeeper(database_url)
    housekeeper.run_once(retention=False)
    housekeeper.stop()

    assert housekeeper.healthy
    # Only the late part: the recent hours are the policy's.
    ((start, end),) = db.execute(
        "SELECT window_start, window_end FROM rollup_late_windows"
    ).fetchall()
    assert start == hour_floor(late)
    assert end in {before, horizon()}  # the same unless the hour turned meanwhile
    assert db.execute("SELECT count(*) FROM ingest_rollup_queue").fetchone()[0] == 0


def test_a_failed_hand_over_leaves_the_spans_queued(
    db, store, patient, database_url, timescale_backend
):
    late = datetime.now(UTC).replace(microsecond=0) - timedelta(days=45)
    store.write([classify(*patient.obs_message(patient.observations(3, start=late)))])
    db.execute(
        "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'hand-over refused'; END $$"
    )
    db.execute(
        "CREATE TRIGGER test_refuse BEFORE INSERT ON rollup_late_windows "
        "FOR EACH ROW EXECUTE FUNCTION test_refuse()"
    )
    try:
        housekeeper = Housekeeper(database_url)
        housekeeper.run_once(retention=False)
        housekeeper.stop()
    finally:
        db.execute("DROP TRIGGER test_refuse ON rollup_late_windows")
        db.execute("DROP FUNCTION test_refuse()")

    assert not housekeeper.healthy
    assert db.execute("SELECT count(*) FROM ingest_rollup_queue").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM rollup_late_windows").fetchone()[0] == 0


def test_the_refresh_job_is_the_schema_owners_and_the_services_only_queue():
    """The job's procedure refreshes and deletes; the services' role may insert, not delete."""
    text = _timescale("0013")
    assert "CALL refresh_continuous_aggregate('observation_hourly'" in text
    assert "add_job('telemon_refresh_late_rollups'" in text
    assert "REVOKE UPDATE, DELETE ON rollup_late_windows FROM telemon_app" in text
