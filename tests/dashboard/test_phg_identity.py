"""Issue 19 on the dashboard: the gateway's and each device's system id and firmware on the kit
and the device card, and a device whose own serial is not the kit's on the equipment page."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from dashboard.i18n import translator
from tests.dashboard.conftest import World
from tests.dashboard.support import login

GATEWAY_EUI64 = "02-4D-53-FF-FE-00-00-0A"
OXIMETER_EUI64 = "02-4D-53-FF-FE-AA-00-01"


def _identities(db: psycopg.Connection) -> int:
    """GW-A reported: its oximeter says it is another unit; its thermometer is the kit's (the
    label is in lower case); its scale reported nothing yet."""
    gateway = db.execute(
        "UPDATE gateways SET system_id = %s WHERE code = 'GW-A' RETURNING id", (GATEWAY_EUI64,)
    ).fetchone()[0]
    db.execute(
        "UPDATE devices SET serial_number = 'SN-KIT-7', reported_serial_number = 'PO60AA0001', "
        "system_id = %s, firmware = '2.1.4', identity_reported_at = now() WHERE address = 'AA:01'",
        (OXIMETER_EUI64,),
    )
    db.execute(
        "INSERT INTO devices (gateway_id, address, kind, serial_number, reported_serial_number, "
        "firmware) VALUES (%s, 'AA:02', 'thermometer', 'ft95aa0002', 'FT95AA0002 ', '1.2.1'), "
        "(%s, 'AA:03', 'weight_scale', 'SN-SCALE', NULL, NULL)",
        (gateway, gateway),
    )
    return gateway


def test_a_device_that_is_not_the_kits_unit_is_on_the_equipment_page(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    _identities(db)
    login(client, "nurse.greco")
    page = client.get("/equipment").text
    section = page[page.index('id="serial-mismatches"') :]
    assert "Devices that are not the kit&#39;s unit" in section
    assert section.count("data-device-id") == 1  # the oximeter alone
    assert "SN-KIT-7" in section and "PO60AA0001" in section and OXIMETER_EUI64 in section
    assert "FT95AA0002" not in section and "SN-SCALE" not in section
    audited = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'devices.serial_mismatch.read'"
    ).fetchone()[0]
    assert audited == 1
    it = translator("it")
    assert it("identity.reported_serial") == "Numero di serie dal dispositivo"
    assert it("identity.mismatch_title") != translator("en")("identity.mismatch_title")


def test_the_kit_and_the_device_card_show_system_ids_and_firmware(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    _identities(db)
    patient = world.patients["own"]
    login(client, "admin")
    card = client.get(f"/admin/patients/{patient}/card")
    assert card.status_code == 200
    text = card.text
    assert GATEWAY_EUI64 in text and OXIMETER_EUI64 in text
    assert "2.1.4" in text and "1.2.1" in text
    # The oximeter's own serial beside the kit's; the thermometer's is the same unit.
    assert "SN-KIT-7" in text and "PO60AA0001" in text
    assert text.count('class="serial-mismatch"') == 1
    kit = client.get(f"/admin/patients/{patient}").text
    assert GATEWAY_EUI64 in kit and OXIMETER_EUI64 in kit and "PO60AA0001" in kit
