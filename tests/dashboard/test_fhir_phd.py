"""FHIR as a health record takes it (issue 20): PHD IG Observations and Devices, paged search,
the CapabilityStatement, the plan as CarePlan/ObservationDefinitions, and $everything (FHIR
and CSV) for the patient's GP, audited. Validated with fhir.resources (R4B models)."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from psycopg.types.json import Jsonb

from dashboard import readings_export
from tests.dashboard.conftest import World
from tests.dashboard.support import login

MDC = "urn:iso:std:iso:11073:10101"
ADDRESS = "c0:ff:ee:00:00:01"
GATEWAY_EUI64 = "B8-27-EB-FF-FE-12-34-56"
DEVICE_EUI64 = "00-1C-05-FF-FE-00-00-01"


def _kit(db: psycopg.Connection, patient_id: int) -> tuple[int, int]:
    gateway = db.execute(
        "INSERT INTO gateways (code, patient_id, software_version) VALUES ('GW-PHD', %s, '1.4.0') "
        "RETURNING id",
        (patient_id,),
    ).fetchone()[0]
    device = db.execute(
        "INSERT INTO devices (gateway_id, address, kind, manufacturer, model, serial_number, "
        "firmware, udi) VALUES (%s, %s, 'pulse_oximeter', 'Nonin', '3230', 'SN-42', '1.2', "
        "'(01)00812345678901(21)SN-42') RETURNING id",
        (gateway, ADDRESS),
    ).fetchone()[0]
    return gateway, device


# The device's clock ran 2 h fast (clock reset to the wrong zone): the gateway corrected it.
DEVICE_TIME = "2025-01-15T10:30:00"
CORRECTION = {
    "basis": "corrected",
    "device_time": DEVICE_TIME,
    "zone": "Europe/Rome",
    "utc_offset_min": 60,
    "dst": False,
    "clock_offset_s": 7200,
    "clock_source": "current_time",
    "applied_s": 7200,
}
MEASURED = datetime(2025, 1, 15, 7, 30, tzinfo=UTC)  # 10:30 local - 1 h zone - 2 h clock


def _readings(db: psycopg.Connection, patient_id: int, gateway: int, device: int) -> None:
    db.execute(
        "SELECT telemon_ensure_observation_partitions(%s, %s)",
        (MEASURED - timedelta(days=1), MEASURED + timedelta(days=1)),
    )
    rows = [
        # seq, minutes later, value, flags
        (1, 0, 91.0, None),
        (2, 5, 97.0, ["invalid_measurement"]),
        (3, 10, 93.0, ["questionable_measurement"]),
        (4, 15, 96.0, ["testing_data"]),
    ]
    for seq, minutes, value, flags in rows:
        at = MEASURED + timedelta(minutes=minutes)
        device_time = (datetime.fromisoformat(DEVICE_TIME) + timedelta(minutes=minutes)).isoformat()
        db.execute(
            "INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, "
            "seq, device_id, received_at, flags, time_correction) "
            "VALUES (%s, %s, 1, %s, %s, %s, %s, %s, %s, %s)",
            (
                at,
                patient_id,
                value,
                gateway,
                seq,
                device,
                MEASURED + timedelta(minutes=20),
                flags,
                Jsonb({**CORRECTION, "device_time": device_time}),
            ),
        )


def _search(client: TestClient, url: str) -> Bundle:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return Bundle.model_validate(response.json())


def test_observations_as_the_phd_ig_profiles_them(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    gateway, device = _kit(db, own)
    _readings(db, own, gateway, device)
    login(client, "dr.rossi")

    bundle = _search(client, f"/fhir/Observation?patient={own}&date=2025-01-15&_sort=date")
    raw = client.get(f"/fhir/Observation?patient={own}&date=2025-01-15&_sort=date").json()

    assert bundle.total == 4
    plain, invalid, questionable, test = (e["resource"] for e in raw["entry"])
    for obs in (plain, invalid, questionable, test):
        # The Base Observation profile's elements: gateway, MDC code, subject, effective,
        # device, the coincident time stamp, the dedup identifier.
        assert obs["extension"][0]["url"].endswith("observation-gatewayDevice")
        assert obs["extension"][0]["valueReference"]["reference"] == f"Device/phg-{gateway}"
        assert {"system": MDC, "code": "150456"} in obs["code"]["coding"]
        assert obs["subject"]["reference"] == f"Patient/{own}"
        assert obs["device"]["reference"] == f"Device/phd-{device}"
        assert obs["derivedFrom"] == [{"reference": "#cts"}]
        cts = obs["contained"][0]
        # The gateway's time, and the device's clock at that moment: 2 h ahead, in Rome.
        assert cts["code"]["coding"][0]["code"] == "67975"
        assert datetime.fromisoformat(cts["effectiveDateTime"]) == MEASURED + timedelta(minutes=20)
        assert cts["valueDateTime"] == "2025-01-15T10:50:00+01:00"
        assert obs["identifier"][0]["value"].startswith("C0-FF-EE-00-00-01-P-0001-")
    assert plain["effectiveDateTime"] == MEASURED.isoformat()
    assert plain["valueQuantity"]["value"] == 91.0
    # device, patient (code-system), type, value, units, the PHD's own stamp (seconds since 2000).
    seconds = int((datetime(2025, 1, 15, 10, 30) - datetime(2000, 1, 1)).total_seconds())
    assert plain["identifier"][0]["value"] == (
        f"C0-FF-EE-00-00-01-P-0001-urn:telemon:patient-code-150456-91-%-{seconds}"
    )
    # invalid -> dataAbsentReason, and no value (obs-6); questionable -> interpretation;
    # test data -> HTEST.
    assert "valueQuantity" not in invalid
    assert invalid["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert "97" in invalid["note"][0]["text"]
    assert invalid["identifier"][0]["value"].split("-%-")[0].endswith("-error")
    assert questionable["interpretation"][0]["coding"][0] == {
        "system": "http://hl7.org/fhir/uv/pocd/CodeSystem/measurement-status",
        "code": "questionable",
    }
    assert test["meta"]["security"][0]["code"] == "HTEST"


def test_a_resent_reading_keeps_its_identifier(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    """A device that re-sends its memory: the same reading under a new seq, and a different
    gateway clock (so another measured_at), carries the same PHD identifier."""
    own = world.patients["own"]
    gateway, device = _kit(db, own)
    _readings(db, own, gateway, device)
    db.execute(
        "INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, seq, "
        "device_id, received_at, time_correction) VALUES (%s, %s, 1, 91, %s, 99, %s, %s, %s)",
        (
            MEASURED + timedelta(seconds=30),
            own,
            gateway,
            device,
            MEASURED + timedelta(hours=1),
            Jsonb({**CORRECTION, "clock_offset_s": 7170, "applied_s": 7170}),
        ),
    )
    login(client, "dr.rossi")
    bundle = client.get(f"/fhir/Observation?patient={own}&date=2025-01-15&_count=1000").json()
    ids = [e["resource"]["identifier"][0]["value"] for e in bundle["entry"]]
    assert len(ids) == 5 and len(set(ids)) == 4


def test_search_pages_with_links_and_a_total(client: TestClient, world: World) -> None:
    own = world.patients["own"]
    login(client, "dr.rossi")
    everything = _search(client, f"/fhir/Observation?patient={own}&_count=1000")
    total = everything.total
    assert total == len(everything.entry) > 25

    seen: list[str] = []
    url = f"/fhir/Observation?patient={own}&_count=10&_sort=date"
    pages = 0
    while url:
        page = _search(client, url)
        pages += 1
        assert page.total == total
        assert len(page.entry) <= 10
        seen += [e.resource.effectiveDateTime.isoformat() for e in page.entry]
        links = {link.relation: link.url for link in page.link}
        assert links["first"].startswith("http://testserver/fhir/Observation?")
        if pages > 1:
            assert "previous" in links
        url = links.get("next", "").removeprefix("http://testserver")
    assert pages == -(-total // 10) and len(seen) == total
    assert seen == sorted(seen)  # _sort=date: oldest first, across pages
    newest = _search(client, f"/fhir/Observation?patient={own}&_count=5")
    assert newest.entry[0].resource.effectiveDateTime.isoformat() == max(seen)

    bad = client.get(f"/fhir/Observation?patient={own}&_sort=value")
    assert bad.status_code == 400
    OperationOutcome.model_validate(bad.json())


def test_capability_statement_is_public_and_names_what_is_served(client: TestClient) -> None:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement = CapabilityStatement.model_validate(response.json())
    resources = {r.type: r for r in statement.rest[0].resource}
    assert {"Patient", "Observation"} <= set(resources)
    assert {p.name for p in resources["Observation"].searchParam} == {"patient", "code", "date"}
    assert resources["Patient"].operation[0].name == "everything"


def test_everything_is_the_whole_record_for_the_gp(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    gateway, device = _kit(db, own)
    _readings(db, own, gateway, device)
    # The patient's own SpO2 threshold, with the GP's reason.
    db.execute(
        "UPDATE patient_protocols SET overrides = %s WHERE patient_id = %s",
        (
            Jsonb(
                {
                    "rules": {
                        "spo2_low": {
                            "bands": [
                                {"level": "amber", "op": "<=", "value": 92},
                                {"level": "red", "op": "<=", "value": 90},
                            ],
                            "reason": "COPD, usual SpO2 92-93 %",
                        }
                    }
                }
            ),
            own,
        ),
    )
    login(client, "dr.rossi")

    response = client.get(f"/fhir/Patient/{own}/$everything")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(response.json())
    assert bundle.type == "searchset" and bundle.total == len(bundle.entry)
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    readings = db.execute("SELECT count(*) FROM observations WHERE patient_id = %s", (own,))
    assert kinds.count("Observation") == readings.fetchone()[0]
    assert kinds[0] == "Patient"
    for kind in ("Device", "CarePlan", "ActivityDefinition", "ObservationDefinition"):
        assert kind in kinds, kind
    assert kinds.count("DetectedIssue") == 1  # her open episode
    resources = {
        f"{e.resource.get_resource_type()}/{e.resource.id}": e.resource for e in bundle.entry
    }
    phd = resources[f"Device/phd-{device}"]
    assert phd.type.coding[0].code == "65573" and phd.serialNumber == "SN-42"
    assert phd.udiCarrier[0].carrierHRF == "(01)00812345678901(21)SN-42"
    assert {i.type.coding[0].code for i in phd.identifier} == {"SYSID", "BTMAC"}
    # No System ID reported (yet): the IG's "none".
    assert phd.identifier[0].value == "00-00-00-00-00-00-00-00"
    phg = resources[f"Device/phg-{gateway}"]
    assert phg.type.coding[0].code == "531981"
    assert [i.system for i in phg.identifier] == ["urn:telemon:gateway"]  # an older gateway
    assert phg.property[0].type.coding[0].code == "68220"
    plan = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "CarePlan")
    assert plan.status == "active" and plan.intent == "plan"
    assert f"Device/phd-{device}" in [p.reference for p in plan.activity[0].detail.performer]
    spo2 = resources[f"ObservationDefinition/{own}-covid19-home-oximetry-spo2"]
    limits = {(i.context.text, i.range.high.value): i.condition for i in spo2.qualifiedInterval}
    assert "COPD" in limits[("amber", 92)] and "own threshold" in limits[("red", 90)]
    issue = next(
        e.resource for e in bundle.entry if e.resource.get_resource_type() == "DetectedIssue"
    )
    assert issue.status == "preliminary" and issue.severity == "high"

    audit = db.execute(
        "SELECT actor_username, details FROM audit_log WHERE action = 'fhir.patient.everything' "
        "AND patient_id = %s",
        (own,),
    ).fetchall()
    assert [(u, d["format"]) for u, d in audit] == [("dr.rossi", "fhir")]


def test_devices_are_identified_by_the_system_ids_they_reported(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    """Issue 19: the gateway's EUI-64 (from its status) is the PHG Device's system id, as the
    PHD IG's PHG profile wants; the device's, from Device Information, the PHD Device's. The
    readings' identifiers stay on the Bluetooth address, so they do not change once known."""
    own = world.patients["own"]
    gateway, device = _kit(db, own)
    _readings(db, own, gateway, device)
    login(client, "dr.rossi")
    before = client.get(f"/fhir/Observation?patient={own}&date=2025-01-15&_count=100").json()
    db.execute("UPDATE gateways SET system_id = %s WHERE id = %s", (GATEWAY_EUI64, gateway))
    db.execute("UPDATE devices SET system_id = %s WHERE id = %s", (DEVICE_EUI64, device))

    bundle = Bundle.model_validate(client.get(f"/fhir/Patient/{own}/$everything").json())

    resources = {
        f"{e.resource.get_resource_type()}/{e.resource.id}": e.resource for e in bundle.entry
    }
    phg = resources[f"Device/phg-{gateway}"]
    sysid = phg.identifier[0]
    assert sysid.system == "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680"
    assert sysid.value == GATEWAY_EUI64 and sysid.type.coding[0].code == "SYSID"
    assert phg.identifier[1].system == "urn:telemon:gateway" and phg.identifier[1].value == "GW-PHD"
    phd = resources[f"Device/phd-{device}"]
    by_type = {i.type.coding[0].code: i.value for i in phd.identifier}
    assert by_type == {"SYSID": DEVICE_EUI64, "BTMAC": "C0-FF-EE-00-00-01"}
    after = client.get(f"/fhir/Observation?patient={own}&date=2025-01-15&_count=100").json()
    assert [e["resource"]["identifier"] for e in after["entry"]] == [
        e["resource"]["identifier"] for e in before["entry"]
    ]


