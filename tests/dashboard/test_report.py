"""The period report as a GP gets it: print view, PDF (its text read back), readings CSV,
validation that freezes it, its FHIR Bundle; on episodes the real engine opened."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from pypdf import PdfReader

from dashboard.web import LOCAL_TZ
from telemon.metrics import METRICS_BY_ID
from tests.dashboard.conftest import World, add_readings
from tests.dashboard.support import login


def _period() -> tuple[str, str, dict[str, str]]:
    today = datetime.now(LOCAL_TZ).date()
    first, last = (today - timedelta(days=13)).isoformat(), today.isoformat()
    return first, last, {"from": first, "to": last}


def _pdf_text(content: bytes) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def _audit(db: psycopg.Connection, action: str) -> list[tuple]:
    return db.execute(
        "SELECT actor_username, patient_id, details FROM audit_log WHERE action = %s ORDER BY id",
        (action,),
    ).fetchall()


def test_print_view_shows_the_plan_summary_and_the_engines_episodes(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    _, _, period = _period()
    login(client, "dr.rossi")
    assert f'href="/patients/{own}/report"' in client.get(f"/patients/{own}").text
    page = client.get(f"/patients/{own}/report", params=period)
    assert page.status_code == 200
    html = page.text
    assert "P-0001" in html and "Maria Colombo" in html
    assert "COVID" in html  # the plan names the protocol
    assert "one reading every 8 h" in html  # its schedule, with adherence beside it
    assert "Amber: total score ≥ 5" in html and "max_parameter" not in html  # words, no keys
    assert re.search(r'<tr data-metric="spo2"><td>Oxygen saturation', html)
    # The episode the engine opened, with its findings' reasons in words, severity in words.
    episode = re.search(rf'<tr data-episode-id="{world.episodes["own"]}".*?</tr>', html, re.S)
    assert episode is not None
    assert "Red" in episode.group(0) and "SpO2" in episode.group(0)
    assert 'id="report-validate"' in html and "Not validated" in html
    assert _audit(db, "patient.report.read")[-1][:2] == ("dr.rossi", own)


def test_pdf_names_the_patient_code_and_the_period(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    first, last, period = _period()
    login(client, "dr.rossi")
    response = client.get(f"/patients/{own}/report.pdf", params=period)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF-")
    text = _pdf_text(response.content)
    day = lambda iso: datetime.fromisoformat(iso).strftime("%d/%m/%Y")  # noqa: E731
    assert "P-0001" in text
    assert day(first) in text and day(last) in text
    assert "Low oxygen saturation" in text or "SpO2" in text
    assert "Episodes in the period" in text
    assert "37.4" in text and "37,4" not in text  # the temperature, English decimal point
    assert _audit(db, "patient.report.pdf")[-1][:2] == ("dr.rossi", own)


HEADINGS = {"it": "Relazione di telemonitoraggio", "en": "Monitoring report"}
EPISODES = {"it": "Episodi nel periodo", "en": "Episodes in the period"}
SUMMARY = {"it": "Riepilogo per misura", "en": "Summary by measure"}


def test_pdf_in_italian_names_the_patient_the_period_and_writes_italian_numbers(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    first, last, period = _period()
    db.execute("UPDATE staff SET language = 'it' WHERE id = %s", (world.staff["gp"],))
    login(client, "dr.rossi")
    response = client.get(f"/patients/{own}/report.pdf", params=period)
    assert response.status_code == 200
    text = _pdf_text(response.content)
    day = lambda iso: datetime.fromisoformat(iso).strftime("%d/%m/%Y")  # noqa: E731
    assert "P-0001" in text and "Maria Colombo" in text
    assert f"Periodo: {day(first)} – {day(last)}" in text
    for heading in (HEADINGS, EPISODES, SUMMARY):
        assert heading["it"] in text and heading["en"] not in text
    assert "Rosso" in text  # the episode's severity, in words
    # The one temperature reading (37.4 °C) with the Italian decimal comma, never the point.
    assert "37,4" in text and "37.4" not in text
    assert "una misura ogni 8 h" in text  # the plan's schedule


@pytest.mark.parametrize(("validator", "reader"), [("it", "en"), ("en", "it")])
def test_a_validated_report_is_frozen_in_the_validators_language(
    app,
    client: TestClient,
    world: World,
    db: psycopg.Connection,
    validator: str,
    reader: str,
) -> None:
    """The GP validates in their language; the centre's nurse, reading in the other, gets the
    very text, PDF and Bundle the GP signed off, the page around it in the nurse's language."""
    own = world.patients["own"]
    _, _, period = _period()
    db.execute("UPDATE staff SET language = %s WHERE id = %s", (validator, world.staff["gp"]))
    db.execute("UPDATE staff SET language = %s WHERE id = %s", (reader, world.staff["nurse"]))
    csrf = login(client, "dr.rossi")
    done = client.post(f"/patients/{own}/report/validate", data={**period, "csrf_token": csrf})
    assert done.status_code == 303
    language, pdf, body = db.execute(
        "SELECT language, pdf, body_html FROM period_reports WHERE patient_id = %s", (own,)
    ).fetchone()
    assert language == validator
    assert f'<article class="report" lang="{validator}"' in body
    assert HEADINGS[validator] in body and HEADINGS[reader] not in body
    text = _pdf_text(bytes(pdf))
    assert HEADINGS[validator] in text and EPISODES[validator] in text
    assert HEADINGS[reader] not in text
    assert _audit(db, "patient.report.validate")[-1][2]["language"] == validator

    nurse = TestClient(app, follow_redirects=False)
    login(nurse, "nurse.greco")
    frozen_in = {
        ("it", "en"): "Validated text in Italian.",
        ("en", "it"): "Testo convalidato in inglese.",
    }
    for who, reads_in in ((client, validator), (nurse, reader)):
        page = who.get(f"/patients/{own}/report", params=period)
        assert page.status_code == 200
        assert f'<html lang="{reads_in}"' in page.text  # the page is the reader's
        assert f'<div class="card report-page" lang="{validator}">{body}</div>' in page.text
        assert who.get(f"/patients/{own}/report.pdf", params=period).content == bytes(pdf)
        bundle = who.get(f"/patients/{own}/report.fhir", params=period).json()
        diagnostic = bundle["entry"][0]["resource"]
        assert diagnostic["language"] == validator
        assert diagnostic["presentedForm"][0]["language"] == validator
    assert frozen_in[(validator, reader)] in page.text  # the nurse's page names the language


