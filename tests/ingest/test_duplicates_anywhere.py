"""A redelivery is recognised by the statement that failed, not by the name of the table.

TimescaleDB reports a unique violation against a chunk (``_hyper_1_1_chunk``) or, against a
compressed batch, against no table at all. On the native path a partition renamed like a chunk
reproduces the first case with a real server and a real SQLSTATE 23505.
"""

from datetime import UTC, datetime, timedelta

import psycopg

from ingest.inbound import classify
from tests.database import scalar


def _rename_partitions_like_chunks(db: psycopg.Connection) -> list[str]:
    partitions = [
        row[0]
        for row in db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'observations'::regclass ORDER BY c.relname"
        )
    ]
    renamed = []
    for n, name in enumerate(partitions, start=1):
        chunk = f"_hyper_1_{n}_chunk"
        db.execute(f'ALTER TABLE "{name}" RENAME TO "{chunk}"')
        renamed.append(chunk)
    return renamed


def test_a_redelivery_into_a_partition_not_named_observations_is_a_duplicate(db, store, patient):
    message = classify(*patient.obs_message(patient.observations(50)))
    assert store.write([message]).stored == 50
    assert _rename_partitions_like_chunks(db)

    again = store.write([message])

    assert (again.stored, again.duplicates, again.rejected_total) == (0, 50, 0)
    assert scalar(db, "SELECT count(*) FROM observations") == 50
    assert scalar(db, "SELECT count(*) FROM dead_letters") == 0


def test_a_message_mixing_stored_and_new_observations_stores_the_new_ones(
    db, patient, start_ingest, broker, wait_for
):
    service = start_ingest()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    broker.publish_all([patient.obs_message(patient.observations(50, start=start))])
    wait_for(lambda: service.observations_stored == 50)
    assert _rename_partitions_like_chunks(db)

    # The gateway resends its backlog with 50 readings taken since: one message, half stored.
    broker.publish_all([patient.obs_message(patient.observations(100, start=start))])

    wait_for(lambda: service.observations_stored + service.duplicates_ignored >= 150)
    assert (service.observations_stored, service.duplicates_ignored) == (100, 50)
    # Retained status messages of other tests' gateways on this broker are dead letters of
    # their own: count ours only.
    ours = "SELECT count(*) FROM dead_letters WHERE gateway_code = %s"
    assert scalar(db, ours, patient.gateway_code) == 0
    assert service.telemetry.rejects.value(reason="store_error") == 0
    assert scalar(db, "SELECT count(DISTINCT seq) FROM observations") == 100


def test_a_unique_violation_outside_the_observations_copy_is_not_taken_for_a_duplicate(
    db, store, patient
):
    # A unique key the devices INSERT's ON CONFLICT (gateway_id, address) does not cover: the
    # violation comes from that statement and must surface, not be retried as a redelivery.
    db.execute("CREATE UNIQUE INDEX test_one_device_kind_per_gateway ON devices (gateway_id, kind)")
    try:
        first = patient.observations(1, device="AA:00:00:00:00:01")
        assert store.write([classify(*patient.obs_message(first))]).stored == 1
        second = patient.observations(1, first_seq=1, device="AA:00:00:00:00:02")
        try:
            store.write([classify(*patient.obs_message(second))])
        except psycopg.errors.UniqueViolation as exc:
            assert exc.diag.table_name == "devices"
        else:
            raise AssertionError("a unique violation on devices was swallowed")
    finally:
        db.execute("DROP INDEX test_one_device_kind_per_gateway")
    assert scalar(db, "SELECT count(*) FROM observations") == 1
