"""A database out of resources (SQLSTATE class 53) refuses writes with a reason; nothing is lost.

The errors come from the real server: a trigger raising ``disk_full`` on the observations
table, a role whose connection limit is reached, and ``RAISE ... USING ERRCODE``.
"""

import time

import psycopg
import pytest

from ingest.failures import classify_failure
from ingest.housekeeping import Housekeeper
from ingest.inbound import classify
from telemon.database import DatabaseUnavailable, connect
from tests.database import scalar
from tests.http import local_get


def _server_error(db: psycopg.Connection, condition: str) -> psycopg.Error:
    try:
        db.execute(f"DO $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '{condition}'; END $$")
    except psycopg.Error as exc:
        return exc
    raise AssertionError(f"the server raised no {condition}")


@pytest.mark.parametrize(
    ("condition", "sqlstate", "kind"),
    [
        ("disk_full", "53100", "resources"),
        ("out_of_memory", "53200", "resources"),
        ("too_many_connections", "53300", "resources"),
        ("configuration_limit_exceeded", "53400", "resources"),
        ("deadlock_detected", "40P01", "conflict"),
        ("serialization_failure", "40001", "conflict"),
        ("undefined_table", "42P01", "unexpected"),
    ],
)
def test_server_errors_are_classified_by_their_sqlstate_class(db, condition, sqlstate, kind):
    failure = classify_failure(_server_error(db, condition))
    assert failure.kind == kind
    assert failure.reason.startswith(sqlstate)
    assert failure.refused == (kind == "resources")


def test_a_role_over_its_connection_limit_is_a_connection_failure_with_its_reason(db, database_url):
    db.execute("DROP ROLE IF EXISTS telemon_test_no_connections")
    db.execute("CREATE ROLE telemon_test_no_connections LOGIN CONNECTION LIMIT 0")
    try:
        url = psycopg.conninfo.make_conninfo(database_url, user="telemon_test_no_connections")
        with pytest.raises(DatabaseUnavailable) as raised:
            connect(url)
    finally:
        db.execute("DROP ROLE telemon_test_no_connections")
    failure = classify_failure(raised.value)
    # At connect time libpq gives no SQLSTATE: retried with the connection's back-off, and the
    # reason is shown on /healthz.
    assert failure.kind == "connection"
    assert "too many connections" in failure.reason


def _install_disk_full(db: psycopg.Connection) -> None:
    """Every row written to observations fails as on a full disk (SQLSTATE 53100)."""
    db.execute(
        "CREATE FUNCTION test_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'could not extend file: No space left on device' "
        "USING ERRCODE = 'disk_full'; END $$"
    )
    db.execute(
        "CREATE TRIGGER test_disk_full BEFORE INSERT ON observations "
        "FOR EACH ROW EXECUTE FUNCTION test_disk_full()"
    )


def _remove_disk_full(db: psycopg.Connection) -> None:
    db.execute("DROP TRIGGER test_disk_full ON observations")
    db.execute("DROP FUNCTION test_disk_full()")


def test_a_full_disk_is_refused_with_its_reason_and_nothing_is_lost(
    db, patient, start_ingest, broker, wait_for
):
    _install_disk_full(db)
    try:
        service = start_ingest()
        port = service.metrics_port
        broker.publish_all([patient.obs_message(patient.observations(20))])

        status, text = wait_for(
            lambda: (r := local_get(port, "/healthz"))[1].count("refusing") and r
        )
        assert status == 503
        assert "refusing writes (53100 DiskFull: could not extend file" in text
        _, metrics = local_get(port, "/metrics")
        assert "telemon_ingest_database_refusing 1" in metrics
        # Tried again with a back-off, never dead-lettered, never acknowledged.
        wait_for(lambda: service.telemetry.store_errors.value(kind="resources") >= 2)
        assert service.telemetry.store_errors.value(kind="connection") == 0
        assert service.observations_stored == 0
        assert service.telemetry.rejects.value(reason="store_error") == 0
        ours = "SELECT count(*) FROM dead_letters WHERE gateway_code = %s"
        assert scalar(db, ours, patient.gateway_code) == 0
    finally:
        _remove_disk_full(db)

    wait_for(lambda: service.observations_stored == 20, timeout=30)
    assert scalar(db, "SELECT count(*) FROM observations") == 20
    assert scalar(db, ours, patient.gateway_code) == 0
    assert local_get(port, "/healthz") == (200, "ok: broker connected, database up\n")
    assert "telemon_ingest_database_refusing 0" in local_get(port, "/metrics")[1]


def test_a_batch_refused_at_shutdown_is_left_to_the_next_session_and_stored_then(
    db, patient, start_ingest, broker, wait_for
):
    _install_disk_full(db)
    try:
        service = start_ingest()
        broker.publish_all([patient.obs_message(patient.observations(20))])
        wait_for(lambda: service.telemetry.store_errors.value(kind="resources") >= 1)
        started = time.monotonic()
        service.stop(timeout=10)
        # Given up at once, not retried until the deadline: a full disk will not clear in 10 s.
        assert time.monotonic() - started < 5
        assert service.observations_stored == 0
    finally:
        _remove_disk_full(db)

    # Not acknowledged: the broker delivers the message again to the same session.
    successor = start_ingest(client_id=service.client_id)
    wait_for(lambda: successor.observations_stored == 20, timeout=30)
    ours = "SELECT count(*) FROM dead_letters WHERE gateway_code = %s"
    assert scalar(db, ours, patient.gateway_code) == 0


def test_housekeeping_refused_for_want_of_resources_keeps_the_rollup_queued(
    db, store, patient, database_url
):
    store.write([classify(*patient.obs_message(patient.observations(5)))])
    db.execute(
        "CREATE FUNCTION test_rollup_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'could not extend file: No space left on device' "
        "USING ERRCODE = 'disk_full'; END $$"
    )
    db.execute(
        "CREATE TRIGGER test_rollup_disk_full BEFORE INSERT ON observation_hourly "
        "FOR EACH ROW EXECUTE FUNCTION test_rollup_disk_full()"
    )
    housekeeper = Housekeeper(database_url)
    try:
        housekeeper.run_once(retention=False)
        assert housekeeper.failure is not None and housekeeper.failure.refused
        assert housekeeper.failure.reason.startswith("53100 DiskFull: could not extend file")
        assert scalar(db, "SELECT count(*) FROM ingest_rollup_queue") == 1
    finally:
        db.execute("DROP TRIGGER test_rollup_disk_full ON observation_hourly")
        db.execute("DROP FUNCTION test_rollup_disk_full()")

    housekeeper.run_once(retention=False)
    housekeeper.stop()
    assert housekeeper.healthy
    assert scalar(db, "SELECT count(*) FROM ingest_rollup_queue") == 0
    assert scalar(db, "SELECT sum(count) FROM observation_hourly") == 5
