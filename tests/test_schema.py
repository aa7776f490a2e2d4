from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from telemon.metrics import METRICS
from telemon.store.migrate import MigrationError, detect_backend, load_migrations, migrate


def test_migrations_are_idempotent_and_recorded(db):
    report = migrate(db)
    assert report.applied == ()
    assert report.backend == detect_backend(db) == "native"
    versions = [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == [m.version for m in load_migrations("native")]


def test_metric_catalogue_is_mirrored(db):
    rows = dict(db.execute("SELECT key, loinc FROM metrics").fetchall())
    assert rows == {m.key: m.loinc for m in METRICS.values()}


def test_changed_applied_migration_is_refused(db):
    db.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    try:
        with pytest.raises(MigrationError, match="changed after it was applied"):
            migrate(db)
    finally:
        checksum = load_migrations("native")[0].checksum
        db.execute("UPDATE schema_migrations SET checksum = %s WHERE version = 1", (checksum,))


def test_both_backends_define_the_same_interface():
    native = {m.version: m.sql for m in load_migrations("native")}
    timescale = {m.version: m.sql for m in load_migrations("timescaledb")}
    assert native.keys() == timescale.keys()
    for name in (
        "telemon_ensure_observation_partitions",
        "telemon_drop_expired_observations",
        "telemon_refresh_observation_hourly",
        "telemon_apply_storage_policies",
        "CONSTRAINT observations_once UNIQUE (gateway_id, seq, measured_at)",
        "observations_patient_metric_time",
    ):
        assert name in native[2] and name in timescale[2], name


def _insert(db, measured_at, seq, value=97.0, patient=1, metric=1):
    return db.execute(
        "INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, seq) "
        "VALUES (%s, %s, %s, %s, 1, %s) ON CONFLICT DO NOTHING",
        (measured_at, patient, metric, value, seq),
    ).rowcount


def test_weekly_partitions_are_created_on_demand(db):
    t = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)  # a Wednesday
    with pytest.raises(psycopg.errors.CheckViolation):
        _insert(db, t, 1)  # no partition yet: refused, not silently dropped
    assert (
        db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (t, t)).fetchone()[0]
        == 1
    )
    assert (
        db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (t, t)).fetchone()[0]
        == 0
    )
    assert _insert(db, t, 1) == 1
    db.execute("SET TimeZone = 'UTC'")
    bounds = db.execute(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s",
        ("observations_20261116",),
    ).fetchone()[0]
    assert "2026-11-16 00:00:00+00" in bounds and "2026-11-23 00:00:00+00" in bounds


def test_redelivery_is_harmless(db):
    t = datetime(2026, 11, 18, 9, 30, tzinfo=UTC)
    db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (t, t))
    assert _insert(db, t, 7) == 1
    assert _insert(db, t, 7) == 0
    assert db.execute("SELECT count(*) FROM observations").fetchone()[0] == 1


def test_hourly_rollup(db):
    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (t0, t0))
    for seq, (minutes, value) in enumerate([(5, 96.0), (30, 92.0), (59, 94.0), (65, 97.0)]):
        _insert(db, t0 + timedelta(minutes=minutes), seq, value)
    db.execute("SELECT telemon_refresh_observation_hourly(%s, %s)", (t0, t0 + timedelta(hours=2)))
    rows = db.execute(
        "SELECT bucket, min, max, mean, count FROM observation_hourly ORDER BY bucket"
    ).fetchall()
    assert rows == [(t0, 92.0, 96.0, 94.0, 3), (t0 + timedelta(hours=1), 97.0, 97.0, 97.0, 1)]
    # A late reading for the first hour updates its bucket rather than adding one.
    _insert(db, t0 + timedelta(minutes=1), 99, 90.0)
    db.execute("SELECT telemon_refresh_observation_hourly(%s, %s)", (t0, t0 + timedelta(hours=1)))
    assert db.execute(
        "SELECT min, count FROM observation_hourly WHERE bucket = %s", (t0,)
    ).fetchone() == (90.0, 4)


def test_retention_drops_whole_expired_partitions(db):
    old = datetime(2025, 1, 8, tzinfo=UTC)
    recent = datetime(2026, 11, 18, tzinfo=UTC)
    db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (old, old))
    db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (recent, recent))
    _insert(db, old, 1)
    _insert(db, recent, 2)
    dropped = db.execute(
        "SELECT telemon_drop_expired_observations(%s)", (datetime(2026, 1, 1, tzinfo=UTC),)
    ).fetchone()[0]
    assert dropped >= 1
    assert [r[0] for r in db.execute("SELECT seq FROM observations")] == [2]


def test_one_open_alert_per_patient_and_rule_is_enforced_by_the_database(db):
    gp = db.execute(
        "INSERT INTO staff (username, display_name, role) VALUES ('dr.rossi', 'Dr Rossi', 'gp') "
        "RETURNING id"
    ).fetchone()[0]
    patient = db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id) "
        "VALUES ('P0001', 'Maria', 'Bianchi', %s) RETURNING id",
        (gp,),
    ).fetchone()[0]
    open_alert = (
        "INSERT INTO alerts (patient_id, protocol, rule, severity) VALUES (%s, 'covid', 'spo2', 2)"
    )
    db.execute(open_alert, (patient,))
    with pytest.raises(psycopg.errors.UniqueViolation):
        db.execute(open_alert, (patient,))
    db.execute("UPDATE alerts SET state = 'resolved', resolved_at = now()")
    db.execute(open_alert, (patient,))  # a new episode after the first resolved


def test_hourly_rollup_for_some_patients_only(db):
    t0 = datetime(2026, 11, 18, 9, 0, tzinfo=UTC)
    db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (t0, t0))
    _insert(db, t0, 1, patient=1)
    _insert(db, t0, 2, patient=2)
    db.execute(
        "SELECT telemon_refresh_observation_hourly(%s, %s, %s)",
        (t0, t0 + timedelta(hours=1), [2]),
    )
    assert [r[0] for r in db.execute("SELECT patient_id FROM observation_hourly")] == [2]
