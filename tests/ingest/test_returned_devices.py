"""Returned and swapped-out devices (dashboard's kit) against the real store and database: what
such a device measures after it left the patient is not the patient's; what it measured before
(queued in the gateway's outbox) still is; a device paired again reuses its row."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dashboard import kit
from dashboard.authz import Principal
from ingest.inbound import classify
from tests.database import scalar
from tests.http import local_get

CUFF = "AA:BB:CC:00:00:0B"
NEW_CUFF = "AA:BB:CC:00:00:0C"
OXIMETER = "AA:BB:CC:00:00:01"


@pytest.fixture
def admin(db: psycopg.Connection) -> Principal:
    staff_id = db.execute(
        "INSERT INTO staff (username, display_name, role) VALUES ('kit.admin', 'Kit Admin', "
        "'admin') ON CONFLICT (username) DO UPDATE SET role = 'admin' RETURNING id"
    ).fetchone()[0]
    return Principal(staff_id, "kit.admin", "Kit Admin", "admin", "en", "csrf", None)


def _cuff(patient, seq: int, at: datetime, device: str = CUFF):
    return patient.observations(
        1, first_seq=seq, start=at, metric="systolic", value=131, unit="mm[Hg]", device=device
    )


def _device_id(db, gateway_id: int, address: str) -> int:
    return db.execute(
        "SELECT id FROM devices WHERE gateway_id = %s AND address = %s", (gateway_id, address)
    ).fetchone()[0]


def test_readings_of_a_returned_device_are_rejected_and_their_neighbours_kept(
    db, store, patient, admin
):
    now = datetime.now(UTC).replace(microsecond=0)
    returned_at = now - timedelta(minutes=30)
    store.write([classify(*patient.obs_message(_cuff(patient, 0, now - timedelta(hours=2))))])
    cuff_id = _device_id(db, patient.gateway_id, CUFF)
    kit.return_device(db, admin, patient.patient_id, cuff_id, "broken cuff", returned_at)

    message = [
        *_cuff(patient, 1, now - timedelta(minutes=10)),  # measured after the return
        *patient.observations(1, first_seq=2, start=now - timedelta(minutes=9), device=OXIMETER),
        *_cuff(patient, 3, now - timedelta(minutes=40)),  # before it: from the gateway's outbox
    ]
    result = store.write([classify(*patient.obs_message(message))])

    assert (result.stored, dict(result.rejected)) == (2, {"device_not_paired": 1})
    index, reason, detail, payload = db.execute(
        "SELECT item_index, reason, detail, payload FROM dead_letters"
    ).fetchone()
    assert (index, reason) == (0, "device_not_paired")
    assert CUFF in detail and patient.gateway_code in detail and "returned" in detail
    assert json.loads(payload)["seq"] == 1
    stored = db.execute("SELECT seq, device_id FROM observations ORDER BY seq").fetchall()
    oximeter_id = _device_id(db, patient.gateway_id, OXIMETER)
    assert stored == [(0, cuff_id), (2, oximeter_id), (3, cuff_id)]


def test_after_a_swap_the_old_cuff_is_rejected_and_the_new_one_stored(db, store, patient, admin):
    now = datetime.now(UTC).replace(microsecond=0)
    store.write([classify(*patient.obs_message(_cuff(patient, 0, now - timedelta(hours=2))))])
    old_id = _device_id(db, patient.gateway_id, CUFF)
    new = kit.DeviceForm("blood_pressure", NEW_CUFF, "M3", "Omron", "SN-2", None)
    new_id = kit.swap_device(
        db, admin, patient.patient_id, old_id, new, "cuff leaks", now - timedelta(minutes=30)
    )

    message = [
        *_cuff(patient, 1, now - timedelta(minutes=5)),
        *_cuff(patient, 2, now - timedelta(minutes=4), device=NEW_CUFF),
    ]
    result = store.write([classify(*patient.obs_message(message))])

    assert (result.stored, dict(result.rejected)) == (1, {"device_not_paired": 1})
    assert db.execute("SELECT seq, device_id FROM observations WHERE seq > 0").fetchall() == [
        (2, new_id)
    ]
    # The old cuff's history is still the patient's.
    assert scalar(db, "SELECT count(*) FROM observations WHERE device_id = %s", old_id) == 1


def test_a_device_paired_again_reuses_its_row_and_is_accepted(db, store, patient, admin):
    now = datetime.now(UTC).replace(microsecond=0)
    store.write([classify(*patient.obs_message(_cuff(patient, 0, now - timedelta(hours=2))))])
    cuff_id = _device_id(db, patient.gateway_id, CUFF)
    kit.return_device(db, admin, patient.patient_id, cuff_id, "holiday", now - timedelta(hours=1))
    refused = store.write(
        [classify(*patient.obs_message(_cuff(patient, 1, now - timedelta(minutes=50))))]
    )
    assert dict(refused.rejected) == {"device_not_paired": 1}

    again = kit.DeviceForm("blood_pressure", CUFF, None, None, None, None)
    repaired = kit.assign_device(
        db, admin, patient.patient_id, patient.gateway_id, again, now - timedelta(minutes=20)
    )
    result = store.write(
        [classify(*patient.obs_message(_cuff(patient, 2, now - timedelta(minutes=5))))]
    )

    assert repaired == cuff_id
    assert (result.stored, result.rejected_total) == (1, 0)
    assert db.execute("SELECT seq, device_id FROM observations ORDER BY seq").fetchall() == [
        (0, cuff_id),
        (2, cuff_id),
    ]


def test_the_service_counts_the_rejection_where_operators_look(
    db, patient, admin, start_ingest, broker, wait_for
):
    """End to end on the broker: the dead letter and the rejects metric, by reason."""
    service = start_ingest()
    now = datetime.now(UTC).replace(microsecond=0)
    broker.publish_all([patient.obs_message(_cuff(patient, 0, now - timedelta(hours=2)))])
    wait_for(lambda: scalar(db, "SELECT count(*) FROM observations") == 1)
    cuff_id = _device_id(db, patient.gateway_id, CUFF)
    kit.return_device(db, admin, patient.patient_id, cuff_id, "returned", now - timedelta(hours=1))
    message = [
        *_cuff(patient, 1, now - timedelta(minutes=5)),
        *patient.observations(1, first_seq=2, start=now - timedelta(minutes=4), device=OXIMETER),
    ]
    broker.publish_all([patient.obs_message(message)])

    reason = "SELECT reason FROM dead_letters WHERE gateway_code = %s"
    wait_for(lambda: db.execute(reason, (patient.gateway_code,)).fetchall() != [])
    wait_for(lambda: scalar(db, "SELECT count(*) FROM observations") == 2)
    assert db.execute(reason, (patient.gateway_code,)).fetchall() == [("device_not_paired",)]
    # Counted just after the commit that stored the dead letter.
    line = 'telemon_ingest_rejects_total{reason="device_not_paired"} 1'
    wait_for(lambda: line in local_get(service.metrics_port, "/metrics")[1])


def _status(patient, devices: list[dict]) -> tuple[str, bytes]:
    """A status message with ``devices`` as they travel (timestamps as ISO text)."""
    status = {"v": 1, "gateway_id": patient.gateway_code, "state": "online", "devices": devices}
    return patient.status_topic, json.dumps(status).encode()


def test_status_of_a_returned_device_leaves_the_equipment_as_returned(db, store, patient, admin):
    """The gateway still hears a returned cuff until it is switched off: its battery and last
    seen are not the patient's equipment any more; the oximeter's, in the same status, are."""
    now = datetime.now(UTC).replace(microsecond=0)
    store.write([classify(*patient.obs_message(_cuff(patient, 0, now - timedelta(hours=2))))])
    store.write(
        [
            classify(
                *_status(
                    patient,
                    [{"device_id": CUFF, "kind": "blood_pressure", "battery_pct": 80}],
                )
            )
        ]
    )
    cuff_id = _device_id(db, patient.gateway_id, CUFF)
    kit.return_device(db, admin, patient.patient_id, cuff_id, "broken cuff", now)
    before = db.execute(
        "SELECT battery_pct, rssi, last_seen_at, unpaired_at FROM devices WHERE id = %s",
        (cuff_id,),
    ).fetchone()

    later = now + timedelta(minutes=5)
    result = store.write(
        [
            classify(
                *_status(
                    patient,
                    [
                        {"device_id": OXIMETER, "kind": "pulse_oximeter", "battery_pct": 55},
                        {
                            "device_id": CUFF,
                            "kind": "blood_pressure",
                            "battery_pct": 12,
                            "rssi": -60,
                            "last_seen_at": later.isoformat(),
                        },
                    ],
                )
            )
        ]
    )

    assert (result.statuses, dict(result.rejected)) == (1, {"device_not_paired": 1})
    after = db.execute(
        "SELECT battery_pct, rssi, last_seen_at, unpaired_at FROM devices WHERE id = %s",
        (cuff_id,),
    ).fetchone()
    assert after == before and before[0] == 80
    oximeter = db.execute(
        "SELECT battery_pct, unpaired_at FROM devices WHERE gateway_id = %s AND address = %s",
        (patient.gateway_id, OXIMETER),
    ).fetchone()
    assert oximeter == (55, None)
    assert db.execute(
        "SELECT online FROM gateways WHERE id = %s", (patient.gateway_id,)
    ).fetchone()[0]
    index, reason, detail, payload = db.execute(
        "SELECT item_index, reason, detail, payload FROM dead_letters"
    ).fetchone()
    assert (index, reason) == (1, "device_not_paired")
    assert CUFF in detail and patient.gateway_code in detail and "returned" in detail
    assert json.loads(payload)["battery_pct"] == 12

    # Paired again, its status is the patient's equipment once more.
    again = kit.DeviceForm("blood_pressure", CUFF, None, None, None, None)
    kit.assign_device(db, admin, patient.patient_id, patient.gateway_id, again, later)
    store.write(
        [
            classify(
                *_status(
                    patient, [{"device_id": CUFF, "kind": "blood_pressure", "battery_pct": 40}]
                )
            )
        ]
    )
    assert scalar(db, "SELECT battery_pct FROM devices WHERE id = %s", cuff_id) == 40


def test_the_service_dead_letters_a_returned_devices_status(
    db, patient, admin, start_ingest, broker, wait_for
):
    """End to end on the broker, as the gateway publishes its retained status."""
    start_ingest()
    now = datetime.now(UTC).replace(microsecond=0)
    broker.publish_all([patient.obs_message(_cuff(patient, 0, now - timedelta(hours=2)))])
    wait_for(lambda: scalar(db, "SELECT count(*) FROM observations") == 1)
    cuff_id = _device_id(db, patient.gateway_id, CUFF)
    kit.return_device(db, admin, patient.patient_id, cuff_id, "returned", now - timedelta(hours=1))
    broker.publish_all(
        [_status(patient, [{"device_id": CUFF, "kind": "blood_pressure", "battery_pct": 7}])]
    )
    reason = "SELECT reason, item_index FROM dead_letters WHERE gateway_code = %s"
    wait_for(lambda: db.execute(reason, (patient.gateway_code,)).fetchall() != [])
    assert db.execute(reason, (patient.gateway_code,)).fetchall() == [("device_not_paired", 0)]
    assert scalar(db, "SELECT battery_pct FROM devices WHERE id = %s", cuff_id) is None
