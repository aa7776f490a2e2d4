"""FHIR R4 read endpoints, validated with fhir.resources (R4B models: same Patient/Observation)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient

from tests.dashboard.conftest import SCENARIOS, World
from tests.dashboard.support import login


def test_patient_resource(client: TestClient, world: World) -> None:
    login(client, "dr.rossi")
    response = client.get(f"/fhir/Patient/{world.patients['own']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    patient = Patient.model_validate(response.json())
    assert patient.name[0].family == "Colombo"
    assert patient.gender == "female" and str(patient.birthDate) == "1948-03-02"
    assert patient.identifier[0].value == "P-0001"


def test_observation_search_returns_vital_signs_with_loinc_and_ucum(
    client: TestClient, world: World
) -> None:
    login(client, "dr.rossi")
    pid = world.patients["own"]
    response = client.get(f"/fhir/Observation?patient=Patient/{pid}&code=http://loinc.org|59408-5")
    bundle = Bundle.model_validate(response.json())
    # Ten quiet days every 6 h (36 readings), then the scenario that opened her episode.
    scenario = [metric for metric, _, _ in SCENARIOS["own"]]
    assert bundle.type == "searchset" and bundle.total == 36 + scenario.count("spo2")
    for entry in bundle.entry:
        obs = entry.resource
        assert obs.code.coding[0].system == "http://loinc.org"
        assert obs.code.coding[0].code == "59408-5"
        assert obs.valueQuantity.system == "http://unitsofmeasure.org"
        assert obs.valueQuantity.code == "%"
        assert obs.category[0].coding[0].code == "vital-signs"
        assert obs.subject.reference == f"Patient/{pid}"
    everything = Bundle.model_validate(client.get(f"/fhir/Observation?patient={pid}").json())
    assert everything.total == 2 * 36 + len(scenario)
    codes = {e.resource.code.coding[0].code for e in everything.entry}
    assert codes == {"59408-5", "8867-4", "8310-5"}


def test_observation_search_by_date(client: TestClient, world: World) -> None:
    from datetime import UTC, datetime, timedelta

    login(client, "dr.rossi")
    pid = world.patients["own"]
    since = (datetime.now(UTC) - timedelta(hours=25)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = Bundle.model_validate(
        client.get(f"/fhir/Observation?patient={pid}&code=59408-5&date=ge{since}").json()
    )
    # The quiet days' last reading (24 h ago), then the scenario's SpO2 readings.
    assert recent.total == 1 + [metric for metric, _, _ in SCENARIOS["own"]].count("spo2")
    far_past = client.get(f"/fhir/Observation?patient={pid}&date=le2001-01-01").json()
    assert far_past["total"] == 0


def test_fhir_errors_are_operation_outcomes(client: TestClient, world: World) -> None:
    login(client, "dr.rossi")
    missing = client.get("/fhir/Observation")
    assert missing.status_code == 400
    OperationOutcome.model_validate(missing.json())
    bad_code = client.get(f"/fhir/Observation?patient={world.patients['own']}&code=1234-5")
    assert bad_code.status_code == 400
    other = client.get(f"/fhir/Patient/{world.patients['far']}")
    assert other.status_code == 404
    OperationOutcome.model_validate(other.json())
