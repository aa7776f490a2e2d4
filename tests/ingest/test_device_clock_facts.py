"""Issue 19 through the real broker and ingest: what the gateway knows of a device's clock (it
keeps standard time all year; the zone and DST offset it declares) reaches the devices table, is
kept when a status says nothing of it (an older gateway), and replaced whole by a newer report."""

from datetime import UTC, datetime

from telemon.payload import DeviceHealth, GatewayStatus

THERMOMETER = "AA:BB:CC:00:27:01"
CUFF = "AA:BB:CC:00:27:02"
QUERY = (
    "SELECT address, clock_ignores_dst, clock_zone_min, clock_dst_min FROM devices "
    "WHERE gateway_id = %s ORDER BY address"
)


def test_clock_facts_are_stored_kept_and_replaced(db, patient, start_ingest, broker, wait_for):
    start_ingest()

    def publish(*devices: DeviceHealth) -> None:
        status = GatewayStatus(gateway_id=patient.gateway_code, state="online", devices=devices)
        broker.publish_all([(patient.status_topic, status.encode())])

    def stored_once(expected: list[tuple[object, ...]]) -> None:
        wait_for(lambda: db.execute(QUERY, (patient.gateway_id,)).fetchall() == expected)

    publish(
        DeviceHealth(device_id=THERMOMETER, kind="thermometer", clock_ignores_dst=True),
        # Set in New York and saying so: UTC-05:00, DST +1 h.
        DeviceHealth(device_id=CUFF, kind="blood_pressure", clock_zone_min=-300, clock_dst_min=60),
    )
    stored_once([(THERMOMETER, True, None, None), (CUFF, None, -300, 60)])

    # An older gateway's status says nothing of clocks: what was stored stays.
    older = GatewayStatus(
        gateway_id=patient.gateway_code,
        state="online",
        devices=(
            DeviceHealth(device_id=THERMOMETER, kind="thermometer", battery_pct=40),
            DeviceHealth(device_id=CUFF, kind="blood_pressure", battery_pct=70),
        ),
    )
    assert b"clock_" not in older.encode()
    broker.publish_all([(patient.status_topic, older.encode())])
    wait_for(
        lambda: (
            db.execute("SELECT battery_pct FROM devices WHERE address = %s", (CUFF,)).fetchone()
            == (70,)
        )
    )
    assert db.execute(QUERY, (patient.gateway_id,)).fetchall() == [
        (THERMOMETER, True, None, None),
        (CUFF, None, -300, 60),
    ]

    # The gateway set the thermometer's clock (what it learnt of the old one is forgotten); the
    # cuff is set to Rome's standard time by a phone and declares that now.
    publish(
        DeviceHealth(
            device_id=THERMOMETER,
            kind="thermometer",
            clock_set_at=datetime(2026, 7, 1, 8, 0, tzinfo=UTC),
            clock_set_from_s=-3600,
        ),
        DeviceHealth(device_id=CUFF, kind="blood_pressure", clock_zone_min=60, clock_dst_min=0),
    )
    stored_once([(THERMOMETER, None, None, None), (CUFF, None, 60, 0)])