def test_csv_rows_are_the_stored_readings(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    first, _, period = _period()
    start = datetime.fromisoformat(first).replace(tzinfo=LOCAL_TZ)
    stored = db.execute(
        "SELECT measured_at, metric_id, value FROM observations WHERE patient_id = %s "
        "AND measured_at >= %s ORDER BY measured_at, metric_id",
        (own, start),
    ).fetchall()
    login(client, "dr.rossi")
    response = client.get(f"/patients/{own}/readings.csv", params=period)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0])[:6] == ["time", "metric", "value", "unit", "device", "flags"]
    # Then the rest of every readings export ($everything's CSV has the same columns).
    assert list(rows[0])[6:] == [
        "time_utc",
        "loinc",
        "device_address",
        "device_udi",
        "gateway",
        "device_time",
        "received_at",
        "time_correction_s",
        "time_basis",
    ]
    assert all(
        datetime.fromisoformat(r["time_utc"]) == datetime.fromisoformat(r["time"]) for r in rows
    )
    assert all(r["time_utc"].endswith("+00:00") for r in rows)
    assert {r["loinc"] for r in rows} <= {m.loinc for m in METRICS_BY_ID.values()}
    assert [
        (datetime.fromisoformat(r["time"]), r["metric"], float(r["value"]), r["unit"]) for r in rows
    ] == [(at, METRICS_BY_ID[m].key, v, METRICS_BY_ID[m].unit) for at, m, v in stored]
    assert len(rows) > 50
    assert _audit(db, "patient.readings.csv")[-1][2]["rows"] == len(stored)


