"""The privacy officer's access report: every access to one patient's data, and nothing else.

A scenario of staff reading the conftest world's patients (allowed and refused, the patient and
others), then the report for "own" (dr.rossi's, centre A "Centrale Bergamo"), compared with the
accesses the scenario made, written out here by hand.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from pypdf import PdfReader

from dashboard.web import LOCAL_TZ
from telemon.store import audit_chain
from tests.dashboard.conftest import World
from tests.dashboard.support import login

GP_ADDRESS = "198.51.100.7"
NURSE_ADDRESS = "198.51.100.8"


def _client(app, address: str) -> TestClient:
    return TestClient(app, follow_redirects=False, client=(address, 50000))


def _scenario(app, world: World) -> None:
    own, other, far = (world.patients[k] for k in ("own", "other_gp", "far"))
    gp, nurse = _client(app, GP_ADDRESS), _client(app, NURSE_ADDRESS)
    nurse_b, admin = _client(app, "198.51.100.9"), _client(app, "198.51.100.10")
    login(gp, "dr.rossi")
    login(nurse, "nurse.greco")
    login(nurse_b, "nurse.conti")
    login(admin, "admin")
    assert gp.get(f"/patients/{own}").status_code == 200  # 1: the patient's page
    assert gp.get(f"/api/patients/{other}").status_code == 404  # not the GP's: no access
    assert gp.get(f"/patients/{own}/readings.csv").status_code == 200  # 2: an export
    assert nurse.get(f"/api/patients/{own}").status_code == 200  # 3: the API
    assert nurse.get(f"/api/patients/{other}").status_code == 200  # another patient
    assert nurse.get("/fhir/Observation", params={"patient": own}).status_code == 200  # 4: FHIR
    assert nurse.get("/api/triage").status_code == 200  # 5: a list that shows own
    assert nurse_b.get(f"/api/patients/{own}").status_code == 404  # other centre: refused
    assert nurse_b.get(f"/api/patients/{far}").status_code == 200  # the other centre's patient
    assert admin.get(f"/admin/patients/{own}").status_code == 200  # 6: the enrolment
    # 7: a reading by its FHIR id; 8: the whole record; 9: what the patient asked to hide.
    assert nurse.get(f"/fhir/Observation/{world.observations['own']}").status_code == 200
    assert nurse.get(f"/fhir/Observation/{world.observations['far']}").status_code == 404
    assert gp.get(f"/fhir/Patient/{own}/$everything").status_code == 200
    assert admin.get(f"/admin/patients/{own}/restrictions").status_code == 200


EXPECTED = [
    # (username, name, role, relation, action, address)
    ("dr.rossi", "Dr Rossi", "gp", "The patient's GP", "patient.read", GP_ADDRESS),
    # The patient's page shows their episodes too: a second read, by the same request.
    ("dr.rossi", "Dr Rossi", "gp", "The patient's GP", "patient.episodes.read", GP_ADDRESS),
    ("dr.rossi", "Dr Rossi", "gp", "The patient's GP", "patient.readings.csv", GP_ADDRESS),
    (
        "nurse.greco",
        "Nurse Greco",
        "nurse",
        "Care team: Centrale Bergamo",
        "patient.read",
        NURSE_ADDRESS,
    ),
    (
        "nurse.greco",
        "Nurse Greco",
        "nurse",
        "Care team: Centrale Bergamo",
        "fhir.observation.search",
        NURSE_ADDRESS,
    ),
    (
        "nurse.greco",
        "Nurse Greco",
        "nurse",
        "Care team: Centrale Bergamo",
        "triage.read",
        NURSE_ADDRESS,
    ),
    ("admin", "Admin", "admin", "As Administrator", "enrolment.read", "198.51.100.10"),
    (
        "nurse.greco",
        "Nurse Greco",
        "nurse",
        "Care team: Centrale Bergamo",
        "fhir.observation.read",
        NURSE_ADDRESS,
    ),
    ("dr.rossi", "Dr Rossi", "gp", "The patient's GP", "fhir.patient.everything", GP_ADDRESS),
    (
        "admin",
        "Admin",
        "admin",
        "As Administrator",
        "patient.restrictions.read",
        "198.51.100.10",
    ),
]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def _pdf_text(content: bytes) -> str:
    """The PDF's words, one space apart (table cells wrap)."""
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return " ".join(text.split())


