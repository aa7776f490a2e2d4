"""The write path against the real database: stored once, rejected with reasons, nothing lost."""

import json
import select
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg

from ingest.deadletters import MAX_STORED_PAYLOAD, STORE_ERROR
from ingest.inbound import classify
from telemon.store.notify import CHANNEL, parse_notification
from tests.database import scalar


def test_observations_are_stored_once_and_redelivery_counts_as_duplicates(db, store, patient):
    message = classify(*patient.obs_message(patient.observations(50)))
    first = store.write([message])
    assert (first.stored, first.duplicates, first.rejected_total) == (50, 0, 0)
    assert first.patient_ids == {patient.patient_id}
    again = store.write([message, message])
    assert (again.stored, again.duplicates) == (0, 100)
    rows = db.execute(
        "SELECT count(*), count(DISTINCT seq), min(patient_id), min(gateway_id), min(metric_id) "
        "FROM observations"
    ).fetchone()
    assert rows == (50, 50, patient.patient_id, patient.gateway_id, 1)


def test_unknown_device_of_a_known_gateway_is_registered_on_first_sight(db, store, patient):
    obs = patient.observations(3, metric="systolic", value=130, unit="mm[Hg]", device="BP:01")
    store.write([classify(*patient.obs_message(obs))])
    device_id, kind = db.execute(
        "SELECT id, kind FROM devices WHERE gateway_id = %s AND address = 'BP:01'",
        (patient.gateway_id,),
    ).fetchone()
    assert kind == "blood_pressure"
    assert scalar(db, "SELECT count(*) FROM observations WHERE device_id = %s", device_id) == 3


def test_unknown_gateway_goes_to_dead_letters_whole(db, store, enroll):
    stranger = enroll()
    db.execute("DELETE FROM gateways WHERE id = %s", (stranger.gateway_id,))
    topic, payload = stranger.obs_message(stranger.observations(4))
    result = store.write([classify(topic, payload)])
    assert (result.stored, dict(result.rejected)) == (0, {"unknown_gateway": 1})
    row = db.execute(
        "SELECT source, topic, gateway_code, item_index, reason, payload, payload_size "
        "FROM dead_letters"
    ).fetchone()
    assert row == (
        "mqtt",
        topic,
        stranger.gateway_code,
        None,
        "unknown_gateway",
        payload,
        len(payload),
    )


def test_patient_not_paired_rejects_the_item_and_keeps_its_neighbours(db, store, enroll):
    mine, other = enroll(), enroll()
    observations = mine.observations(3)
    intruder = replace(other.observations(1, first_seq=1)[0], gateway_id=mine.gateway_code)
    observations[1] = intruder
    result = store.write([classify(*mine.obs_message(observations))])
    assert (result.stored, dict(result.rejected)) == (2, {"patient_not_paired": 1})
    index, reason, detail, payload = db.execute(
        "SELECT item_index, reason, detail, payload FROM dead_letters"
    ).fetchone()
    assert (index, reason) == (1, "patient_not_paired")
    assert other.patient_code in detail and mine.patient_code in detail
    assert json.loads(payload)["patient_id"] == other.patient_code
    assert [r[0] for r in db.execute("SELECT seq FROM observations ORDER BY seq")] == [0, 2]


def test_every_kind_of_bad_item_is_dead_lettered_with_its_reason(db, store, patient):
    now = datetime.now(UTC)
    good = patient.observations(1)[0].wire_item()
    items = [
        good,
        {**good, "seq": 1, "metric": "blood_alcohol"},
        {**good, "seq": 2, "unit": "mmHg"},
        {**good, "seq": 3, "value": 12.0},
        {**good, "seq": 4, "measured_at": (now + timedelta(days=1)).isoformat()},
        {**good, "seq": 5, "measured_at": "1970-01-01T00:00:00Z"},
        {**good, "seq": -6},
    ]
    payload = json.dumps(
        {"v": 1, "gateway_id": patient.gateway_code, "observations": items}
    ).encode()
    result = store.write([classify(patient.obs_topic, payload)])
    assert result.stored == 1
    rows = db.execute("SELECT item_index, reason FROM dead_letters ORDER BY item_index").fetchall()
    assert rows == [
        (1, "unknown_metric"),
        (2, "wrong_unit"),
        (3, "out_of_range"),
        (4, "future_timestamp"),
        (5, "implausible_timestamp"),
        (6, "invalid_observation"),
    ]


def test_unusable_messages_are_dead_lettered_beside_a_good_one(db, store, patient):
    good = classify(*patient.obs_message(patient.observations(2)))
    bad = [
        classify(patient.obs_topic, b'{"v": 1, "gateway_id": '),
        classify(patient.obs_topic, b'{"v": 9, "gateway_id": "x", "observations": []}'),
        classify(patient.obs_topic, b'{"v": 1, "observations": []}'),
        classify("telemon/v1/gw/someone-else/obs", good.payload),
        classify(patient.obs_topic, b"x" * (600 * 1024)),
    ]
    result = store.write([bad[0], good, *bad[1:]])
    assert result.stored == 2
    rows = db.execute(
        "SELECT reason, payload_size, payload_truncated, length(payload) FROM dead_letters "
        "ORDER BY id"
    ).fetchall()
    assert [r[0] for r in rows] == [
        "malformed_json",
        "unsupported_version",
        "invalid_schema",
        "topic_mismatch",
        "payload_too_large",
    ]
    assert rows[-1][1:] == (600 * 1024, True, MAX_STORED_PAYLOAD)


