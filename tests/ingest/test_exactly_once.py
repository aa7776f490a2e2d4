"""Exactly once across what goes wrong: a broker disconnect, a killed process, two workers.

A batch is held mid-transaction by a lock the test takes on ``ingest_rollup_queue`` (every batch
writes to it), so that the failure hits while messages are received but not yet committed.
"""

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import psycopg

from ingest.inbound import classify
from telemon.mqtt import BrokerAddress, connect, new_client

REPO = Path(__file__).resolve().parents[2]


def _stored(db) -> tuple[int, int]:
    return db.execute(
        "SELECT count(*), count(DISTINCT (gateway_id, seq)) FROM observations"
    ).fetchone()


def _messages(patient, count, per_message=10, first=0):
    return [
        patient.obs_message(patient.observations(per_message, first_seq=first + i * per_message))
        for i in range(count)
    ]


@contextmanager
def _batches_held(database_url):
    """Hold every ingest transaction at its insert into the rollup queue until the block ends."""
    with psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE ingest_rollup_queue IN ACCESS EXCLUSIVE MODE")
        yield
        locker.commit()


_INGEST_BACKENDS = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND application_name = 'telemon-ingest'"
)


def _ingest_waiting_on_lock(db) -> bool:
    return bool(db.execute(_INGEST_BACKENDS + " AND wait_event_type = 'Lock'").fetchone()[0])


def test_forced_broker_disconnect_loses_and_duplicates_nothing(
    db, patient, start_ingest, broker, database_url, mqtt_url, wait_for
):
    service = start_ingest()
    before = _messages(patient, 10)
    with _batches_held(database_url):
        broker.publish_all(before)
        wait_for(lambda: _ingest_waiting_on_lock(db))
        # Another client takes over the session: the broker drops the service's connection and
        # hands the unacknowledged messages to the intruder, which leaves without acking them.
        address = BrokerAddress.parse(mqtt_url)
        intruder = new_client(address, service.client_id, manual_ack=True)
        connect(intruder, address, clean_start=False)
        for _ in range(20):
            intruder.loop(timeout=0.05)
        intruder.disconnect()
        wait_for(lambda: service.subscriber.generation >= 2 and service.subscriber.is_connected)
    after = _messages(patient, 10, first=1000)
    broker.publish_all(after)
    wait_for(lambda: _stored(db)[0] >= 200)
    wait_for(lambda: service.inbox.depth == (0, 0))
    assert _stored(db) == (200, 200)


def test_killed_mid_batch_then_restarted_stores_every_observation_once(
    db, patient, broker, ingest_settings, database_url, mqtt_url, wait_for, tmp_path
):
    client_id = f"crash-{patient.gateway_code}"
    env = {
        **os.environ,
        "TELEMON_DATABASE_URL": database_url,
        "TELEMON_MQTT_URL": mqtt_url,
        "TELEMON_INGEST_SHARED_GROUP": ingest_settings.ingest_shared_group,
        "TELEMON_INGEST_METRICS_PORT": "0",
        "TELEMON_INGEST_BATCH_MS": "50",
    }

    def spawn() -> subprocess.Popen:
        log = tmp_path / f"ingest-{len(list(tmp_path.iterdir()))}.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "console", "ingest", "--client-id", client_id],
                cwd=REPO,
                env=env,
                stderr=stderr,
            )
        # Subscribed once it says so; a first session would miss anything published earlier.
        wait_for(lambda: "metrics on port" in log.read_text() or process.poll() is not None)
        assert process.poll() is None, log.read_text()
        return process

    worker = spawn()
    try:
        broker.publish_all(_messages(patient, 20))
        wait_for(lambda: _stored(db)[0] == 200)
        with _batches_held(database_url):
            broker.publish_all(_messages(patient, 20, first=200))
            wait_for(lambda: _ingest_waiting_on_lock(db))
            worker.send_signal(signal.SIGKILL)
            assert worker.wait(10) == -signal.SIGKILL
            broker.publish_all(_messages(patient, 20, first=400))  # while no worker runs
        # The killed worker's transaction never committed.
        wait_for(lambda: not db.execute(_INGEST_BACKENDS).fetchone()[0])
        assert _stored(db) == (200, 200)

        worker = spawn()
        wait_for(lambda: _stored(db)[0] >= 600, timeout=30)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0
        assert _stored(db) == (600, 600)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        broker.forget_session(client_id)


def test_redelivery_of_a_committed_but_unacknowledged_message_is_harmless(
    db, patient, store, start_ingest, broker, wait_for
):
    message = patient.obs_message(patient.observations(25))
    store.write([classify(*message)])  # committed just before a crash, so never acknowledged
    service = start_ingest()
    broker.publish_all([message])
    wait_for(lambda: service.duplicates_ignored == 25)
    assert service.observations_stored == 0
    assert _stored(db) == (25, 25)


def test_two_shared_subscription_workers_store_every_observation_once(
    db, enroll, start_ingest, broker, wait_for
):
    first, second = start_ingest(), start_ingest()
    gateways = [enroll() for _ in range(4)]
    broker.publish_all([message for g in gateways for message in _messages(g, 15, per_message=20)])
    wait_for(lambda: _stored(db)[0] >= 1200)
    assert _stored(db) == (1200, 1200)
    assert first.observations_stored + second.observations_stored == 1200
    assert first.observations_stored > 0 and second.observations_stored > 0
    assert first.duplicates_ignored + second.duplicates_ignored == 0


def test_database_connection_lost_mid_batch_is_retried_without_loss(
    db, patient, start_ingest, broker, database_url, wait_for
):
    service = start_ingest()
    with _batches_held(database_url):
        broker.publish_all(_messages(patient, 10))
        wait_for(lambda: _ingest_waiting_on_lock(db))
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name = 'telemon-ingest' "
            "AND wait_event_type = 'Lock'"
        )
    wait_for(lambda: _stored(db)[0] >= 100)
    assert _stored(db) == (100, 100)
    assert service.telemetry.store_errors.value(kind="connection") >= 1
    assert service.health()[0]
