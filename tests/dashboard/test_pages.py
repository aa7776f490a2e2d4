"""The pages a nurse and a GP work with, rendered from the engine's episodes and acted on through
the browser forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from alerts.lifecycle import finding_transition, open_finding
from dashboard import clinical
from dashboard.authz import Principal
from tests.dashboard.conftest import World, add_readings, evaluate
from tests.dashboard.support import login


def _form_csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _queue_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr [^>]*data-episode-id="(\d+)"', html)]


def _row(html: str, episode_id: int) -> str:
    return re.search(rf'<tr [^>]*data-episode-id="{episode_id}".*?</tr>', html, re.S).group(0)


def _open_findings(db: psycopg.Connection, episode_id: int) -> list[str]:
    rows = db.execute(
        "SELECT rule FROM alerts WHERE episode_id = %s AND state = 'open' ORDER BY id",
        (episode_id,),
    ).fetchall()
    return [r[0] for r in rows]


def test_a_patient_with_three_findings_has_one_queue_row_one_badge_one_card(
    client: TestClient, app, world: World, db: psycopg.Connection
) -> None:
    episode = world.episodes["own"]
    assert sorted(_open_findings(db, episode)) == ["news2_partial", "spo2_falling", "spo2_low"]
    login(client, "nurse.greco")
    queue = client.get("/triage").text
    # One row for Maria Colombo, her three findings under it, the worst first.
    assert queue.count("Maria Colombo") == 1
    row = _row(queue, episode)
    findings = re.findall(r'data-finding-id="(\d+)"', row)
    assert findings == [
        str(world.findings[f"own:{rule}"]) for rule in ("spo2_low", "spo2_falling", "news2_partial")
    ]
    for title in ("Low oxygen saturation", "Oxygen saturation falling", "Partial NEWS2"):
        assert title in row
    assert "spo2:red" not in queue and "max_parameter" not in queue  # no rule keys
    assert '<span class="badge sev-2">Red</span>' in row
    with TestClient(app, follow_redirects=False) as gp:
        login(gp, "dr.rossi")
        listing = gp.get("/patients").text
        patient_row = re.search(r'<tr [^>]*data-patient-id="\d+".*?</tr>', listing, re.S).group(0)
        badges = re.findall(r'class="badge sev-(\d)"[^>]*>([^<]*)<', patient_row)
        assert badges == [("2", "Red")]  # one badge: the episode's severity, not a count
        page = gp.get(f"/patients/{world.patients['own']}").text
        cards = re.findall(r'class="alert-box sev-2" data-episode-id="(\d+)"', page)
        assert cards == [str(episode)]
        card = page[
            page.index('class="alert-box') : page.index("</section>", page.index("alert-box"))
        ]
        assert len(re.findall(r'data-finding-id="\d+"', card)) == 3
        assert card.count('data-action="resolve"') == 1  # the actions act on the episode


def test_queue_orders_episodes_by_severity_then_waiting_time(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "nurse.greco")
    page = client.get("/triage")
    assert page.status_code == 200
    # The red episode before the amber one; the other centre's is absent.
    assert _queue_ids(page.text) == [world.episodes["own"], world.episodes["other_gp"]]
    assert "Anna Ricci" not in page.text
    assert "Gateways offline" in page.text
    # The other GP's patient turns red: the same episode worsens, keeps its row and, waiting
    # longer than Maria's, now comes first.
    now = datetime.now(UTC)
    add_readings(db, world.patients["other_gp"], [("spo2", 6, 90), ("spo2", 1, 89)], now)
    evaluate(db, now, [world.patients["other_gp"]])
    queue = client.get("/triage").text
    assert _queue_ids(queue) == [world.episodes["other_gp"], world.episodes["own"]]
    assert '<span class="badge sev-2">Red</span>' in _row(queue, world.episodes["other_gp"])
    assert queue.count("Luigi Ferrari") == 1


def test_nurse_claims_records_outcome_escalates_and_resolves_the_episode(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "nurse.greco")
    episode = world.episodes["own"]
    csrf = _form_csrf(client.get(f"/episodes/{episode}").text)
    for action, data in (
        ("claim", {}),
        ("outcome", {"outcome": "reached", "note": "SpO2 rechecked 93%"}),
        ("escalate", {"note": "GP to review today"}),
        ("resolve", {"note": "GP visited, antibiotics"}),
    ):
        response = client.post(
            f"/episodes/{episode}/{action}", data={"csrf_token": csrf, "next": "/triage", **data}
        )
        assert response.status_code == 303, (action, response.text)
        assert response.headers["location"] == "/triage"
    row = db.execute(
        "SELECT state, claimed_by, outcome, resolution_note, resolved_by, escalated_at IS NOT NULL "
        "FROM episodes WHERE id = %s",
        (episode,),
    ).fetchone()
    nurse = world.staff["nurse"]
    assert row == ("resolved", nurse, "reached", "GP visited, antibiotics", nurse, True)
    # Resolving the episode resolved its findings, by the nurse.
    assert _open_findings(db, episode) == []
    assert db.execute(
        "SELECT DISTINCT resolved_by FROM alerts WHERE episode_id = %s", (episode,)
    ).fetchall() == [(nurse,)]
    people = [
        r[0]
        for r in db.execute(
            "SELECT kind FROM episode_events WHERE episode_id = %s AND actor_id IS NOT NULL "
            "ORDER BY id",
            (episode,),
        )
    ]
    assert people == ["claim", "outcome", "escalate", "resolve"]
    # Escalating queued the GP's SMS, in the same transaction, once.
    queued = db.execute(
        "SELECT recipient_kind FROM notifications WHERE episode_id = %s AND reason = 'escalated'",
        (episode,),
    ).fetchall()
    assert queued == [("gp",)]
    audited = [
        r[0]
        for r in db.execute(
            "SELECT action FROM audit_log WHERE object_type = 'episode' AND object_id = %s "
            "AND action NOT LIKE '%%read' ORDER BY id",
            (str(episode),),
        )
    ]
    assert audited == ["episode.claim", "episode.outcome", "episode.escalate", "episode.resolve"]
    # A resolved episode leaves the queue and cannot be resolved twice.
    assert episode not in _queue_ids(client.get("/triage").text)
    again = client.post(f"/episodes/{episode}/resolve", data={"csrf_token": csrf})
    assert again.status_code == 409
    # Its page keeps the merged history: the engine's findings, then the nurse's actions.
    history = client.get(f"/episodes/{episode}").text
    order = [history.index(f"<td>{kind}") for kind in ("Opened", "Claimed", "Resolved")]
    assert order == sorted(order)
    assert 'id="episode-state"' in history and "Resolved" in history


def test_resolving_one_finding_leaves_the_others_and_the_last_resolves_the_episode(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "nurse.greco")
    episode = world.episodes["own"]
    page = client.get(f"/episodes/{episode}").text
    assert page.count('data-action="resolve-finding"') == 3
    csrf = _form_csrf(page)
    red = world.findings["own:spo2_low"]
    response = client.post(f"/alerts/{red}/resolve", data={"csrf_token": csrf, "note": "artefact"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/episodes/{episode}"
    # The episode goes on with the two amber findings, now amber itself.
    state, severity = db.execute(
        "SELECT state, severity FROM episodes WHERE id = %s", (episode,)
    ).fetchone()
    assert (state, severity) == ("open", 1)
    assert _open_findings(db, episode) == ["spo2_falling", "news2_partial"]
    assert '<span class="badge sev-1">Amber</span>' in _row(client.get("/triage").text, episode)
    [item] = [i for i in client.get("/api/triage").json() if i["id"] == episode]
    assert [f["rule"] for f in item["findings"]] == ["spo2_falling", "news2_partial"]
    for rule in ("spo2_falling", "news2_partial"):
        finding = world.findings[f"own:{rule}"]
        assert (
            client.post(f"/alerts/{finding}/resolve", data={"csrf_token": csrf}).status_code == 303
        )
    resolved = db.execute(
        "SELECT state, resolved_by FROM episodes WHERE id = %s", (episode,)
    ).fetchone()
    assert resolved == ("resolved", world.staff["nurse"])
    audited = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'finding.resolve' AND object_type = 'alert'"
    ).fetchone()[0]
    assert audited == 3
    # A finding resolved already cannot be resolved again.
    assert client.post(f"/alerts/{red}/resolve", data={"csrf_token": csrf}).status_code == 409


def test_a_finding_page_leads_to_its_episode_or_shows_a_finding_without_one(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "dr.rossi")
    # An SMS sent before episodes links to its alert: the page is now its episode's.
    response = client.get(f"/alerts/{world.alerts['own']}")
    assert response.status_code == 303
    assert response.headers["location"] == f"/episodes/{world.episodes['own']}"
    # A finding from before episodes, resolved then, belongs to none: shown on its own.
    now = datetime.now(UTC) - timedelta(days=5)
    with db.transaction():
        old = open_finding(
            db,
            patient_id=world.patients["own"],
            protocol="covid19_home_oximetry",
            rule="spo2_not_measuring",
            kind="not_measuring",
            routing="centre_task",
            severity=1,
            now=now,
            metric_id=1,
            value=13.0,
            reason="spo2:amber",
            details={},
        )
        later = now + timedelta(hours=2)
        finding_transition(db, old, "auto_resolved", now=later, changes={"resolved_at": later})
    page = client.get(f"/alerts/{old}")
    assert page.status_code == 200
    assert "No oximetry reading" in page.text and "<td>Opened" in page.text
    assert client.get(f"/api/alerts/{old}").json()["episode_id"] is None
    # The patient's history lists it after her episodes.
    history = client.get(f"/patients/{world.patients['own']}").text
    history = re.search(r'id="episode-history".*?</table>', history, re.S).group(0)
    assert history.index(f'data-episode-id="{world.episodes["own"]}"') < history.index(
        f'href="/alerts/{old}"'
    )


def test_claimed_episode_cannot_be_claimed_by_a_colleague(
    client: TestClient, app, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "nurse.greco")
    episode = world.episodes["own"]
    claim = client.post(f"/api/episodes/{episode}/claim", headers={"x-csrf-token": csrf})
    assert claim.status_code == 200
    db.execute(
        "INSERT INTO care_team_members SELECT care_team_id, %s FROM care_team_members "
        "WHERE staff_id = %s",
        (world.staff["nurse_b"], world.staff["nurse"]),
    )
    with TestClient(app, follow_redirects=False) as other:
        other_csrf = login(other, "nurse.conti")
        taken = other.post(f"/api/episodes/{episode}/claim", headers={"x-csrf-token": other_csrf})
        assert taken.status_code == 409
        forced = other.post(
            f"/api/episodes/{episode}/claim?force=true", headers={"x-csrf-token": other_csrf}
        )
        assert forced.json()["claimed_by"] == "Nurse Conti"


def test_api_triage_has_one_item_per_episode_with_structured_findings(
    client: TestClient, world: World
) -> None:
    login(client, "nurse.greco")
    items = client.get("/api/triage").json()
    assert [i["id"] for i in items] == [world.episodes["own"], world.episodes["other_gp"]]
    assert len({i["patient_id"] for i in items}) == len(items)
    own = items[0]
    assert (own["patient_id"], own["severity"], own["state"]) == (world.patients["own"], 2, "open")
    low, falling, news2 = own["findings"]
    assert own["reason"] == low["reason"]  # the worst finding's
    assert (low["id"], low["rule"], low["severity"]) == (world.alerts["own"], "spo2_low", 2)
    assert (low["metric"], low["value"], low["unit"]) == ("spo2", 88.0, "%")
    # In words, from what the engine kept: the value, the threshold, the confirming readings.
    assert low["reason"].startswith("SpO2 88 % (≤ 92 %), confirmed by 2 readings in ")
    assert low["rule_title"] == "Low oxygen saturation"
    assert (low["evidence"]["kind"], low["evidence"]["threshold"]) == ("threshold", 92.0)
    assert datetime.fromisoformat(low["reading_at"]) <= datetime.fromisoformat(low["opened_at"])
    assert (falling["rule"], falling["severity"], falling["metric"]) == ("spo2_falling", 1, "spo2")
    assert falling["value"] < -3
    assert (news2["rule"], news2["metric"], news2["unit"], news2["value"]) == (
        "news2_partial",
        None,
        None,
        3.0,
    )
    # A finding on its own names its episode; the episode's events merge its findings'.
    assert client.get(f"/api/alerts/{low['id']}").json()["episode_id"] == own["id"]
    events = client.get(f"/api/episodes/{own['id']}/events").json()
    # The episode's opening and each finding's.
    opened = {e["alert_id"] for e in events if e["kind"] == "opened"}
    assert opened == {low["id"], falling["id"], news2["id"]}
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    failed = client.get("/api/notifications/failed").json()
    assert [n["episode_id"] for n in failed] == [own["id"]]


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
    history = re.search(r'id="episode-history".*?</table>', page.text, re.S).group(0)
    assert re.findall(r'data-episode-id="(\d+)"', history) == [str(world.episodes["own"])]
    reads = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'patient.read' AND patient_id = %s "
        "AND actor_id = %s",
        (world.patients["own"], world.staff["gp"]),
    ).fetchone()[0]
    assert reads == 3


def test_gp_acknowledges_the_episode_from_the_patient_page_with_a_note(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "dr.rossi")
    page = client.get(f"/patients/{world.patients['own']}")
    assert "Escalate to GP" not in page.text  # a GP does not escalate to themselves
    response = client.post(
        f"/episodes/{world.episodes['own']}/acknowledge",
        data={
            "csrf_token": _form_csrf(page.text),
            "note": "Seen, call tomorrow",
            "next": f"/patients/{world.patients['own']}",
        },
    )
    assert response.status_code == 303
    state, by, snoozed, next_step = db.execute(
        "SELECT state, acknowledged_by, snoozed_until > now(), next_escalation_at "
        "FROM episodes WHERE id = %s",
        (world.episodes["own"],),
    ).fetchone()
    assert (state, by, snoozed, next_step) == ("acknowledged", world.staff["gp"], True, None)
    # The SMS still waiting for this episode lost their point.
    waiting = db.execute(
        "SELECT count(*) FROM notifications WHERE episode_id = %s AND status = 'pending'",
        (world.episodes["own"],),
    ).fetchone()[0]
    assert waiting == 0


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
            "amber_digest_at": "18:00",
        },
    )
    assert page.status_code == 200 and "Salvato." in page.text
    assert "Riepilogo giornaliero degli episodi gialli" in page.text
    row = db.execute(
        "SELECT language, phone, quiet_hours_start::text, quiet_hours_end::text, "
        "amber_digest_at::text FROM staff WHERE id = %s",
        (world.staff["gp"],),
    ).fetchone()
    assert row == ("it", "+393401112233", "21:00:00", "07:30:00", "18:00:00")
    assert client.get("/api/me/settings").json()["amber_digest_at"] == "18:00:00"
    assert "I miei pazienti" in client.get("/patients").text
    episode = client.get(f"/episodes/{world.episodes['own']}").text
    assert "Riscontri" in episode and "Risolvi questo riscontro" in episode
    bad = client.post("/settings", data={"csrf_token": csrf, "phone": "333"})
    assert bad.status_code == 422


def test_equipment_and_sms_worklists(client: TestClient, world: World) -> None:
    login(client, "nurse.greco")
    equipment = client.get("/equipment").text
    assert "GW-A" in equipment and "9%" in equipment
    sms = client.get("/sms").text
    assert "Twilio error 30003" in sms
    assert f'href="/episodes/{world.episodes["own"]}"' in sms
    assert "A.R." not in sms  # the other centre's patient's SMS


def test_waiting_time_is_the_oldest_finding_nobody_acknowledged(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    # The far centre's patient: one red SpO2 finding, nothing else yet.
    csrf = login(client, "nurse.conti")
    episode = world.episodes["far"]

    def item() -> dict:
        return next(i for i in client.get("/api/triage").json() if i["id"] == episode)

    opened = item()["opened_at"]
    assert item()["waiting_since"] == opened  # nobody has acknowledged anything yet
    ack = client.post(f"/api/episodes/{episode}/acknowledge", headers={"x-csrf-token": csrf})
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    # A partial NEWS2 (amber: pulse 135 scores 3) joins the acknowledged episode at the same
    # level: the episode stays acknowledged, and the new finding is what nobody has seen.
    now = datetime.now(UTC)
    first = [("spo2", 6, 93), ("pulse_rate", 6, 135), ("body_temperature", 6, 37.4)]
    add_readings(db, world.patients["far"], first, now)
    evaluate(db, now, [world.patients["far"]])
    # The next set of readings confirms the score.
    second = [("spo2", 3, 93), ("pulse_rate", 3, 133), ("body_temperature", 3, 37.4)]
    add_readings(db, world.patients["far"], second, now)
    evaluate(db, now + timedelta(seconds=1), [world.patients["far"]])
    news2 = db.execute(
        "SELECT id, opened_at FROM alerts WHERE episode_id = %s AND rule = 'news2_partial'",
        (episode,),
    ).fetchone()
    assert news2 is not None
    after = item()
    assert after["state"] == "acknowledged"
    assert datetime.fromisoformat(after["waiting_since"]) == news2[1]
    assert news2[0] in [f["id"] for f in after["findings"]]


def test_the_queue_comes_a_page_at_a_time_in_its_order(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "nurse.greco")
    whole = _queue_ids(client.get("/triage").text)
    assert len(whole) == 2
    staff_id, name = db.execute(
        "SELECT id, display_name FROM staff WHERE username = 'nurse.greco'"
    ).fetchone()
    nurse = Principal(staff_id, "nurse.greco", name, "nurse", "en", "", "127.0.0.1")
    pages = [clinical.triage_page(db, nurse, page=n, per_page=1) for n in (1, 2, 3)]
    assert [[e.id for e in p.clinical] for p in pages] == [whole[:1], whole[1:], whole[1:]]
    assert {(p.clinical_total, p.tasks_total, p.pages) for p in pages} == {(2, 0, 2)}
    assert [p.page for p in pages] == [1, 2, 2]  # past the end: the last page
    # The page made of the same rows as the whole queue (the API's), in the same order.
    api = [e["id"] for e in client.get("/api/triage").json()]
    assert api == whole
    # Past the last page the route shows the last one; the heading counts the whole queue.
    late = client.get("/triage", params={"page": 7})
    assert _queue_ids(late.text) == whole and '<span class="count">2</span>' in late.text
    assert client.get("/triage", params={"page": 0}).status_code == 422