def test_a_message_the_database_refuses_is_isolated_as_a_dead_letter(db, store, patient):
    good = classify(*patient.obs_message(patient.observations(2)))
    # Validation now refuses a NUL in a context value; the store must still cope with whatever
    # validation misses, so the decoded message is poisoned after decoding.
    poisoned = classify(*patient.obs_message(patient.observations(1, first_seq=10)))
    (item,) = poisoned.decoded.observations
    poisoned.decoded.observations[0] = item.model_copy(update={"context": {"note": "a\0b"}})
    try:
        store.write([good, poisoned])
    except psycopg.Error:
        result = store.write_isolated([good, poisoned])
    else:
        raise AssertionError("PostgreSQL accepted a NUL character in jsonb")
    assert (result.stored, dict(result.rejected)) == (2, {STORE_ERROR: 1})
    assert scalar(db, "SELECT count(*) FROM dead_letters WHERE reason = %s", STORE_ERROR) == 1


def test_partitions_are_created_for_old_and_new_weeks_and_rollup_is_queued(db, store, patient):
    old = datetime(2024, 3, 6, 10, 0, tzinfo=UTC)
    messages = [
        classify(*patient.obs_message(patient.observations(2, start=old))),
        classify(*patient.obs_message(patient.observations(2, first_seq=2))),
    ]
    assert store.write(messages).stored == 4
    assert scalar(db, "SELECT count(*) FROM ingest_rollup_queue") == 1
    first_at, last_at = db.execute("SELECT first_at, last_at FROM ingest_rollup_queue").fetchone()
    assert first_at == old and last_at > old + timedelta(days=300)


def test_write_survives_retention_dropping_a_remembered_partition(db, store, patient):
    store.write([classify(*patient.obs_message(patient.observations(1)))])
    db.execute("SELECT telemon_drop_expired_observations('infinity')")
    assert (
        store.write([classify(*patient.obs_message(patient.observations(1, first_seq=1)))]).stored
        == 1
    )


def test_notify_is_sent_on_commit_with_the_touched_patients(db, store, enroll, database_url):
    a, b = enroll(), enroll()
    with psycopg.connect(database_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        store.write(
            [
                classify(*a.obs_message(a.observations(2))),
                classify(*b.obs_message(b.observations(1))),
            ]
        )
        store.write([classify(*a.obs_message(a.observations(2)))])  # duplicates: nothing new
        select.select([listener.pgconn.socket], [], [], 2)
        notes = list(listener.notifies(timeout=0.5, stop_after=5))
    assert [parse_notification(n.payload) for n in notes] == [sorted([a.patient_id, b.patient_id])]


def test_a_message_twice_in_one_new_batch_is_stored_once(db, store, patient):
    message = classify(*patient.obs_message(patient.observations(20)))
    result = store.write([message, message])
    assert (result.stored, result.duplicates) == (20, 20)
    assert result.patient_ids == {patient.patient_id}
    assert scalar(db, "SELECT count(*) FROM observations") == 20
    assert scalar(db, "SELECT count(*) FROM ingest_rollup_queue") == 1


def test_single_reading_messages_of_many_gateways_take_their_own_gateways_devices(
    db, store, enroll
):
    # Every gateway names its oximeter alike; a batch of one-reading messages from all of them
    # must attribute each reading to its own gateway's device, and only the device returned
    # from one of them rejects that gateway's reading (a batch's devices are grouped by gateway).
    homes = [enroll() for _ in range(6)]
    address = "AA:BB:CC:00:00:01"
    for home in homes:
        store.write([classify(*home.obs_message(home.observations(1, device=address)))])
    returned = homes[2]
    db.execute(
        "UPDATE devices SET unpaired_at = now() - interval '1 hour' WHERE gateway_id = %s",
        (returned.gateway_id,),
    )
    now = datetime.now(UTC).replace(microsecond=0)
    batch = [
        classify(*home.obs_message(home.observations(1, first_seq=1, start=now, device=address)))
        for home in homes
    ]
    result = store.write(batch)
    assert (result.stored, dict(result.rejected)) == (5, {"device_not_paired": 1})
    assert result.patient_ids == {h.patient_id for h in homes if h is not returned}
    rows = db.execute(
        "SELECT o.gateway_id, d.gateway_id, d.address FROM observations o "
        "JOIN devices d ON d.id = o.device_id WHERE o.seq = 1"
    ).fetchall()
    assert sorted(rows) == sorted(
        (h.gateway_id, h.gateway_id, address) for h in homes if h is not returned
    )
    assert scalar(
        db, "SELECT gateway_code FROM dead_letters WHERE reason = 'device_not_paired'"
    ) == (returned.gateway_code)