def test_validation_freezes_the_report(
    app, client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    first, last, period = _period()
    csrf = login(client, "dr.rossi")
    done = client.post(f"/patients/{own}/report/validate", data={**period, "csrf_token": csrf})
    assert done.status_code == 303
    assert done.headers["location"] == f"/patients/{own}/report?from={first}&to={last}"
    row = db.execute(
        "SELECT pdf, pdf_sha256, validated_by FROM period_reports WHERE patient_id = %s", (own,)
    ).fetchone()
    assert row[1] == hashlib.sha256(bytes(row[0])).hexdigest()
    assert row[2] == world.staff["gp"]
    frozen = client.get(f"/patients/{own}/report.pdf", params=period).content
    assert frozen == bytes(row[0])
    assert "Validated by Dr Rossi" in _pdf_text(frozen)
    # A reading that arrives later, inside the period, changes neither the PDF nor the page.
    add_readings(db, own, [("spo2", 5, 71.0)], datetime.now(UTC))
    assert client.get(f"/patients/{own}/report.pdf", params=period).content == frozen
    page = client.get(f"/patients/{own}/report", params=period).text
    assert row[1] in page and 'id="report-validate"' not in page
    # Validating again (a second click) keeps the first validation.
    again = client.post(f"/patients/{own}/report/validate", data={**period, "csrf_token": csrf})
    assert again.status_code == 303
    assert db.execute("SELECT count(*) FROM period_reports").fetchone()[0] == 1
    assert len(_audit(db, "patient.report.validate")) == 1
    # The FHIR Bundle: a DiagnosticReport with the period's Observations and the frozen PDF.
    response = client.get(f"/patients/{own}/report.fhir", params=period)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(response.json())
    resources = [e.resource for e in bundle.entry]
    report, observations = resources[0], resources[1:]
    assert report.__resource_type__ == "DiagnosticReport"
    assert report.subject.reference == f"Patient/{own}"
    assert len(report.result) == len(observations) > 50
    assert all(o.__resource_type__ == "Observation" for o in observations)
    assert {r.reference for r in report.result} == {f"Observation/{o.id}" for o in observations}
    assert 71.0 not in {o.valueQuantity.value for o in observations}  # the late reading
    form = report.presentedForm[0]
    assert form.contentType == "application/pdf" and form.size == len(frozen)


def test_access_rules_and_bad_dates(
    app, client: TestClient, world: World, db: psycopg.Connection
) -> None:
    own = world.patients["own"]
    _, _, period = _period()
    urls = [f"/patients/{own}/{leaf}" for leaf in ("report", "report.pdf", "readings.csv")]

    def signed_in(username: str) -> tuple[TestClient, str]:
        # The app is running (the client fixture): more people on it, each with a session.
        other = TestClient(app, follow_redirects=False)
        return other, login(other, username)

    other_gp, _ = signed_in("dr.bianchi")
    assert [other_gp.get(u, params=period).status_code for u in urls] == [404] * 3
    far_nurse, _ = signed_in("nurse.conti")
    assert [far_nurse.get(u, params=period).status_code for u in urls] == [404] * 3
    admin, _ = signed_in("admin")
    assert [admin.get(u, params=period).status_code for u in urls] == [403] * 3
    nurse, csrf = signed_in("nurse.greco")
    assert nurse.get(urls[0], params=period).status_code == 200  # the centre reads it
    refused = nurse.post(f"/patients/{own}/report/validate", data={**period, "csrf_token": csrf})
    assert refused.status_code == 403  # only the GP validates
    assert db.execute("SELECT count(*) FROM period_reports").fetchone()[0] == 0
    login(client, "dr.rossi")
    reads = len(_audit(db, "patient.report.read"))
    for params, reason in (
        ({"from": "2026-13-01", "to": "2026-12-31"}, "YYYY-MM-DD"),
        ({"from": "yesterday"}, "YYYY-MM-DD"),
        ({"from": "2026-03-08", "to": "2026-03-01"}, "from must not be after to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "at most 366 days"),
        ({"to": "2999-01-01"}, "after today"),
    ):
        for url in urls:
            response = client.get(url, params=params)
            assert response.status_code == 422, (url, params)
            assert reason in response.text
        # The Bundle's URL answers as FHIR does: an OperationOutcome naming the reason.
        outcome = client.get(f"/patients/{own}/report.fhir", params=params)
        assert outcome.status_code == 422
        assert outcome.headers["content-type"].startswith("application/fhir+json")
        issue = outcome.json()["issue"][0]
        assert issue["code"] == "invalid" and reason in issue["diagnostics"]
    explicit = client.post(
        f"/patients/{own}/report/validate", data={"csrf_token": login(client, "dr.rossi")}
    )
    assert explicit.status_code == 422 and "from and to are required" in explicit.text
    # Whose report first: another GP's patient is not found, whatever the form holds.
    theirs = world.patients["other_gp"]
    hidden = client.post(
        f"/patients/{theirs}/report/validate", data={"csrf_token": login(client, "dr.rossi")}
    )
    assert hidden.status_code == 404
    # Refused dates read nothing: no more reads on record.
    assert len(_audit(db, "patient.report.read")) == reads
