"""Several organisations in one installation (issue 20, migration 0026): each admin and privacy
officer acts within their organisation; a shared service centre serves patients of another
organisation's GPs; every audit row of a clinical read names the relation and the care team.

conftest's world has two organisations: the first (dr.rossi, dr.bianchi, nurse.greco in
"Centrale Bergamo", admin, privacy.officer) and "ASST Milano Nord" (dr.verdi, nurse.galli in
"Centrale Milano", admin.milano, privacy.milano, patient "org_b").
"""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from tests.dashboard.conftest import World
from tests.dashboard.support import login


def _team(db: psycopg.Connection, name: str) -> int:
    return db.execute("SELECT id FROM care_teams WHERE name = %s", (name,)).fetchone()[0]


def test_an_admin_manages_only_their_organisations_staff_and_patients(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "admin.milano")
    headers = {"x-csrf-token": csrf}
    staff = {s["username"] for s in client.get("/api/admin/staff").json()}
    assert staff == {"dr.verdi", "nurse.galli", "admin.milano", "privacy.milano"}
    enrolled = client.get("/admin/patients")
    assert "Marino" in enrolled.text
    assert not any(name in enrolled.text for name in ("Colombo", "Ferrari", "Ricci"))
    # The other organisation's people and patients are absent, as if they did not exist.
    assert (
        client.patch(
            f"/api/admin/staff/{world.staff['gp']}", headers=headers, json={"active": False}
        ).status_code
        == 404
    )
    assert client.get(f"/admin/patients/{world.patients['own']}").status_code == 404
    assert client.get(f"/admin/patients/{world.patients['org_b']}").status_code == 200
    # Enrolling with the other organisation's GP, or putting a new nurse in its centre: refused.
    body = {
        "code": "P-0100",
        "given_name": "Ida",
        "family_name": "Neri",
        "protocol": "covid19_home_oximetry",
    }
    refused = client.post(
        "/api/admin/patients", headers=headers, json=body | {"gp_id": world.staff["gp"]}
    )
    assert refused.status_code == 422 and "GP" in refused.text
    nurse = {
        "username": "nurse.new",
        "display_name": "Nurse New",
        "role": "nurse",
        "password": "a-long-enough-password",
    }
    refused = client.post(
        "/api/admin/staff",
        headers=headers,
        json=nurse | {"care_team_id": _team(db, "Centrale Bergamo")},
    )
    assert refused.status_code == 422 and "care team" in refused.text
    created = client.post(
        "/api/admin/staff",
        headers=headers,
        json=nurse | {"care_team_id": _team(db, "Centrale Milano")},
    )
    assert created.status_code == 201
    organisation = db.execute(
        "SELECT o.name FROM staff s JOIN organisations o ON o.id = s.organisation_id "
        "WHERE s.username = 'nurse.new'"
    ).fetchone()[0]
    assert organisation == "ASST Milano Nord"
    # The first organisation's admin does not see the newcomer either.
    client.cookies.clear()
    login(client, "admin")
    assert "nurse.new" not in {s["username"] for s in client.get("/api/admin/staff").json()}


def test_a_privacy_officer_answers_for_their_organisation_only(
    client: TestClient, world: World
) -> None:
    login(client, "privacy.milano")
    own = client.get("/admin/access-report", params={"code": "P-0004"})
    assert own.status_code == 303
    assert client.get("/admin/access-report", params={"code": "P-0001"}).status_code == 404
    foreign = client.get(f"/admin/patients/{world.patients['own']}/access-report.csv")
    assert foreign.status_code == 404 and "Colombo" not in foreign.text
    report = client.get(f"/admin/patients/{world.patients['org_b']}/access-report.csv")
    assert report.status_code == 200


def test_a_shared_service_centre_serves_another_organisations_patient(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    """dr.verdi's patient (the second organisation's) assigned to the first organisation's
    centre: its nurse sees the patient and the audit names the centre; the patient stays the
    second organisation's for its privacy officer."""
    db.execute(
        "UPDATE patients SET care_team_id = %s WHERE id = %s",
        (_team(db, "Centrale Bergamo"), world.patients["org_b"]),
    )
    patient = world.patients["org_b"]
    login(client, "nurse.greco")
    assert client.get(f"/api/patients/{patient}").status_code == 200
    assert "Marino" in client.get("/api/triage").text
    client.cookies.clear()
    login(client, "nurse.galli")  # no longer in this patient's care team
    assert client.get(f"/api/patients/{patient}").status_code == 404
    client.cookies.clear()
    login(client, "dr.verdi")
    assert client.get(f"/api/patients/{patient}").status_code == 200
    rows = db.execute(
        "SELECT actor_username, relation, care_team FROM audit_log "
        "WHERE patient_id = %s AND action LIKE 'patient%%' ORDER BY id",
        (patient,),
    ).fetchall()
    assert ("nurse.greco", "care_team", "Centrale Bergamo") in rows
    assert ("dr.verdi", "own_gp", None) in rows
    assert all(r[0] != "nurse.galli" for r in rows)
    client.cookies.clear()
    login(client, "privacy.officer")
    assert client.get(f"/admin/patients/{patient}/access-report.csv").status_code == 404
    client.cookies.clear()
    login(client, "privacy.milano")
    report = client.get(f"/admin/patients/{patient}/access-report.csv")
    assert report.status_code == 200 and "Centrale Bergamo" in report.text


def test_every_clinical_read_of_the_second_organisation_names_its_care_team(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "nurse.galli")
    patient, episode = world.patients["org_b"], world.episodes["org_b"]
    for path in (
        f"/api/patients/{patient}",
        f"/patients/{patient}",
        f"/fhir/Observation?patient={patient}",
        f"/api/episodes/{episode}",
    ):
        assert client.get(path).status_code == 200, path
    rows = db.execute(
        "SELECT relation, care_team FROM audit_log WHERE actor_username = 'nurse.galli' "
        "AND patient_id = %s",
        (patient,),
    ).fetchall()
    assert len(rows) >= 4
    assert set(rows) == {("care_team", "Centrale Milano")}


def test_equipment_lists_stay_within_the_organisation(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    db.execute(
        "INSERT INTO gateways (code, patient_id, online, offline_since) "
        "VALUES ('GW-MI', %s, false, now() - interval '1 hour')",
        (world.patients["org_b"],),
    )
    login(client, "admin")
    codes = {g["code"] for g in client.get("/api/gateways/offline").json()}
    assert "GW-A" in codes and "GW-MI" not in codes
    client.cookies.clear()
    login(client, "admin.milano")
    codes = {g["code"] for g in client.get("/api/gateways/offline").json()}
    assert codes == {"GW-MI"}
