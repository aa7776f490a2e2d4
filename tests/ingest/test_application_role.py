"""The services run as the application role (migration 0012), which can do their work and no more.

A login role of the test's own is made a member of ``telemon_app``, as deploy/postgres/10-roles.sh
makes the compose stack's service user; the database was migrated by the superuser, as tests
and the demo migrate. Roles are cluster-wide: the name is unique and the role dropped after.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import errors

from alerts.engine import AlertsService
from dashboard.accounts import set_password
from dashboard.app import create_app
from ingest.housekeeping import drop_expired, refresh_rollups
from telemon.config import Settings
from tests.dashboard.support import login
from tests.ingest.support import Enrolled

PASSWORD = "an application role test"
NURSE = "nurse.approle"


def _enrol_for_alerts(db: psycopg.Connection, patient: Enrolled) -> None:
    """The patient on the COVID protocol since yesterday, cared for by a nurse who can sign in."""
    db.execute(
        "UPDATE patients SET enrolled_at = now() - interval '1 day' WHERE id = %s",
        (patient.patient_id,),
    )
    db.execute(
        "INSERT INTO patient_protocols (patient_id, protocol, started_at) "
        "VALUES (%s, 'covid19_home_oximetry', now() - interval '1 day')",
        (patient.patient_id,),
    )
    nurse = db.execute(
        "INSERT INTO staff (username, display_name, role, language) "
        "VALUES (%s, 'Inf. Prova', 'nurse', 'en') RETURNING id",
        (NURSE,),
    ).fetchone()[0]
    centre = db.execute(
        "INSERT INTO care_teams (name, kind) VALUES ('Centrale', 'service_centre') RETURNING id"
    ).fetchone()[0]
    db.execute("INSERT INTO care_team_members VALUES (%s, %s)", (centre, nurse))
    db.execute("UPDATE patients SET care_team_id = %s WHERE id = %s", (centre, patient.patient_id))
    set_password(db, NURSE, PASSWORD)


def test_ingest_alerts_and_dashboard_work_as_the_application_role(
    db, patient, app_url, start_ingest, broker, wait_for
) -> None:
    _enrol_for_alerts(db, patient)
    now = datetime.now(UTC).replace(microsecond=0)
    # Two red SpO2 readings confirm spo2_low; a week-old one makes ingest create a partition.
    readings = [
        *patient.observations(1, first_seq=0, start=now - timedelta(days=8), value=97.0),
        *patient.observations(1, first_seq=1, start=now - timedelta(minutes=20), value=90.0),
        *patient.observations(1, first_seq=2, start=now - timedelta(minutes=10), value=89.0),
    ]

    start_ingest(database_url=app_url)
    broker.publish_all([patient.obs_message(readings)])
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) FROM observations WHERE gateway_id = %s", (patient.gateway_id,)
            ).fetchone()[0]
            == 3
        )
    )
    # (Other test runs on a shared broker may leave dead letters of their own gateways.)
    assert (
        db.execute(
            "SELECT count(*) FROM dead_letters WHERE gateway_code = %s", (patient.gateway_code,)
        ).fetchone()[0]
        == 0
    )

    # Housekeeping as the service runs it (its own thread may have refreshed the rollup
    # already): the rollup, then retention, with nothing expired.
    with psycopg.connect(app_url, autocommit=True) as conn:
        refresh_rollups(conn, backend="native")
        # On TimescaleDB it hands late windows to the owner's refresh job (migration 0013).
        conn.execute(
            "INSERT INTO rollup_late_windows (window_start, window_end) "
            "VALUES (now() - interval '1 hour', now())"
        )
        assert drop_expired(conn) == 0
    assert (
        db.execute(
            "SELECT sum(count) FROM observation_hourly WHERE patient_id = %s", (patient.patient_id,)
        ).fetchone()[0]
        == 3
    )

    engine = AlertsService(
        Settings(database_url=app_url, language="en"),
        tick=3600,
        coalesce=0.05,
        send_interval=0.1,
        health_port=None,
    )
    engine.start()
    try:
        assert engine.wait_listening()
        wait_for(lambda: engine.passes >= 1)
        [(severity,)] = wait_for(
            lambda: db.execute(
                "SELECT severity FROM alerts WHERE patient_id = %s AND rule = 'spo2_low'",
                (patient.patient_id,),
            ).fetchall()
        )
        assert severity == 2
        # Healthy: no worker (the sender neither, on its own connection) failed.
        assert engine.health()[0], engine.health()
    finally:
        engine.stop()

    app = create_app(app_url, public_url="http://testserver", language="en", twilio_auth_token="")
    with TestClient(app, follow_redirects=False) as client:
        login(client, NURSE, PASSWORD)
        page = client.get(f"/patients/{patient.patient_id}")
        assert page.status_code == 200, page.text
        assert patient.patient_code in page.text
        triage = client.get("/api/triage")
        assert triage.status_code == 200
        assert [item["patient_id"] for item in triage.json()] == [patient.patient_id]
        detail = client.get(f"/api/patients/{patient.patient_id}")
        assert detail.status_code == 200
    assert (
        db.execute("SELECT count(*) FROM audit_log WHERE actor_username = %s", (NURSE,)).fetchone()[
            0
        ]
        >= 1
    )


@pytest.mark.parametrize(
    "statement",
    [
        "DROP TABLE patients",
        "ALTER TABLE patients ADD COLUMN nickname text",
        "TRUNCATE alerts",
        "CREATE TABLE public.intruder (id int)",
        "CREATE FUNCTION public.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "UPDATE audit_log SET action = 'nothing happened'",
        "DELETE FROM audit_log",
        "DELETE FROM observations",
        "DELETE FROM rollup_late_windows",
        "UPDATE observations SET value = 0",
        "UPDATE storage_settings SET retention = interval '1 day'",
        "INSERT INTO schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')",
        "SELECT telemon_drop_expired_observations('infinity')",
        "SELECT telemon_create_observation_partitions(now(), now())",
        "SELECT telemon_apply_storage_policies(interval '1 day', interval '1 day')",
        "SELECT rolpassword FROM pg_authid",
    ],
)
def test_the_application_role_cannot(db, app_conn, statement: str) -> None:
    db.execute("INSERT INTO audit_log (action) VALUES ('login')")
    with pytest.raises(errors.InsufficientPrivilege):
        app_conn.execute(statement)


def test_partitions_are_reached_only_through_observations(db, app_conn) -> None:
    week = datetime(2031, 6, 2, tzinfo=UTC)
    assert (
        app_conn.execute(
            "SELECT telemon_ensure_observation_partitions(%s, %s)", (week, week)
        ).fetchone()[0]
        == 1
    )
    [partition] = db.execute(
        "SELECT c.relname, pg_get_userbyid(c.relowner) = current_user FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'observations'::regclass AND c.relname = 'observations_20310602'"
    ).fetchall()
    assert partition == ("observations_20310602", True)  # owned by the owner, not the app
    app_conn.execute(
        "INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, seq) "
        "VALUES (%s, 1, 1, 97, 1, 1)",
        (week,),
    )
    for statement in (
        "SELECT * FROM observations_20310602",
        "DELETE FROM observations_20310602",
        "DROP TABLE observations_20310602",
    ):
        with pytest.raises(errors.InsufficientPrivilege):
            app_conn.execute(statement)
    assert app_conn.execute("SELECT count(*) FROM observations").fetchone()[0] == 1


def test_the_application_role_applies_only_the_configured_retention(db, app_conn) -> None:
    retention = db.execute("SELECT retention FROM storage_settings").fetchone()[0]
    expired = datetime.now(UTC) - retention - timedelta(days=30)
    kept = datetime.now(UTC) - retention + timedelta(days=30)
    for week in (expired, kept):
        db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (week, week))
    assert app_conn.execute("SELECT telemon_apply_observation_retention()").fetchone()[0] == 1
    left = db.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'observations'::regclass"
    ).fetchone()[0]
    assert left == 1
