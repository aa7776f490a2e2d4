"""The closing report at discharge, as the admin makes it and the GP and the centre read it:
frozen over the whole monitoring span with its reason, duration and outcomes, on episodes the
real engine opened; its PDF's text read back; its FHIR Bundle; who may read it."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import UTC, date, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from pypdf import PdfReader

from dashboard.web import LOCAL_TZ
from tests.dashboard.conftest import World, add_readings, evaluate
from tests.dashboard.support import login

REASON = "Recovered, back to the GP's usual care"


def _pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _audit(db: psycopg.Connection, action: str) -> list[tuple]:
    return db.execute(
        "SELECT actor_username, patient_id, details FROM audit_log WHERE action = %s ORDER BY id",
        (action,),
    ).fetchall()


def _two_engine_episodes(client: TestClient, world: World, db: psycopg.Connection) -> int:
    """The world's red episode, which the nurse calls about (advised) and resolves; then the
    engine opens a second red one on new low readings, left open for the discharge."""
    own = world.patients["own"]
    login(client, "nurse.greco")
    first = world.episodes["own"]
    csrf = _csrf(client.get(f"/episodes/{first}").text)
    for action, data in (("outcome", {"outcome": "advised"}), ("resolve", {"note": "better"})):
        done = client.post(f"/episodes/{first}/{action}", data={"csrf_token": csrf, **data})
        assert done.status_code == 303, (action, done.text)
    now = datetime.now(UTC)
    add_readings(db, own, [("spo2", 3, 84), ("spo2", 1, 84)], now)
    evaluate(db, now, [own])
    second = db.execute(
        "SELECT id, severity FROM episodes WHERE patient_id = %s AND state <> 'resolved'", (own,)
    ).fetchone()
    assert second is not None and second[1] == 2 and second[0] != first
    return second[0]


def _discharge(client: TestClient, patient: int, on: date) -> None:
    csrf = login(client, "admin")
    done = client.post(
        f"/admin/patients/{patient}/discharge",
        data={"csrf_token": csrf, "discharge_date": on.isoformat(), "discharge_reason": REASON},
    )
    assert done.status_code == 303, done.text


def test_discharge_freezes_a_closing_report_with_reason_duration_and_outcomes(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    _two_engine_episodes(client, world, db)
    login(client, "dr.rossi")
    assert client.get(f"/patients/{own}/closing-report").status_code == 404  # not yet
    today = datetime.now(LOCAL_TZ).date()
    _discharge(client, own, today)

    enrolled = db.execute("SELECT enrolled_at FROM patients WHERE id = %s", (own,)).fetchone()[0]
    first = enrolled.astimezone(LOCAL_TZ).date()
    days = (today - first).days + 1
    kind, period_from, period_to, pdf, sha, by = db.execute(
        "SELECT kind, period_from, period_to, pdf, pdf_sha256, validated_by FROM period_reports "
        "WHERE patient_id = %s",
        (own,),
    ).fetchone()
    assert (kind, period_from, period_to, by) == ("closing", first, today, world.staff["admin"])
    assert sha == hashlib.sha256(bytes(pdf)).hexdigest()
    created = _audit(db, "patient.closing_report.create")
    assert [(a, p, d["sha256"], d["days"]) for a, p, d in created] == [("admin", own, sha, days)]

    # The admin's enrolment page says it exists, who froze it and its hash, not what it says.
    admin_page = client.get(f"/admin/patients/{own}").text
    assert sha in admin_page and 'id="closing-outcomes"' not in admin_page
    assert client.get(f"/patients/{own}/closing-report").status_code == 403

    login(client, "dr.rossi")
    patient_page = client.get(f"/patients/{own}").text
    assert f'href="/patients/{own}/closing-report"' in patient_page
    html = client.get(f"/patients/{own}/closing-report").text
    assert REASON.replace("'", "&#39;") in html
    outcomes = re.search(
        r'<table class="report-table" id="closing-outcomes">.*?</table>', html, re.S
    )
    assert outcomes is not None
    red = re.search(r'<tr data-severity="2">.*?</tr>', outcomes.group(0), re.S).group(0)
    # Severity in words; two red episodes: one advised by phone, one closed at discharge.
    assert "Red" in red and "<td>2</td>" in red
    assert "advised by phone: 1" in red and "closed at discharge: 1" in red

    response = client.get(f"/patients/{own}/closing-report.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content == bytes(pdf)
    text = " ".join(_pdf_text(response.content).split())
    assert "Closing report" in text and "P-0001" in text
    assert REASON in text
    assert f"{days} days, from {first:%d/%m/%Y} to {today:%d/%m/%Y}" in text
    assert "closed at discharge: 1" in text and "advised by phone: 1" in text
    assert "Oxygen saturation" in text and "84" in text  # the last SpO2 value
    assert "Frozen at discharge by" in text
    assert [(a, p) for a, p, _ in _audit(db, "patient.closing_report.pdf")] == [("dr.rossi", own)]


def test_the_closing_report_does_not_change_afterwards(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    today = datetime.now(LOCAL_TZ).date()
    _discharge(client, own, today)
    frozen = db.execute("SELECT pdf FROM period_reports WHERE patient_id = %s", (own,)).fetchone()
    login(client, "dr.rossi")
    before = client.get(f"/patients/{own}/closing-report.pdf").content
    assert before == bytes(frozen[0])
    # A reading that arrives late, inside the span, changes nothing frozen.
    add_readings(db, own, [("spo2", 60, 71.0)], datetime.now(UTC))
    assert client.get(f"/patients/{own}/closing-report.pdf").content == before
    html = client.get(f"/patients/{own}/closing-report").text
    last_spo2 = re.search(
        r'id="closing-last-values">.*?<tr data-metric="spo2">(.*?)</tr>', html, re.S
    )
    assert last_spo2 is not None and "71" not in last_spo2.group(1)
    # A second discharge is refused and makes no second report.
    csrf = login(client, "admin")
    again = client.post(
        f"/admin/patients/{own}/discharge",
        data={"csrf_token": csrf, "discharge_date": today.isoformat(), "discharge_reason": "x"},
    )
    assert again.status_code == 422
    assert db.execute("SELECT count(*) FROM period_reports").fetchone()[0] == 1


def test_closing_report_access_and_fhir_bundle(
    app, client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    today = datetime.now(LOCAL_TZ).date()
    _discharge(client, own, today - timedelta(days=1))  # a discharge dated yesterday
    urls = [f"/patients/{own}/{leaf}" for leaf in ("closing-report", "closing-report.pdf")]
    fhir_url = f"/patients/{own}/closing-report.fhir"

    def signed_in(username: str) -> TestClient:
        other = TestClient(app, follow_redirects=False)
        login(other, username)
        return other

    assert [signed_in("dr.bianchi").get(u).status_code for u in [*urls, fhir_url]] == [404] * 3
    assert [signed_in("nurse.conti").get(u).status_code for u in [*urls, fhir_url]] == [404] * 3
    assert [signed_in("admin").get(u).status_code for u in [*urls, fhir_url]] == [403] * 3
    nurse = signed_in("nurse.greco")
    assert [nurse.get(u).status_code for u in urls] == [200, 200]  # the centre reads it
    reads = _audit(db, "patient.closing_report.read")
    assert [(a, p, d["to"]) for a, p, d in reads] == [
        ("nurse.greco", own, (today - timedelta(days=1)).isoformat())
    ]

    login(client, "dr.rossi")
    response = client.get(fhir_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(response.json())
    report, *observations = [e.resource for e in bundle.entry]
    assert report.__resource_type__ == "DiagnosticReport"
    assert report.code.text == "Telemonitoring closing report"
    assert report.identifier[0].system == "urn:telemon:closing-report"
    assert report.subject.reference == f"Patient/{own}"
    assert len(report.result) == len(observations) > 50
    pdf = db.execute("SELECT pdf FROM period_reports WHERE patient_id = %s", (own,)).fetchone()[0]
    assert report.presentedForm[0].size == len(bytes(pdf))
    assert _audit(db, "patient.closing_report.fhir")[-1][:2] == ("dr.rossi", own)
    # The other patients have none.
    other = world.patients["other_gp"]
    login(client, "dr.bianchi")
    assert client.get(f"/patients/{other}/closing-report.fhir").status_code == 404
