"""The pages a nurse and a GP work with, rendered and acted on through the browser forms."""

from __future__ import annotations

import re

import psycopg
from fastapi.testclient import TestClient

from tests.dashboard.conftest import World, login


def _form_csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_nurse_triage_queue_is_ordered_by_severity_then_age(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    from tests.dashboard.conftest import insert_alert

    older_red = insert_alert(db, world.patients["other_gp"], 2, minutes_ago=600)
    login(client, "nurse.greco")
    page = client.get("/triage")
    assert page.status_code == 200
    ids = [int(i) for i in re.findall(r'data-alert-id="(\d+)"', page.text)]
    # Red first (the older red before the newer one), then amber; the other centre's is absent.
    assert ids == [older_red, world.alerts["own"], world.alerts["other_gp"]]
    assert "Anna Ricci" not in page.text
    assert "Gateways offline" in page.text


def test_nurse_claims_records_outcome_escalates_and_resolves(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "nurse.greco")
    alert = world.alerts["own"]
    csrf = _form_csrf(client.get(f"/alerts/{alert}").text)
    for action, data in (
        ("claim", {}),
        ("outcome", {"outcome": "reached", "note": "SpO2 rechecked 93%"}),
        ("escalate", {"note": "GP to review today"}),
        ("resolve", {"note": "GP visited, antibiotics"}),
    ):
        response = client.post(
            f"/alerts/{alert}/{action}", data={"csrf_token": csrf, "next": "/triage", **data}
        )
        assert response.status_code == 303, (action, response.text)
        assert response.headers["location"] == "/triage"
    row = db.execute(
        "SELECT state, claimed_by, outcome, resolution_note, resolved_by, escalated_at IS NOT NULL "
        "FROM alerts WHERE id = %s",
        (alert,),
    ).fetchone()
    nurse = world.staff["nurse"]
    assert row == ("resolved", nurse, "reached", "GP visited, antibiotics", nurse, True)
    events = [
        r[0]
        for r in db.execute(
            "SELECT kind FROM alert_events WHERE alert_id = %s AND kind NOT LIKE 'notify%%' "
            "ORDER BY id",
            (alert,),
        )
    ]
    assert events == ["claim", "outcome", "escalate", "resolve"]
    # Escalating queued the GP's SMS, in the same transaction, once.
    queued = db.execute(
        "SELECT recipient_kind FROM notifications WHERE alert_id = %s "
        "AND idempotency_key LIKE '%%:escalated'",
        (alert,),
    ).fetchall()
    assert queued == [("gp",)]
    audited = [
        r[0]
        for r in db.execute(
            "SELECT action FROM audit_log WHERE object_type = 'alert' AND object_id = %s "
            "AND action LIKE 'alert.%%' AND action NOT LIKE '%%read' ORDER BY id",
            (str(alert),),
        )
    ]
    assert audited == ["alert.claim", "alert.outcome", "alert.escalate", "alert.resolve"]
    # A resolved alert leaves the queue and cannot be resolved twice.
    assert f'data-alert-id="{alert}"' not in client.get("/triage").text
    again = client.post(f"/alerts/{alert}/resolve", data={"csrf_token": csrf})
    assert again.status_code == 409


def test_claimed_alert_cannot_be_claimed_by_a_colleague(
    client: TestClient, app, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "nurse.greco")
    assert (
        client.post(
            f"/api/alerts/{world.alerts['own']}/claim", headers={"x-csrf-token": csrf}
        ).status_code
        == 200
    )
    db.execute(
        "INSERT INTO care_team_members SELECT care_team_id, %s FROM care_team_members "
        "WHERE staff_id = %s",
        (world.staff["nurse_b"], world.staff["nurse"]),
    )
    with TestClient(app, follow_redirects=False) as other:
        other_csrf = login(other, "nurse.conti")
        taken = other.post(
            f"/api/alerts/{world.alerts['own']}/claim", headers={"x-csrf-token": other_csrf}
        )
        assert taken.status_code == 409
        forced = other.post(
            f"/api/alerts/{world.alerts['own']}/claim?force=true",
            headers={"x-csrf-token": other_csrf},
        )
        assert forced.json()["claimed_by"] == "Nurse Conti"


def test_gp_patient_list_and_patient_page_with_banded_charts(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "dr.rossi")
    listing = client.get("/patients")
    assert listing.status_code == 200
    assert "Maria Colombo" in listing.text and "Luigi Ferrari" not in listing.text
    assert "Oxygen saturation" in listing.text
    for days in (7, 30, 90):
        page = client.get(f"/patients/{world.patients['own']}?days={days}")
        assert page.status_code == 200
        chart = re.search(r'<svg class="chart"[^>]*data-metric="spo2".*?</svg>', page.text, re.S)
        assert chart is not None
        assert 'class="band band-amber"' in chart.group(0)
        assert 'class="band band-red"' in chart.group(0)
        assert ("<circle" in chart.group(0)) == (days == 7)  # raw points only for a week
    reads = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'patient.read' AND patient_id = %s "
        "AND actor_id = %s",
        (world.patients["own"], world.staff["gp"]),
    ).fetchone()[0]
    assert reads == 3


def test_gp_acknowledges_from_the_patient_page_with_a_note(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "dr.rossi")
    page = client.get(f"/patients/{world.patients['own']}")
    assert "Escalate to GP" not in page.text  # a GP does not escalate to themselves
    response = client.post(
        f"/alerts/{world.alerts['own']}/acknowledge",
        data={
            "csrf_token": _form_csrf(page.text),
            "note": "Seen, call tomorrow",
            "next": f"/patients/{world.patients['own']}",
        },
    )
    assert response.status_code == 303
    state, by, snoozed = db.execute(
        "SELECT state, acknowledged_by, snoozed_until > now() FROM alerts WHERE id = %s",
        (world.alerts["own"],),
    ).fetchone()
    assert (state, by, snoozed) == ("acknowledged", world.staff["gp"], True)


def test_gp_settings_quiet_hours_phone_and_language(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "dr.rossi")
    csrf = _form_csrf(client.get("/settings").text)
    page = client.post(
        "/settings",
        data={
            "csrf_token": csrf,
            "language": "it",
            "phone": "+393401112233",
            "quiet_hours_start": "21:00",
            "quiet_hours_end": "07:30",
        },
    )
    assert page.status_code == 200 and "Salvato." in page.text
    row = db.execute(
        "SELECT language, phone, quiet_hours_start::text, quiet_hours_end::text "
        "FROM staff WHERE id = %s",
        (world.staff["gp"],),
    ).fetchone()
    assert row == ("it", "+393401112233", "21:00:00", "07:30:00")
    assert "I miei pazienti" in client.get("/patients").text
    bad = client.post("/settings", data={"csrf_token": csrf, "phone": "333"})
    assert bad.status_code == 422


def test_equipment_and_sms_worklists(client: TestClient, world: World) -> None:
    login(client, "nurse.greco")
    equipment = client.get("/equipment").text
    assert "GW-A" in equipment and "9%" in equipment
    sms = client.get("/sms").text
    assert "Twilio error 30003" in sms
    assert "Telemon: far" not in sms  # the other centre's outbox
