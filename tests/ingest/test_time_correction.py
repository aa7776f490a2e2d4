"""Issue 19 through the real broker and ingest: each reading's time record is stored beside it,
an older gateway's version 1 messages are still stored (with none), and the device clocks a
gateway reports reach the devices table the equipment page reads."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from telemon.payload import DeviceHealth, GatewayStatus
from telemon.time_correction import ClockSource, TimeBasis, TimeCorrection

CORRECTED = TimeCorrection(
    basis=TimeBasis.CORRECTED,
    device_time="2026-03-29T02:30:00",
    zone="Europe/Rome",
    utc_offset_min=60,
    dst=False,
    clock_offset_s=-2400,
    clock_source=ClockSource.CURRENT_TIME,
    applied_s=-2400,
)


def test_time_corrections_are_stored_and_version_1_is_still_accepted(
    db, patient, start_ingest, broker, wait_for
):
    service = start_ingest()
    corrected = [replace(o, time=CORRECTED) for o in patient.observations(2, first_seq=0)]
    topic, payload = patient.obs_message(corrected)
    assert json.loads(payload)["v"] == 2
    # An older gateway: version 1, items without "time".
    old = patient.observations(2, first_seq=2)
    _, v2 = patient.obs_message(old)
    v1 = json.loads(v2)
    v1["v"] = 1
    broker.publish_all([(topic, payload), (topic, json.dumps(v1).encode())])
    wait_for(lambda: service.observations_stored == 4)
    rows = db.execute("SELECT seq, time_correction FROM observations ORDER BY seq").fetchall()
    assert rows[0][1] == rows[1][1] == CORRECTED.wire()
    assert TimeCorrection.from_wire(rows[0][1]) == CORRECTED
    assert [r[1] for r in rows[2:]] == [None, None]


def test_device_clocks_from_the_status_reach_the_devices_table(
    db, patient, start_ingest, broker, wait_for
):
    start_ingest()
    set_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    devices = [
        DeviceHealth(
            device_id="AA:BB:CC:00:19:01",
            kind="thermometer",
            clock_skew_s=2,
            clock_set_at=set_at,
            clock_set_from_s=-2400,
        ),
        DeviceHealth(device_id="AA:BB:CC:00:19:02", kind="blood_pressure", clock_skew_s=7200),
    ]
    status = GatewayStatus(gateway_id=patient.gateway_code, state="online", devices=devices)
    broker.publish_all([(patient.status_topic, status.encode())])
    query = (
        "SELECT address, clock_skew_s, clock_set_at, clock_set_from_s FROM devices "
        "WHERE gateway_id = %s ORDER BY address"
    )
    wait_for(lambda: len(db.execute(query, (patient.gateway_id,)).fetchall()) == 2)
    assert db.execute(query, (patient.gateway_id,)).fetchall() == [
        ("AA:BB:CC:00:19:01", 2, set_at, -2400),
        ("AA:BB:CC:00:19:02", 7200, None, None),
    ]
    # A later status from the same gateway, the clock since drifted: the setting is remembered.
    devices[0] = replace(devices[0], clock_skew_s=5, clock_set_from_s=None)
    again = GatewayStatus(gateway_id=patient.gateway_code, state="online", devices=devices)
    broker.publish_all([(patient.status_topic, again.encode())])
    wait_for(
        lambda: db.execute(query, (patient.gateway_id,)).fetchall()[0][1:] == (5, set_at, -2400)
    )
