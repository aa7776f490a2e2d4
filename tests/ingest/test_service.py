"""The service end to end on the real broker and database."""

import json
from dataclasses import replace

import psycopg

from telemon.payload import DeviceHealth, GatewayStatus, offline_will
from telemon.store.notify import CHANNEL, parse_notification
from tests.database import scalar
from tests.http import local_get


def test_messages_are_stored_rejected_counted_and_exposed(
    db, patient, enroll, start_ingest, broker, wait_for
):
    service = start_ingest()
    stranger = enroll()
    db.execute("DELETE FROM gateways WHERE id = %s", (stranger.gateway_id,))
    messages = [patient.obs_message(patient.observations(10, first_seq=10 * i)) for i in range(5)]
    messages.append(stranger.obs_message(stranger.observations(3)))
    messages.append((patient.obs_topic, b"{not json"))
    messages.append(messages[0])  # redelivered by the gateway
    broker.publish_all(messages)

    ours = "SELECT reason FROM dead_letters WHERE gateway_code IN (%s, %s) ORDER BY reason"
    codes = (patient.gateway_code, stranger.gateway_code)
    wait_for(lambda: len(db.execute(ours, codes).fetchall()) == 2)
    wait_for(lambda: service.observations_stored + service.duplicates_ignored == 60)
    assert (service.observations_stored, service.duplicates_ignored) == (50, 10)
    assert scalar(db, "SELECT count(*) FROM observations") == 50
    assert db.execute(ours, codes).fetchall() == [("malformed_json",), ("unknown_gateway",)]
    # Other tests' gateways on this broker may add dead letters of their own.
    assert service.messages_rejected >= 2

    status, text = local_get(service.metrics_port, "/metrics")
    assert status == 200
    assert 'telemon_ingest_observations_total{outcome="stored"} 50' in text
    assert 'telemon_ingest_rejects_total{reason="malformed_json"}' in text
    assert "telemon_ingest_commit_seconds_count" in text
    assert "telemon_ingest_queue_observations 0" in text
    assert local_get(service.metrics_port, "/healthz") == (
        200,
        "ok: broker connected, database up\n",
    )


def test_healthz_is_503_when_the_broker_is_gone(start_ingest, wait_for):
    service = start_ingest()
    service.subscriber.stop()
    _, text = wait_for(lambda: (r := local_get(service.metrics_port, "/healthz"))[0] == 503 and r)
    assert "broker disconnected" in text


def test_new_observations_are_notified_after_commit(
    db, patient, start_ingest, broker, database_url, wait_for
):
    start_ingest()
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        broker.publish_all([patient.obs_message(patient.observations(5))])
        notes = []
        wait_for(lambda: notes.extend(listener.notifies(timeout=0.2, stop_after=1)) or notes)
    assert parse_notification(notes[0].payload) == [patient.patient_id]
    assert scalar(db, "SELECT count(*) FROM observations") == 5


def test_hourly_rollup_is_refreshed_by_housekeeping(db, patient, start_ingest, broker, wait_for):
    service = start_ingest()
    broker.publish_all([patient.obs_message(patient.observations(30, value=95.0))])
    wait_for(lambda: service.observations_stored == 30)
    service.stop()
    rows = db.execute(
        "SELECT patient_id, sum(count), min(min) FROM observation_hourly GROUP BY patient_id"
    ).fetchall()
    assert rows == [(patient.patient_id, 30, 95.0)]
    assert scalar(db, "SELECT count(*) FROM ingest_rollup_queue") == 0


def test_status_updates_presence_and_the_last_will_marks_offline(
    db, patient, start_ingest, broker, wait_for
):
    start_ingest()
    online = GatewayStatus(
        gateway_id=patient.gateway_code,
        state="online",
        version="1.4.2",
        outbox_depth=7,
        recoveries={"ble_reset": 2},
        devices=[
            DeviceHealth(device_id="OX:01", kind="pulse_oximeter", battery_pct=64, rssi=-70),
        ],
    )
    will = (patient.status_topic, offline_will(patient.gateway_code))
    gateway = broker.client(patient.gateway_code, will=will)
    gateway.publish(patient.status_topic, online.encode(), qos=1, retain=True).wait_for_publish(5)

    row = wait_for(
        lambda: db.execute(
            "SELECT online, last_seen_at IS NOT NULL, software_version, outbox_depth, recoveries, "
            "last_status->>'state' FROM gateways WHERE id = %s AND online",
            (patient.gateway_id,),
        ).fetchone()
    )
    assert row == (True, True, "1.4.2", 7, {"ble_reset": 2}, "online")
    assert db.execute(
        "SELECT kind, battery_pct, rssi FROM devices WHERE gateway_id = %s", (patient.gateway_id,)
    ).fetchall() == [("pulse_oximeter", 64, -70)]

    gateway.socket().close()  # the gateway vanishes without a DISCONNECT: the broker sends its will
    row = wait_for(
        lambda: db.execute(
            "SELECT online, offline_since IS NOT NULL, last_status FROM gateways "
            "WHERE id = %s AND NOT online",
            (patient.gateway_id,),
        ).fetchone()
    )
    assert row[:2] == (False, True)
    assert row[2] == json.loads(offline_will(patient.gateway_code))
    gateway.loop_stop()
    broker.clients.remove(gateway)
    # Clear the retained status; the service takes the empty payload as no news.
    broker.publish_all([(patient.status_topic, b"")], retain=True)


def test_status_of_an_unknown_gateway_is_dead_lettered(db, start_ingest, broker, wait_for):
    start_ingest()
    status = GatewayStatus(gateway_id="gw-nobody-knows", state="online")
    broker.publish_all([("telemon/v1/gw/gw-nobody-knows/status", status.encode())])
    wait_for(
        lambda: scalar(
            db,
            "SELECT count(*) FROM dead_letters WHERE gateway_code = 'gw-nobody-knows' "
            "AND reason = 'unknown_gateway'",
        )
    )


def test_devices_are_registered_only_from_readings_that_are_stored(
    db, enroll, start_ingest, broker, wait_for
):
    """Issue 15: the devices named in a rejected (unpaired) message were registered anyway."""
    start_ingest()
    mine, other = enroll(), enroll()
    # Readings of another patient sent under my gateway: a forgery, or a misconfigured gateway.
    foreign = [
        replace(o, gateway_id=mine.gateway_code)
        for o in other.observations(2, device="EE:EE:EE:00:00:01")
    ]
    own = mine.observations(1, first_seq=2, device="AA:AA:AA:00:00:01")
    stray = replace(
        other.observations(1, first_seq=3, device="EE:EE:EE:00:00:02")[0],
        gateway_id=mine.gateway_code,
    )
    broker.publish_all([mine.obs_message(foreign), mine.obs_message([*own, stray])])

    wait_for(
        lambda: (
            scalar(
                db,
                "SELECT count(*) FROM dead_letters WHERE gateway_code = %s "
                "AND reason = 'patient_not_paired'",
                mine.gateway_code,
            )
            == 3
        )
    )
    wait_for(lambda: scalar(db, "SELECT count(*) FROM observations") == 1)
    devices = db.execute(
        "SELECT address FROM devices WHERE gateway_id = %s", (mine.gateway_id,)
    ).fetchall()
    assert devices == [("AA:AA:AA:00:00:01",)]
