"""Oscuramento (issue 20, dashboard/restrictions.py): data the patient asked to hide is left out
for everyone but their GP on every read path: the patient page, the API, charts, the triage
queue, episodes and findings, FHIR search, $everything (JSON and CSV), reports and readings.csv.

conftest's "own" patient is dr.rossi's, in nurse.greco's centre; its open episode holds three
SpO2 findings of the COVID-19 oximetry protocol, and it has SpO2 and pulse readings.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from psycopg.types.json import Jsonb

from alerts.reminders.texts import render_reminder
from telemon.metrics import METRICS
from tests.dashboard.conftest import World
from tests.dashboard.support import login

SPO2, PULSE = "59408-5", "8867-4"


def _as(client: TestClient, username: str) -> dict[str, str]:
    client.cookies.clear()
    return {"x-csrf-token": login(client, username)}


def _restrict(client: TestClient, world: World, body: dict[str, object]) -> list[dict]:
    headers = _as(client, "dr.rossi")
    response = client.post(
        f"/api/patients/{world.patients['own']}/restrictions",
        headers=headers,
        json={"requested_on": date.today().isoformat(), "reason": "asked at the visit"} | body,
    )
    assert response.status_code == 201, response.text
    return response.json()


def _reads(client: TestClient, world: World) -> dict[str, object]:
    """What the signed-in user gets of the "own" patient on each read path."""
    p, e = world.patients["own"], world.episodes["own"]
    fhir = {
        code: client.get(f"/fhir/Observation?patient={p}&code={code}").json()["total"]
        for code in (SPO2, PULSE)
    }
    episode = client.get(f"/api/episodes/{e}").json()
    triage = client.get("/api/triage")
    queued = (
        next((q for q in triage.json() if q["id"] == e), None)
        if triage.status_code == 200
        else None
    )
    return {
        "spo2_points": len(client.get(f"/api/patients/{p}/series/spo2?days=7").json()["points"]),
        "pulse_points": len(
            client.get(f"/api/patients/{p}/series/pulse_rate?days=7").json()["points"]
        ),
        "fhir": fhir,
        "finding_metrics": sorted({f["metric"] or "" for f in episode["findings"]}),
        "withheld": episode["withheld"],
        "queued": queued,
        "spo2_low": client.get(f"/api/alerts/{world.alerts['own']}").status_code,
        "protocols": [a["protocol"] for a in client.get(f"/api/patients/{p}").json()["protocols"]],
        "page": client.get(f"/patients/{p}").text,
    }


def test_a_hidden_metric_is_the_gps_alone_on_every_read_path(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    # Before: the nurse sees the SpO2 readings and findings.
    _as(client, "nurse.greco")
    before = _reads(client, world)
    assert before["spo2_points"] > 0 and before["fhir"][SPO2] > 0
    assert "spo2" in before["finding_metrics"] and before["withheld"] == 0

    listed = _restrict(client, world, {"kind": "metric_category", "category": "spo2"})
    assert [(r["kind"], r["category"], r["recorded_by"]) for r in listed] == [
        ("metric_category", "spo2", "Dr Rossi")
    ]
    audit = db.execute(
        "SELECT actor_username, relation, details->>'requested_on' FROM audit_log "
        "WHERE action = 'patient.restriction.record'"
    ).fetchall()
    assert audit == [("dr.rossi", "own_gp", date.today().isoformat())]

    gp = _reads(client, world)  # dr.rossi, the patient's GP: everything
    assert gp["spo2_points"] == before["spo2_points"]
    assert gp["fhir"] == before["fhir"] and gp["withheld"] == 0

    _as(client, "nurse.greco")
    nurse = _reads(client, world)
    assert nurse["spo2_points"] == 0 and nurse["fhir"][SPO2] == 0
    assert nurse["pulse_points"] == before["pulse_points"] and nurse["fhir"][PULSE] > 0
    assert "spo2" not in nurse["finding_metrics"]
    assert nurse["withheld"] >= 2  # the SpO2 low and SpO2 falling findings
    assert nurse["spo2_low"] == 404
    # The episode stays in the queue (it is red): its hidden findings counted, not shown.
    queued = nurse["queued"]
    assert queued is not None and queued["severity"] == 2 and queued["withheld"] >= 2
    assert all(f["metric"] != "spo2" for f in queued["findings"])
    page = nurse["page"]
    assert "data-withheld" in page and "call the GP, Dr Rossi" in page
    assert 'id="restrictions"' not in page  # the restrictions are the GP's business
    assert METRICS["spo2"].label("en") in before["page"]
    assert METRICS["spo2"].label("en") not in page  # no chart, limit or schedule of SpO2

    # The reports and readings.csv the nurse makes leave SpO2 out.
    p = world.patients["own"]
    csv = client.get(f"/patients/{p}/readings.csv")
    assert csv.status_code == 200 and ",spo2," not in csv.text and ",pulse_rate," in csv.text
    report = client.get(f"/patients/{p}/report")
    assert report.status_code == 200

    # The privacy officer's record export leaves it out and says so; the GP's has it all.
    _as(client, "privacy.officer")
    everything = client.get(f"/fhir/Patient/{p}/$everything")
    bundle = json.loads(everything.text)
    Bundle.model_validate(bundle)  # the withheld record, its OperationOutcome entry included
    resources = [e["resource"] for e in bundle["entry"]]
    codes = {
        c["code"]
        for r in resources
        if r["resourceType"] == "Observation"
        for c in r["code"]["coding"]
    }
    assert SPO2 not in codes and PULSE in codes
    outcome = [e for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["resource"]["issue"][0]["code"] == "suppressed"
    exported = client.get(f"/fhir/Patient/{p}/$everything?_format=text/csv")
    assert exported.headers["x-telemon-withheld"] == "oscuramento"
    assert ",spo2," not in exported.text and ",pulse_rate," in exported.text
    _as(client, "dr.rossi")
    whole = json.loads(client.get(f"/fhir/Patient/{p}/$everything").text)
    assert all(e["search"]["mode"] == "match" for e in whole["entry"])
    assert any(
        c["code"] == SPO2
        for e in whole["entry"]
        if e["resource"]["resourceType"] == "Observation"
        for c in e["resource"]["code"]["coding"]
    )

    # Withdrawn: the nurse sees it again, and the withdrawal is audited.
    headers = _as(client, "dr.rossi")
    revoked = client.post(
        f"/api/patients/{p}/restrictions/revoke",
        headers=headers,
        json={"restriction": listed[0]["id"]},
    )
    assert revoked.status_code == 200 and revoked.json()[0]["revoked_by"] == "Dr Rossi"
    _as(client, "nurse.greco")
    after = _reads(client, world)
    assert after["spo2_points"] == before["spo2_points"] and after["withheld"] == 0
    assert (
        db.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'patient.restriction.revoke'"
        ).fetchone()[0]
        == 1
    )


def test_a_hidden_protocol_hides_its_findings_but_not_the_episode(
    client: TestClient, world: World
) -> None:
    _restrict(client, world, {"kind": "protocol", "protocol": "covid19_home_oximetry"})
    _as(client, "nurse.greco")
    nurse = _reads(client, world)
    assert nurse["protocols"] == []
    assert nurse["finding_metrics"] == [] and nurse["withheld"] >= 3
    assert nurse["queued"] is not None and nurse["queued"]["findings"] == []
    assert nurse["spo2_points"] == 0 and nurse["fhir"][PULSE] == 0  # the protocol's metrics
    # The period report's monitoring plan leaves the protocol out, as the patient page does.
    report = client.get(f"/patients/{world.patients['own']}/report").text
    assert "home oximetry" not in report, report[report.find("home oximetry") - 300 :][:400]
    _as(client, "dr.rossi")
    assert "home oximetry" in client.get(f"/patients/{world.patients['own']}/report").text


def test_a_hidden_period_hides_its_readings_only(client: TestClient, world: World) -> None:
    _as(client, "nurse.greco")
    before = _reads(client, world)
    today = date.today()
    _restrict(
        client,
        world,
        {
            "kind": "period",
            "first": (today - timedelta(days=1)).isoformat(),
            "last": today.isoformat(),
        },
    )
    _as(client, "nurse.greco")
    nurse = _reads(client, world)
    assert 0 < nurse["spo2_points"] < before["spo2_points"]
    assert nurse["withheld"] >= 3  # the findings opened today


@pytest.mark.parametrize(
    ("username", "status"),
    [
        ("nurse.greco", 403),
        ("privacy.officer", 403),
        ("dr.bianchi", 404),
        ("admin.milano", 404),
        ("admin", 201),
    ],
)
def test_who_may_record_a_request(
    client: TestClient, world: World, username: str, status: int
) -> None:
    """The patient's GP, or an admin of the patient's organisation, on the patient's word."""
    headers = _as(client, username)
    response = client.post(
        f"/api/patients/{world.patients['own']}/restrictions",
        headers=headers,
        json={
            "kind": "metric_category",
            "category": "spo2",
            "requested_on": date.today().isoformat(),
        },
    )
    assert response.status_code == status
    if status != 201:
        assert "Colombo" not in response.text


