"""FHIR, the rest of issue 20: a blood pressure as ONE compound Observation (the PHD IG's
Compound Numeric Observation, LOINC panel 85354-9) in search, read, $everything and the report
Bundle; an Observation read by its id (404 alike for unknown, another's and hidden); and
$everything's ``_since`` and ``_type``. Validated with fhir.resources (R4B)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome

from tests.dashboard.conftest import World
from tests.dashboard.support import login

MDC = "urn:iso:std:iso:11073:10101"
PANEL = "85354-9"
CUFF = "c0:ff:ee:00:00:0b"
AT = datetime(2025, 2, 3, 8, 15, tzinfo=UTC)


def _cuff(db: psycopg.Connection, patient_id: int) -> tuple[int, int]:
    gateway = db.execute(
        "INSERT INTO gateways (code, patient_id) VALUES ('GW-BP', %s) RETURNING id", (patient_id,)
    ).fetchone()[0]
    device = db.execute(
        "INSERT INTO devices (gateway_id, address, kind, model) "
        "VALUES (%s, %s, 'blood_pressure', 'BP7') RETURNING id",
        (gateway, CUFF),
    ).fetchone()[0]
    return gateway, device


def _measure(
    db: psycopg.Connection,
    patient_id: int,
    gateway: int,
    device: int,
    at: datetime,
    seq: int,
    values: dict[int, float],
    flags: dict[int, list[str]] | None = None,
) -> None:
    """One cuff measurement, stored as the gateway stores it: a reading per value."""
    db.execute(
        "SELECT telemon_ensure_observation_partitions(%s, %s)",
        (at - timedelta(days=1), at + timedelta(days=1)),
    )
    for i, (metric_id, value) in enumerate(values.items()):
        db.execute(
            "INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, "
            "seq, device_id, received_at, flags) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                at,
                patient_id,
                metric_id,
                value,
                gateway,
                seq + i,
                device,
                at + timedelta(minutes=1),
                (flags or {}).get(metric_id),
            ),
        )


def _setup(db: psycopg.Connection, patient_id: int) -> tuple[int, int]:
    gateway, device = _cuff(db, patient_id)
    # systolic 3, diastolic 4, mean 5, pulse 2: one measurement, and a second whose diastolic
    # the cuff flagged invalid.
    _measure(db, patient_id, gateway, device, AT, 10, {3: 142, 4: 88, 5: 106, 2: 71})
    _measure(
        db,
        patient_id,
        gateway,
        device,
        AT + timedelta(hours=12),
        20,
        {3: 150, 4: 97, 5: 115, 2: 75},
        flags={4: ["invalid_measurement"]},
    )
    return gateway, device


def _codes(resource: dict[str, Any]) -> set[str]:
    return {c["code"] for c in resource["code"]["coding"]}


def test_a_blood_pressure_is_one_compound_observation(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    gateway, device = _setup(db, own)
    login(client, "dr.rossi")

    response = client.get(f"/fhir/Observation?patient={own}&date=2025-02-03&_sort=date")
    assert response.status_code == 200, response.text
    Bundle.model_validate(response.json())
    found = [e["resource"] for e in response.json()["entry"]]
    # Two panels and two pulse rates: eight readings, four measurements, counted as such.
    assert response.json()["total"] == 4
    panels = [r for r in found if PANEL in _codes(r)]
    pulses = [r for r in found if "8867-4" in _codes(r)]
    assert len(panels) == 2 and len(pulses) == 2
    first, second = panels
    Observation.model_validate(first)
    assert {"85354-9", "150020"} == _codes(first)
    assert "valueQuantity" not in first  # a panel has no value of its own, only components
    assert first["meta"]["profile"][0].endswith("PhdCompoundNumericObservation")
    assert "http://hl7.org/fhir/StructureDefinition/bp" in first["meta"]["profile"]
    components = {
        next(c["code"] for c in comp["code"]["coding"] if c["system"] == "http://loinc.org"): comp
        for comp in first["component"]
    }
    assert list(components) == ["8480-6", "8462-4", "8478-0"]
    for code, value in (("8480-6", 142), ("8462-4", 88), ("8478-0", 106)):
        quantity = components[code]["valueQuantity"]
        assert quantity["value"] == value
        assert quantity["code"] == "mm[Hg]" and quantity["system"] == "http://unitsofmeasure.org"
    assert {c["code"] for comp in first["component"] for c in comp["code"]["coding"]} >= {
        "150021",
        "150022",
        "150023",
    }
    assert first["device"]["reference"] == f"Device/phd-{device}"
    assert first["extension"][0]["valueReference"]["reference"] == f"Device/phg-{gateway}"
    # The compound's dedup identifier: its type and its values in order.
    assert "-150020-142-88-106-mm[Hg]-" in first["identifier"][0]["value"]
    # The invalid diastolic: a reason in place of the component's value, and its note.
    dia = next(c for c in second["component"] if c["code"]["coding"][0]["code"] == "8462-4")
    assert "valueQuantity" not in dia and dia["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert "Diastolic" in second["note"][0]["text"] and "97" in second["note"][0]["text"]
    assert "-150020-150-error-115-" in second["identifier"][0]["value"]
    # The pulse rate stays its own Numeric Observation.
    assert pulses[0]["valueQuantity"]["value"] == 71
    assert pulses[0]["meta"]["profile"][0].endswith("PhdNumericObservation")

    # A search by the panel's code, or by one of its values' codes, finds the panels.
    for code in (PANEL, "8480-6", "http://loinc.org|8462-4"):
        by_code = client.get(f"/fhir/Observation?patient={own}&code={code}&date=2025-02-03")
        assert by_code.json()["total"] == 2, code
        assert all(PANEL in _codes(e["resource"]) for e in by_code.json()["entry"])
    # Paging counts measurements: one panel a page.
    page = client.get(f"/fhir/Observation?patient={own}&code={PANEL}&_count=1&_sort=date")
    assert page.json()["total"] == 2 and len(page.json()["entry"]) == 1
    assert len(page.json()["entry"][0]["resource"]["component"]) == 3

    # $everything has the same panels, each once.
    everything = client.get(f"/fhir/Patient/{own}/$everything", params={"start": "2025-02-03"})
    Bundle.model_validate(everything.json())
    exported = [
        e["resource"]
        for e in everything.json()["entry"]
        if e["resource"]["resourceType"] == "Observation"
    ]
    assert [r["id"] for r in exported if PANEL in _codes(r)] == [first["id"], second["id"]]


def test_a_resent_measurement_keeps_its_identifier(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    gateway, device = _cuff(db, own)
    _measure(db, own, gateway, device, AT, 10, {3: 142, 4: 88, 5: 106})
    # The cuff sends its memory again: new sequence numbers, the gateway's clock a little on.
    _measure(db, own, gateway, device, AT + timedelta(seconds=20), 30, {3: 142, 4: 88, 5: 106})
    _measure(db, own, gateway, device, AT + timedelta(hours=1), 40, {3: 139, 4: 85, 5: 103})
    login(client, "dr.rossi")
    found = client.get(f"/fhir/Observation?patient={own}&code={PANEL}").json()["entry"]
    identifiers = [e["resource"]["identifier"][0]["value"] for e in found]
    # Without the device's own time stamp the stored instant stands in: the re-sent one
    # differs only if its time did; the two measurements always differ.
    assert len(identifiers) == 3 and len(set(identifiers)) == 3
    assert identifiers[0] != identifiers[2]


def test_an_observation_is_read_by_its_id_by_those_who_may(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    _setup(db, own)
    login(client, "dr.rossi")
    found = client.get(f"/fhir/Observation?patient={own}&date=2025-02-03&_sort=date").json()
    panel = next(e["resource"] for e in found["entry"] if PANEL in _codes(e["resource"]))
    pulse = next(e["resource"] for e in found["entry"] if "8867-4" in _codes(e["resource"]))
    for resource in (panel, pulse):
        read = client.get(f"/fhir/Observation/{resource['id']}")
        assert read.status_code == 200, read.text
        assert read.headers["content-type"].startswith("application/fhir+json")
        Observation.model_validate(read.json())
        assert read.json() == resource
    audited = db.execute(
        "SELECT actor_username, object_type, object_id FROM audit_log "
        "WHERE action = 'fhir.observation.read' ORDER BY seq"
    ).fetchall()
    assert audited == [
        ("dr.rossi", "observation", panel["id"]),
        ("dr.rossi", "observation", pulse["id"]),
    ]

    def not_found(url: str) -> None:
        response = client.get(url)
        assert response.status_code == 404, (url, response.text)
        OperationOutcome.model_validate(response.json())

    # Unknown, malformed, a metric that is not one, a millisecond with nothing in it.
    millis = int(AT.timestamp() * 1000)
    for bad in (f"{own}-bp-{millis + 1}", "nonsense", f"{own}-99-{millis}", f"{own}-3-{millis}"):
        not_found(f"/fhir/Observation/{bad}")
    # Another GP's patient: the same 404 as an unknown id.
    client.cookies.clear()
    login(client, "dr.bianchi")
    not_found(f"/fhir/Observation/{panel['id']}")
    # The centre's nurse reads it, until the patient hides blood pressure from her.
    client.cookies.clear()
    login(client, "nurse.greco")
    assert client.get(f"/fhir/Observation/{panel['id']}").status_code == 200
    client.cookies.clear()
    headers = {"x-csrf-token": login(client, "dr.rossi")}
    hidden = client.post(
        f"/api/patients/{own}/restrictions",
        headers=headers,
        json={
            "kind": "metric_category",
            "category": "blood_pressure",
            "requested_on": date.today().isoformat(),
        },
    )
    assert hidden.status_code == 201, hidden.text
    assert client.get(f"/fhir/Observation/{panel['id']}").status_code == 200  # the GP
    client.cookies.clear()
    login(client, "nurse.greco")
    before = db.execute("SELECT max(seq) FROM audit_log").fetchone()[0]
    not_found(f"/fhir/Observation/{panel['id']}")  # not even the mean pressure
    assert client.get(f"/fhir/Observation/{pulse['id']}").status_code == 200
    reads = db.execute(
        "SELECT object_id FROM audit_log WHERE seq > %s AND action = 'fhir.observation.read'",
        (before,),
    ).fetchall()
    assert reads == [(pulse["id"],)]  # what was refused read nothing, so no access recorded


def test_everything_since_an_instant_and_of_some_types(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    gateway, device = _cuff(db, own)
    _measure(db, own, gateway, device, AT, 10, {3: 142, 4: 88, 5: 106})
    db.execute(
        "UPDATE observations SET stored_at = now() - interval '2 days' WHERE patient_id = %s",
        (own,),
    )
    _measure(db, own, gateway, device, AT + timedelta(hours=1), 20, {3: 139, 4: 85, 5: 103})
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    login(client, "dr.rossi")

    response = client.get(f"/fhir/Patient/{own}/$everything", params={"_since": since})
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate(response.json())
    resources = [e["resource"] for e in response.json()["entry"]]
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    # Only the measurement stored since; the patient and her devices and plan come along.
    assert [r["effectiveDateTime"] for r in observations] == [(AT + timedelta(hours=1)).isoformat()]
    assert bundle.total == len(bundle.entry)
    kinds = {r["resourceType"] for r in resources}
    assert {"Patient", "Device", "CarePlan"} <= kinds
    assert "DetectedIssue" in kinds  # her episode opened within the day

    typed = client.get(
        f"/fhir/Patient/{own}/$everything", params={"_type": "Patient,Observation"}
    ).json()
    assert {e["resource"]["resourceType"] for e in typed["entry"]} == {"Patient", "Observation"}
    assert typed["total"] == len(typed["entry"])
    only_patient = client.get(f"/fhir/Patient/{own}/$everything", params={"_type": "Patient"})
    assert [e["resource"]["resourceType"] for e in only_patient.json()["entry"]] == ["Patient"]

    csv_since = client.get(
        f"/fhir/Patient/{own}/$everything", params={"_since": since, "_format": "text/csv"}
    )
    assert csv_since.status_code == 200 and len(csv_since.text.strip().splitlines()) == 1 + 3

    audit = db.execute(
        "SELECT details FROM audit_log WHERE action = 'fhir.patient.everything' ORDER BY seq"
    ).fetchall()
    assert audit[0][0]["since"] is not None and audit[1][0]["types"] == ["Observation", "Patient"]

    for params, words in (
        ({"_since": "2025-02-03"}, "instant"),
        ({"_since": "2025-02-03T08:00:00"}, "instant"),
        ({"_since": "yesterday"}, "instant"),
        ({"_type": "Patient,Medication"}, "Medication"),
        ({"_type": ","}, "_type"),
    ):
        refused = client.get(f"/fhir/Patient/{own}/$everything", params=params)
        assert refused.status_code == 400, params
        outcome = OperationOutcome.model_validate(refused.json())
        assert words in (outcome.issue[0].diagnostics or ""), params
