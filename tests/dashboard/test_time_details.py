"""Issue 19 on the dashboard: a reading's time correction in its details, device clocks on the
equipment page."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, replace
from datetime import datetime

import psycopg
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from dashboard.i18n import translator
from dashboard.time_notes import time_note
from dashboard.web import LOCAL_TZ
from telemon.time_correction import ClockSource, LocalTimeIssue, TimeBasis, TimeCorrection
from tests.dashboard.conftest import World
from tests.dashboard.support import login

CORRECTED = TimeCorrection(
    basis=TimeBasis.CORRECTED,
    device_time="2026-03-29T02:30:00",
    zone="Europe/Rome",
    utc_offset_min=60,
    dst=False,
    local_issue=LocalTimeIssue.GAP,
    clock_offset_s=-2400,
    clock_source=ClockSource.CURRENT_TIME,
    applied_s=-2400,
)


def test_a_readings_time_correction_shows_in_its_details(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    alert = world.alerts["own"]
    updated = db.execute(
        "UPDATE observations o SET time_correction = %s FROM alerts a "
        "WHERE a.id = %s AND o.patient_id = a.patient_id AND o.metric_id = a.metric_id "
        "AND date_trunc('second', o.measured_at) = (a.details->>'reading_at')::timestamptz",
        (Jsonb(CORRECTED.wire()), alert),
    ).rowcount
    assert updated == 1
    login(client, "nurse.greco")
    assert client.get(f"/api/alerts/{alert}").json()["reading_time"] == asdict(CORRECTED)
    page = client.get(f"/episodes/{world.episodes['own']}").text
    assert "device clock 40 min behind: corrected" in page
    assert "no such local time (clocks went forward): read as standard time" in page
    assert "device showed 29/03/2026 02:30" in page
    assert "read in Europe/Rome, UTC+01:00, standard time" in page
    # A reading taken as the device stamped it has nothing to say; the other findings' readings
    # (no record: stored before gateways sent one) neither.
    assert page.count("data-time-note") == 1


def test_the_readings_export_carries_each_readings_time_record(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    alert = world.alerts["own"]
    reading_at, received_at = db.execute(
        "UPDATE observations o SET time_correction = %s FROM alerts a "
        "WHERE a.id = %s AND o.patient_id = a.patient_id AND o.metric_id = a.metric_id "
        "AND date_trunc('second', o.measured_at) = (a.details->>'reading_at')::timestamptz "
        "RETURNING o.measured_at, o.received_at",
        (Jsonb(CORRECTED.wire()), alert),
    ).fetchone()
    login(client, "dr.rossi")
    day = reading_at.astimezone(LOCAL_TZ).date().isoformat()
    response = client.get(
        f"/patients/{world.patients['own']}/readings.csv", params={"from": day, "to": day}
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    (corrected,) = [r for r in rows if r["device_time"]]
    assert datetime.fromisoformat(corrected["time"]) == reading_at
    assert corrected["device_time"] == "2026-03-29T02:30:00"
    assert corrected["time_correction_s"] == "-2400" and corrected["time_basis"] == "corrected"
    if received_at is None:  # this world's readings were stored without one
        assert corrected["received_at"] == ""
    else:
        assert datetime.fromisoformat(corrected["received_at"]) == received_at
    # Readings stored without a record (older gateways) leave the four cells empty.
    assert all(r["time_basis"] == "" for r in rows if r is not corrected)


def test_time_notes_in_both_languages() -> None:
    italian = time_note(CORRECTED, translator("it"))
    assert italian[0] == "orologio del dispositivo indietro di 40 min: ora corretta"
    assert "letto in Europe/Rome, UTC+01:00, ora solare" in italian
    as_sent = replace(CORRECTED, basis=TimeBasis.DEVICE, applied_s=0, local_issue=None)
    assert time_note(as_sent, translator("en")) == []
    reset = TimeCorrection(
        basis=TimeBasis.CORRECTED, device_time="2000-01-01T00:10:00", applied_s=-815_000_000
    )
    assert time_note(reset, translator("en"))[0] == "device clock 9.433 days behind: corrected"


def test_a_stamp_read_in_the_zone_the_device_declares_says_so() -> None:
    declared = TimeCorrection(
        basis=TimeBasis.CORRECTED,
        device_time="2026-07-01T06:00:00",
        device_zone_min=-300,
        device_dst_min=60,
        utc_offset_min=-240,
        dst=True,
        applied_s=-1200,
    )
    notes = time_note(declared, translator("it"))
    assert notes[-1] == "letto nel fuso orario dichiarato dal dispositivo, UTC-04:00, ora legale"
    assert time_note(declared, translator("en"))[-1] == (
        "read in the zone the device declares, UTC-04:00, summer time"
    )


def test_device_clocks_on_the_equipment_page(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    gateway = db.execute("SELECT id FROM gateways WHERE code = 'GW-A'").fetchone()[0]
    db.execute("UPDATE devices SET clock_skew_s = 7200 WHERE address = 'AA:01'")
    db.execute(
        "INSERT INTO devices (gateway_id, address, kind, clock_skew_s, clock_set_at, "
        "clock_set_from_s) VALUES (%s, 'AA:02', 'thermometer', 3, now() - interval '1 day', "
        "-2400), (%s, 'AA:03', 'blood_pressure', 30, NULL, NULL)",
        (gateway, gateway),
    )
    login(client, "nurse.greco")
    page = client.get("/equipment").text
    section = page[page.index('id="device-clocks"') :]
    assert "Device clocks" in section
    assert "2 h ahead, cannot be set by the gateway" in section
    assert "(was 40 min behind)" in section
    assert "Blood pressure monitor" not in section  # 30 s off: nothing to look at
    assert section.count("data-device-id") == 2
