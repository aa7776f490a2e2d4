"""Issue 19 on the dashboard: what the gateway knows of a device's clock, as ingest stored it
from the gateway's status, in words on the equipment page and the device card: a clock that keeps
standard time all year, a clock kept in the zone and DST offset the device declares."""

from __future__ import annotations

from datetime import datetime

import psycopg
from fastapi.testclient import TestClient

from dashboard.i18n import translator
from dashboard.web import LOCAL_TZ
from ingest.inbound import StatusMessage
from ingest.presence import apply_status
from telemon.payload import DeviceHealth, GatewayStatus
from telemon.payload_schema import decode_status
from telemon.topics import Channel, topic
from tests.dashboard.conftest import World
from tests.dashboard.support import login

STANDARD_ALL_YEAR = (
    "Clock keeps standard time all year: readings in summer are corrected by one hour"
)
NEW_YORK = "Clock kept in the zone it declares: UTC-05:00, summer time +1 h"


def _report_clocks(db: psycopg.Connection) -> None:
    """GW-A's status as the gateway sends it, through ingest: its oximeter's clock keeps
    standard time all year; a thermometer set in New York says so; a cuff declares the local
    zone and DST in force now (nothing to look at); a scale's clock follows DST."""
    now = datetime.now(LOCAL_TZ)
    offset, dst = now.utcoffset(), now.dst()
    assert offset is not None and dst is not None
    local_dst = round(dst.total_seconds() / 60)
    local_zone = round(offset.total_seconds() / 60) - local_dst
    status = GatewayStatus(
        gateway_id="GW-A",
        state="online",
        devices=(
            DeviceHealth(device_id="AA:01", kind="pulse_oximeter", clock_ignores_dst=True),
            DeviceHealth(
                device_id="AA:02", kind="thermometer", clock_zone_min=-300, clock_dst_min=60
            ),
            DeviceHealth(
                device_id="AA:03",
                kind="blood_pressure",
                clock_zone_min=local_zone,
                clock_dst_min=local_dst,
            ),
            DeviceHealth(device_id="AA:04", kind="weight_scale", clock_ignores_dst=False),
        ),
    )
    status_topic = topic("GW-A", Channel.STATUS)
    payload = status.encode()
    applied = apply_status(
        db, StatusMessage(status_topic, payload, decode_status(status_topic, payload))
    )
    assert applied is not None


def test_clocks_read_right_but_showing_another_time_are_on_the_equipment_page(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    _report_clocks(db)
    login(client, "nurse.greco")
    page = client.get("/equipment").text
    section = page[page.index('id="device-clocks"') : page.index('id="serial-mismatches"')]
    assert STANDARD_ALL_YEAR in section
    assert NEW_YORK in section
    # The cuff keeps local time and the scale follows DST: nothing to explain.
    assert section.count("data-device-id") == 2
    assert "Blood pressure monitor" not in section and "scale" not in section.lower()


def test_the_device_card_says_each_clock_in_the_patients_language(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    _report_clocks(db)
    patient = world.patients["own"]
    login(client, "admin")
    for language in ("en", "it"):
        db.execute("UPDATE patients SET language = %s WHERE id = %s", (language, patient))
        card = client.get(f"/admin/patients/{patient}/card")
        assert card.status_code == 200
        t = translator(language)
        facts = card.text.count('class="clock-fact"')
        assert facts == 3  # the oximeter's, the thermometer's, the cuff's; the scale says none
        assert t("clocks.ignores_dst") in card.text.replace("&#39;", "'")
    it = card.text.replace("&#39;", "'")
    assert "L'orologio resta sull'ora solare tutto l'anno" in it
    assert "Orologio sul fuso orario che dichiara: UTC-05:00, ora legale +1 h" in it
