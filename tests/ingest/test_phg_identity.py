"""Issue 19 through the real broker and ingest: the gateway's EUI-64 and each device's Device
Information reach the store; the kit's admin-entered names are kept (never replaced, never
emptied by a status without them), and the serial the device reports is kept beside the kit's."""

from telemon.payload import DeviceHealth, GatewayStatus

GATEWAY_EUI64 = "02-4D-53-FF-FE-00-19-01"
OXIMETER = "AA:BB:CC:00:19:11"
SCALE = "AA:BB:CC:00:19:12"
QUERY = (
    "SELECT address, system_id, manufacturer, model, serial_number, reported_serial_number, "
    "firmware, identity_reported_at IS NOT NULL FROM devices WHERE gateway_id = %s "
    "ORDER BY address"
)


def test_system_ids_and_device_information_are_stored_without_overwriting_the_kit(
    db, patient, start_ingest, broker, wait_for
):
    # The kit as an admin entered it: the oximeter's maker and serial, no model.
    db.execute(
        "INSERT INTO devices (gateway_id, address, kind, manufacturer, serial_number) "
        "VALUES (%s, %s, 'pulse_oximeter', 'Nonin', 'SN-KIT-1')",
        (patient.gateway_id, OXIMETER),
    )
    start_ingest()
    devices = [
        DeviceHealth(
            device_id=OXIMETER,
            kind="pulse_oximeter",
            system_id="02-4D-53-FF-FE-AA-00-11",
            manufacturer_name="Medisim",
            model_number="MS-PO60",
            serial_number="PO6000191100",
            firmware_revision="2.1.4",
        ),
        # Not in the kit: registered with what it says it is.
        DeviceHealth(
            device_id=SCALE,
            kind="weight_scale",
            manufacturer_name="Medisim",
            model_number="MS-BS444",
            serial_number="BS44400191200",
            firmware_revision="1.0.9",
        ),
    ]
    status = GatewayStatus(
        gateway_id=patient.gateway_code, state="online", system_id=GATEWAY_EUI64, devices=devices
    )
    broker.publish_all([(patient.status_topic, status.encode())])
    wait_for(lambda: len(db.execute(QUERY, (patient.gateway_id,)).fetchall()) == 2)
    wait_for(lambda: db.execute(QUERY, (patient.gateway_id,)).fetchall()[0][1] is not None)

    assert db.execute(QUERY, (patient.gateway_id,)).fetchall() == [
        # The kit's maker and serial stay; its empty model is filled; the device's own serial
        # is kept apart (it differs: the equipment page shows the mismatch).
        (
            OXIMETER,
            "02-4D-53-FF-FE-AA-00-11",
            "Nonin",
            "MS-PO60",
            "SN-KIT-1",
            "PO6000191100",
            "2.1.4",
            True,
        ),
        (SCALE, None, "Medisim", "MS-BS444", "BS44400191200", "BS44400191200", "1.0.9", True),
    ]
    assert db.execute(
        "SELECT system_id FROM gateways WHERE id = %s", (patient.gateway_id,)
    ).fetchone() == (GATEWAY_EUI64,)

    # An older gateway's status, without any of it: nothing is emptied, the battery is taken.
    older = GatewayStatus(
        gateway_id=patient.gateway_code,
        state="online",
        devices=[DeviceHealth(device_id=OXIMETER, kind="pulse_oximeter", battery_pct=55)],
    )
    payload = older.encode()
    assert b"system_id" not in payload and b"serial_number" not in payload
    broker.publish_all([(patient.status_topic, payload)])
    wait_for(
        lambda: (
            db.execute("SELECT battery_pct FROM devices WHERE address = %s", (OXIMETER,)).fetchone()
            == (55,)
        )
    )
    assert db.execute(QUERY, (patient.gateway_id,)).fetchall()[0][1:] == (
        "02-4D-53-FF-FE-AA-00-11",
        "Nonin",
        "MS-PO60",
        "SN-KIT-1",
        "PO6000191100",
        "2.1.4",
        True,
    )
    assert db.execute(
        "SELECT system_id FROM gateways WHERE id = %s", (patient.gateway_id,)
    ).fetchone() == (GATEWAY_EUI64,)