def test_bad_requests_are_refused_with_a_reason(client: TestClient, world: World) -> None:
    headers = _as(client, "dr.rossi")
    url = f"/api/patients/{world.patients['own']}/restrictions"
    today = date.today()
    for body, words in (
        ({"kind": "metric_category", "category": "mood"}, "unknown metric category"),
        ({"kind": "protocol", "protocol": "astrology"}, "unknown care protocol"),
        ({"kind": "period", "first": today.isoformat()}, "first and last"),
        (
            {
                "kind": "metric_category",
                "category": "spo2",
                "requested_on": (today + timedelta(days=3)).isoformat(),
            },
            "future",
        ),
    ):
        response = client.post(
            url, headers=headers, json={"requested_on": today.isoformat()} | body
        )
        assert response.status_code == 422 and words in response.text, (body, response.text)


def test_the_gps_form_on_the_patient_page(client: TestClient, world: World) -> None:
    csrf = _as(client, "dr.rossi")["x-csrf-token"]
    p = world.patients["own"]
    page = client.get(f"/patients/{p}")
    assert 'id="restrictions"' in page.text and 'name="requested_on"' in page.text
    response = client.post(
        f"/patients/{p}/restrictions",
        data={
            "csrf_token": csrf,
            "kind": "metric_category",
            "category": "pulse_rate",
            "requested_on": date.today().isoformat(),
        },
    )
    assert response.status_code == 303
    page = client.get(f"/patients/{p}")
    assert "data-restriction-id" in page.text and 'data-action="revoke-restriction"' in page.text