def test_the_access_report_names_every_access_and_nothing_else(
    app, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    with TestClient(app):
        started = datetime.now(LOCAL_TZ)
        _scenario(app, world)
        officer = _client(app, "198.51.100.99")
        login(officer, "privacy.officer")
        today = datetime.now(LOCAL_TZ).date().isoformat()
        response = officer.get(
            f"/admin/patients/{own}/access-report.csv", params={"from": today, "to": today}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        rows = _rows(response.text)
        got = [
            (
                r["staff_username"],
                r["staff_name"],
                r["role"],
                r["care_team"],
                r["action"],
                r["from_address"],
            )
            for r in rows
        ]
        assert got == EXPECTED
        for r in rows:
            at = datetime.fromisoformat(r["time"])
            assert started - timedelta(seconds=2) <= at <= datetime.now(LOCAL_TZ)
        assert [r["what"] for r in rows][:3] == [
            "Patient page",
            "Episodes",
            "Readings export (CSV)",
        ]
        assert [r["what"] for r in rows][-3:] == [
            "FHIR Observation",
            "Whole record (FHIR $everything)",
            "Requests to hide data (oscuramento)",
        ]

        # The officer's own reading is an access: the PDF, asked next, names it last.
        pdf = officer.get(f"/admin/patients/{own}/access-report.pdf")
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        text = _pdf_text(pdf.content)
        assert "P-0001" in text and f"{len(EXPECTED) + 1} accesses" in text
        for who in ("dr.rossi", "nurse.greco", "Centrale Bergamo", "privacy.officer"):
            assert who in text, who
        assert "nurse.conti" not in text and "Centrale Brescia" not in text

        # The other centre's nurse shows in her own patient's report, not in own's.
        far = officer.get(f"/admin/patients/{world.patients['far']}/access-report.csv")
        assert [(r["staff_username"], r["care_team"]) for r in _rows(far.text)] == [
            ("nurse.conti", "Care team: Centrale Brescia")
        ]
    assert audit_chain.verify(db).intact


def test_only_the_privacy_officer_reads_access_reports(client: TestClient, world: World) -> None:
    own = world.patients["own"]
    for username in ("dr.rossi", "nurse.greco", "admin"):
        login(client, username)
        for url in (
            f"/admin/patients/{own}/access-report.csv",
            f"/admin/patients/{own}/access-report.pdf",
            "/admin/access-report",
        ):
            assert client.get(url).status_code == 403, (username, url)
    login(client, "privacy.officer")
    assert client.get(f"/patients/{own}").status_code == 403  # no clinical data
    assert client.get("/").headers["location"] == "/admin/access-report"
    assert client.get(f"/admin/patients/{10**9}/access-report.csv").status_code == 404


def test_the_form_finds_the_patient_by_code(client: TestClient, world: World) -> None:
    login(client, "privacy.officer")
    page = client.get("/admin/access-report")
    assert page.status_code == 200 and 'name="code"' in page.text
    found = client.get(
        "/admin/access-report",
        params={"code": "P-0001", "from": "2025-01-01", "to": "2025-01-31", "format": "pdf"},
    )
    assert found.status_code == 303
    assert found.headers["location"] == (
        f"/admin/patients/{world.patients['own']}/access-report.pdf?from=2025-01-01&to=2025-01-31"
    )
    missing = client.get("/admin/access-report", params={"code": "P-NOPE"})
    assert missing.status_code == 404 and "No patient has this code" in missing.text
    bad = client.get(
        f"/admin/patients/{world.patients['own']}/access-report.csv",
        params={"from": "2025-02-01", "to": "2025-01-01"},
    )
    assert bad.status_code == 422 and "from must not be after to" in bad.text