def test_everything_as_csv_and_within_dates(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    gateway, device = _kit(db, own)
    _readings(db, own, gateway, device)
    login(client, "dr.rossi")

    response = client.get(
        f"/fhir/Patient/{own}/$everything",
        params={"_format": "text/csv", "start": "2025-01-15", "end": "2025-01-15"},
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 4
    # The columns of every readings export: the period's readings.csv writes the same rows.
    assert list(rows[0]) == list(readings_export.COLUMNS)
    assert list(rows[0])[:6] == ["time", "metric", "value", "unit", "device", "flags"]
    period = client.get(
        f"/patients/{own}/readings.csv", params={"from": "2025-01-15", "to": "2025-01-15"}
    )
    assert period.status_code == 200
    assert period.text == response.text
    assert rows[0]["time_utc"] == MEASURED.isoformat() and rows[0]["value"] == "91.0"
    assert rows[0]["device_address"] == ADDRESS and rows[0]["gateway"] == "GW-PHD"
    assert rows[0]["device"] == "pulse_oximeter Nonin 3230" and rows[0]["loinc"] == "59408-5"
    assert rows[0]["device_udi"] == "(01)00812345678901(21)SN-42"
    assert rows[0]["time_correction_s"] == "7200" and rows[0]["received_at"]
    assert rows[0]["time_basis"] == "corrected" and rows[0]["device_time"] == DEVICE_TIME
    assert rows[1]["flags"] == "invalid_measurement"
    bounded = Bundle.model_validate(
        client.get(f"/fhir/Patient/{own}/$everything?start=2025-01-15&end=2025-01-15").json()
    )
    assert [e.resource.get_resource_type() for e in bounded.entry].count("Observation") == 4
    bad = client.get(f"/fhir/Patient/{own}/$everything?start=15/01/2025")
    assert bad.status_code == 400
    OperationOutcome.model_validate(bad.json())


def test_everything_is_the_gps_alone(client: TestClient, world: World) -> None:
    login(client, "nurse.greco")
    assert client.get(f"/fhir/Patient/{world.patients['own']}/$everything").status_code == 403
    login(client, "dr.rossi")
    other = client.get(f"/fhir/Patient/{world.patients['other_gp']}/$everything")
    assert other.status_code == 404
    OperationOutcome.model_validate(other.json())
    assert "Ferrari" not in other.text


def test_ninety_days_stream_in_bounded_time(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    """90 days of four readings every 6 h beside the world's (over 1,000): one response
    streamed in chunks as the cursor reads, whole and valid at the end."""
    own = world.patients["own"]
    now = datetime.now(UTC)
    db.execute(
        "SELECT telemon_ensure_observation_partitions(%s, %s)", (now - timedelta(days=91), now)
    )
    db.execute(
        """
        INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, seq)
        SELECT %(now)s - make_interval(hours => 240 + h), %(p)s, m, 90 + m, 1, 900000 + h * 10 + m
        FROM generate_series(0, 90 * 24 - 240 - 1, 6) h, (VALUES (1), (2), (3), (4)) metric(m)
        """,
        {"now": now, "p": own},
    )
    readings = db.execute(
        "SELECT count(*) FROM observations WHERE patient_id = %s", (own,)
    ).fetchone()[0]
    # A blood pressure's systolic and diastolic are one Observation (a panel).
    measurements = db.execute(
        "SELECT count(DISTINCT (measured_at, CASE WHEN metric_id IN (3, 4, 5) THEN 3 "
        "ELSE metric_id END)) FROM observations WHERE patient_id = %s",
        (own,),
    ).fetchone()[0]
    login(client, "dr.rossi")
    started = time.perf_counter()
    with client.stream("GET", f"/fhir/Patient/{own}/$everything") as response:
        chunks = list(response.iter_bytes())
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    body = b"".join(chunks)
    bundle = Bundle.model_validate_json(body)
    assert readings > 1000
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds.count("Observation") == measurements < readings
    assert len(chunks) > 1  # sent as read, not built whole first
    print(
        f"$everything: {readings} readings, {len(body)} bytes, {len(chunks)} chunks, "
        f"{elapsed:.2f} s"
    )
    assert elapsed < 10

    # The CSV too streams as read: the same rows writer as the period's readings.csv.
    started = time.perf_counter()
    with client.stream(
        "GET", f"/fhir/Patient/{own}/$everything", params={"_format": "text/csv"}
    ) as response:
        chunks = list(response.iter_bytes())
    elapsed = time.perf_counter() - started
    assert response.status_code == 200 and len(chunks) > 1
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) == readings
    print(f"$everything CSV: {readings} rows, {len(chunks)} chunks, {elapsed:.2f} s")
    assert elapsed < 10