def _finding(db: psycopg.Connection, world: World, rule: str, kind: str, evidence: dict) -> int:
    """A finding of the own patient's open episode, as the engine stores it."""
    return db.execute(
        "INSERT INTO alerts (patient_id, protocol, rule, kind, severity, metric_id, details, "
        "episode_id) VALUES (%s, 'covid19_home_oximetry', %s, %s, 2, %s, %s, %s) RETURNING id",
        (
            world.patients["own"],
            rule,
            kind,
            METRICS[evidence["metric"]].id if "metric" in evidence else None,
            Jsonb({"evidence": evidence}),
            world.episodes["own"],
        ),
    ).fetchone()[0]


def test_a_score_drawing_on_a_hidden_metric_is_hidden_with_it(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    """A NEWS2 finding has no single metric: its evidence shows each parameter's value, so a
    hidden SpO2 hides the score from the nurse (counted as withheld, as any hidden finding);
    a missing-readings task of a hidden metric does not flag the patient list either."""
    now = datetime.now(UTC).isoformat()
    score = _finding(
        db,
        world,
        "news2",
        "clinical",
        {
            "kind": "score",
            "rule": "news2",
            "protocol": "covid19_home_oximetry",
            "level": 2,
            "at": now,
            "total": 7,
            "on": "total",
            "op": ">=",
            "threshold": 7,
            "parameters": [
                {"metric": "spo2", "value": 89, "points": 3, "age_s": 60},
                {"metric": "pulse_rate", "value": 118, "points": 2, "age_s": 60},
            ],
            "of": 5,
            "min_parameters": 3,
        },
    )
    task = _finding(
        db,
        world,
        "spo2_missing",
        "not_measuring",
        {
            "kind": "missing_data",
            "rule": "spo2_missing",
            "protocol": "covid19_home_oximetry",
            "level": 2,
            "at": now,
            "metric": "spo2",
            "hours": 14,
            "op": ">=",
            "threshold": 12,
        },
    )
    p = world.patients["own"]

    def seen(username: str) -> tuple[set[int], int, bool]:
        _as(client, username)
        episode = client.get(f"/api/episodes/{world.episodes['own']}").json()
        listed = next(r for r in client.get("/api/patients").json() if r["id"] == p)
        return {f["id"] for f in episode["findings"]}, episode["withheld"], listed["not_measuring"]

    nurse_before = seen("nurse.greco")
    assert {score, task} <= nurse_before[0] and nurse_before[2] is True
    _restrict(client, world, {"kind": "metric_category", "category": "spo2"})
    findings, withheld, not_measuring = seen("nurse.greco")
    assert score not in findings and task not in findings
    assert withheld >= nurse_before[1] + 2
    assert not_measuring is False  # no flag that would say a hidden reading is missing
    page = client.get(f"/patients/{p}").text
    assert "NEWS2" not in page and "89" not in page
    # The GP sees both, and the flag.
    gp_findings, _, gp_flag = seen("dr.rossi")
    assert {score, task} <= gp_findings and gp_flag is True


def test_the_sms_outbox_masks_a_message_naming_a_hidden_finding(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    """The GP's SMS names the finding, and so does the centre's written before the request, and
    the patient's reminder to measure names the metric: after the request, the nurses' outbox
    (page and API) shows none of their texts, only that one is hidden; the other patients'
    messages stay as they are."""
    p = world.patients["own"]
    spo2 = ("oxygen", "spo2", "saturazione")
    db.execute(
        "INSERT INTO notifications (idempotency_key, patient_id, reason, stage, recipient_kind, "
        "to_address, body, status, reminder_metric_id) "
        "VALUES ('reminder:test', %s, 'reminder', 'reminder:spo2:0', 'patient', '+393330000000', "
        "%s, 'outboxed', %s)",
        (p, render_reminder("spo2", "en"), METRICS["spo2"].id),
    )

    def own_bodies() -> dict[str, list[tuple[str, str, bool]]]:
        found = {}
        for status in ("failed", "outboxed"):
            listed = client.get(f"/api/notifications/{status}")
            assert listed.status_code == 200
            found[status] = [
                (n["recipient_kind"], n["body"], n["withheld"])
                for n in listed.json()
                if n["patient_id"] == p
            ]
        return found

    _as(client, "nurse.greco")
    before = own_bodies()
    kinds = {kind for rows in before.values() for kind, _, _ in rows}
    assert {"gp", "patient"} <= kinds, before  # the GP's SMS about the red SpO2 episode
    assert all(
        any(w in body.lower() for w in spo2) for rows in before.values() for _, body, _ in rows
    )
    others_before = client.get("/api/notifications/outboxed").json()

    _restrict(client, world, {"kind": "metric_category", "category": "spo2"})
    _as(client, "nurse.greco")
    after = own_bodies()
    assert [len(r) for r in after.values()] == [len(r) for r in before.values()]
    for rows in after.values():
        for _, body, withheld in rows:
            assert withheld and not any(w in body.lower() for w in spo2), body
            assert "hidden at the patient's request" in body or "oscurati" in body
    page = html.unescape(client.get("/sms").text)
    stored = db.execute(
        "SELECT n.body FROM notifications n LEFT JOIN episodes e ON e.id = n.episode_id "
        "WHERE %s IN (e.patient_id, n.patient_id)",
        (p,),
    ).fetchall()
    assert stored and all(body not in page for (body,) in stored)
    assert "oscurati" in page or "hidden at the patient's request" in page
    # Messages about other patients are untouched.
    others_after = client.get("/api/notifications/outboxed").json()
    assert [n for n in others_after if n["patient_id"] != p] == [
        n for n in others_before if n["patient_id"] != p
    ]


def test_the_admins_form_records_and_lifts_a_request(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    """An admin of the patient's organisation finds the patient by code, reads the requests
    (an audited read) and records and lifts one with the same form as the GP's, returning to
    the admin's page; the nurse then sees the data hidden, then shown again."""
    p = world.patients["own"]
    csrf = _as(client, "admin")["x-csrf-token"]
    assert 'href="/admin/restrictions"' in client.get("/admin").text
    assert f'href="/admin/patients/{p}/restrictions"' in client.get(f"/admin/patients/{p}").text
    found = client.get("/admin/restrictions?code=P-0001")
    assert found.status_code == 303
    assert found.headers["location"] == f"/admin/patients/{p}/restrictions"
    unknown = client.get("/admin/restrictions?code=P-0004")  # the other organisation's
    assert unknown.status_code == 404 and "Marino" not in unknown.text
    page = client.get(f"/admin/patients/{p}/restrictions")
    assert page.status_code == 200 and "Colombo" in page.text
    assert 'name="back" value="admin"' in page.text and "data-restriction-id" not in page.text
    assert 'value="covid19_home_oximetry"' in page.text  # the patient's protocol, to hide
    reads = db.execute(
        "SELECT actor_username, patient_id FROM audit_log "
        "WHERE action = 'patient.restrictions.read'"
    ).fetchall()
    assert reads == [("admin", p)]

    recorded = client.post(
        f"/patients/{p}/restrictions",
        data={
            "csrf_token": csrf,
            "back": "admin",
            "kind": "metric_category",
            "category": "spo2",
            "requested_on": date.today().isoformat(),
            "reason": "asked at the front desk",
        },
    )
    assert recorded.status_code == 303
    assert recorded.headers["location"] == f"/admin/patients/{p}/restrictions"
    page = client.get(recorded.headers["location"]).text
    assert "asked at the front desk" in page and 'data-action="revoke-restriction"' in page
    restriction = db.execute(
        "SELECT id, recorded_by FROM patient_restrictions WHERE patient_id = %s", (p,)
    ).fetchone()
    assert restriction[1] == world.staff["admin"]
    _as(client, "nurse.greco")
    assert _reads(client, world)["spo2_points"] == 0

    csrf = _as(client, "admin")["x-csrf-token"]
    bad = client.post(
        f"/patients/{p}/restrictions",
        data={"csrf_token": csrf, "back": "https://elsewhere.example", "revoke": "1"},
    )
    assert bad.status_code == 422  # a return target not in the table
    refused = client.post(
        f"/patients/{p}/restrictions",
        data={
            "csrf_token": csrf,
            "back": "admin",
            "kind": "period",
            "first": "2024-02-01",
            "last": "2024-01-01",
            "requested_on": "2024-02-02",
        },
    )
    assert refused.status_code == 422
    assert "a period needs its first and last day, in that order" in refused.text
    lifted = client.post(
        f"/patients/{p}/restrictions",
        data={"csrf_token": csrf, "back": "admin", "revoke": str(restriction[0])},
    )
    assert lifted.status_code == 303
    assert lifted.headers["location"] == f"/admin/patients/{p}/restrictions"
    page = client.get(lifted.headers["location"]).text
    assert "data-restriction-id" in page and 'data-action="revoke-restriction"' not in page
    _as(client, "nurse.greco")
    assert _reads(client, world)["spo2_points"] > 0
    actions = db.execute(
        "SELECT action FROM audit_log WHERE actor_username = 'admin' AND patient_id = %s "
        "AND action LIKE 'patient.restriction%%' ORDER BY seq",
        (p,),
    ).fetchall()
    assert [a for (a,) in actions if a != "patient.restrictions.read"] == [
        "patient.restriction.record",
        "patient.restriction.revoke",
    ]


@pytest.mark.parametrize(
    ("username", "status"),
    [("nurse.greco", 403), ("privacy.officer", 403), ("admin.milano", 404), ("dr.bianchi", 404)],
)
def test_the_admins_page_is_for_those_who_record(
    client: TestClient, world: World, username: str, status: int
) -> None:
    _as(client, username)
    response = client.get(f"/admin/patients/{world.patients['own']}/restrictions")
    assert response.status_code == status and "Colombo" not in response.text


@pytest.mark.parametrize(
    "hidden",
    [
        {"kind": "metric_category", "category": "spo2"},
        {"kind": "metric_category", "category": "pulse_rate"},
        {"kind": "protocol", "protocol": "covid19_home_oximetry"},
        {"kind": "period", "first": "2024-01-01", "last": date.today().isoformat()},
    ],
)
def test_the_withheld_record_is_still_valid_fhir(
    client: TestClient, world: World, hidden: dict[str, str]
) -> None:
    """Whatever is hidden, the record the privacy officer exports is a valid R4 Bundle that
    says data was withheld (a plan with nothing left to watch has no empty description)."""
    _restrict(client, world, hidden)
    _as(client, "privacy.officer")
    response = client.get(f"/fhir/Patient/{world.patients['own']}/$everything")
    assert response.status_code == 200
    bundle = Bundle.model_validate(response.json())
    outcomes = [e for e in bundle.entry if e.search.mode == "outcome"]
    assert [o.resource.issue[0].code for o in outcomes] == ["suppressed"]
