"""Journey: a deteriorating COVID patient's oximeter turns into a red episode a nurse resolves.

The simulated pulse oximeter of a patient living the ``covid_deterioration`` scenario is read
over the bumble link by the real gateway, published to a real Mosquitto, stored by the ingest
service; the alerts engine opens a red finding in a new episode and texts the GP and the
service centre through the fake Twilio server; a nurse follows the SMS link to the episode in
Chromium, claims, acknowledges, records the call's outcome and resolves; the episode's history
and the audit log tell all of it.

Simulated time: the replay covers the hours in which the patient's SpO2 enters the red band,
found in the patient model (the simulator's own source of truth) before the run. Earlier hours
would open an amber alert first, whose escalations text the GP on their own schedule; this
journey is about the red one. The demo's CatchUpClock replays those hours at the demo's speed
and then keeps real pace, so that no escalation timer runs while the nurse is at work.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Browser, expect
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.notify.texts import initials
from console.demo import DEMO_PASSWORD
from dashboard.i18n import translator
from firmware_sim.clock import CatchUpClock
from telemon.metrics import METRICS
from tests.database import truncate_data
from tests.fakes import FakeTwilio
from tests.journeys.conftest import private_broker
from tests.journeys.support import (
    DUTY_PHONE,
    LEAD_IN,
    NURSE,
    Crossing,
    Platform,
    device_time,
    enrol,
    observation_count,
    one_patient_cohort,
    patient_model,
    real_elapsed_wall,
    red_crossing,
    server_settings,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PROTOCOL = "covid19_home_oximetry"
RULE = "spo2_low"
SPEED = 7200.0  # the demo's: two simulated hours a second
ENROLLED_AGO = timedelta(days=7)  # the scenario's SpO2 is in the red band by day 6


@dataclass
class Journey:
    conn: psycopg.Connection
    platform: Platform
    twilio: FakeTwilio
    dashboard_url: str
    crossing: Crossing
    produced: int  # observations the replayed readings make
    alert: dict[str, Any]
    patient_id: int
    given_name: str
    family_name: str
    gp_phone: str
    nurse_id: int
    nurse_language: str


@pytest.fixture(scope="module")
def journey(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Journey]:
    """The journey up to the SMS, run once for the module; the tests read what it left."""
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(private_broker())  # first in, so the last to stop
        twilio = stack.enter_context(FakeTwilio.running())
        conn = stack.enter_context(psycopg.connect(database_url, autocommit=True))
        cohort = one_patient_cohort("covid_deterioration", ("pulse_oximeter",))
        platform = stack.enter_context(
            Platform(
                settings=server_settings(database_url, broker.url, twilio),
                cohort=cohort,
                enrolled_at={},
                state_dir=tmp_path_factory.mktemp("gateways"),
            )
        )
        truncate_data(conn)
        patient = cohort.patients[0]
        platform.enrolled_at = enrol(conn, cohort, datetime.now(UTC) - ENROLLED_AGO)
        # The scenario measures three times a day and never repeats a reading: with the default
        # 30 min confirm timeout its amber reading would open an amber finding of its own, 8 h
        # before the red one. This journey follows the red one, confirmed by the two readings as
        # before (the timeout has its tests in tests/alerts_engine/test_clinical_rules.py).
        conn.execute(
            "UPDATE patient_protocols SET overrides = %s",
            (Jsonb({"rules": {"spo2_low": {"confirm": {"count": 2, "timeout": "2d"}}}}),),
        )
        model = patient_model(patient, platform.enrolled_at[patient.code])
        # Readings at least ten minutes old: the whole replay stays in the past.
        horizon = datetime.now(UTC) - timedelta(minutes=10)
        readings = model.measurements(model.profile.enrolled_at, horizon)
        crossing = red_crossing(readings, PROTOCOL, RULE)
        start = crossing.before.measured_at - LEAD_IN
        hold = crossing.red.measured_at + timedelta(minutes=5)
        replayed = list(model.measurements(start, hold))
        assert replayed == [crossing.before, crossing.red], "the window holds other readings"

        platform.start_ingest()
        dashboard_url = platform.start_dashboard()
        platform.start_homes(CatchUpClock(start, SPEED, wall=real_elapsed_wall(hold)))
        # The engine starts once the patient's first reading is stored: started earlier, it
        # would rightly open a 'not measuring' task for a patient the store knows no reading of.
        wait_until(
            lambda: stored(conn) > 0, 30, "the first reading stored", state=platform.describe
        )
        platform.start_engine(tick=1.0)

        # Readings -> gateway -> broker -> ingest -> engine -> notifications -> Twilio.
        [alert] = wait_until(
            lambda: red_alerts(conn), 60, "the red SpO2 alert", state=platform.describe
        )
        twilio.wait_for_posts(2, timeout=30)
        wait_until(
            lambda: conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'sent') = 2 AND count(*) = 2 "
                "FROM notifications WHERE recipient_kind <> 'patient'"
            ).fetchone()[0],
            30,
            "both notifications recorded as sent",
        )
        gp_phone, nurse_id, nurse_language, patient_id = conn.execute(
            "SELECT g.phone, n.id, n.language, p.id FROM patients p "
            "JOIN staff g ON g.id = p.gp_id, staff n WHERE p.code = %s AND n.username = %s",
            (patient.code, NURSE),
        ).fetchone()
        yield Journey(
            conn=conn,
            platform=platform,
            twilio=twilio,
            dashboard_url=dashboard_url,
            crossing=crossing,
            produced=observation_count(replayed),
            alert=alert,
            patient_id=patient_id,
            given_name=patient.given_name,
            family_name=patient.family_name,
            gp_phone=gp_phone,
            nurse_id=nurse_id,
            nurse_language=nurse_language,
        )


def stored(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM observations").fetchone()[0]


def red_alerts(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM alerts WHERE rule = %s AND severity = 2", (RULE,)
        ).fetchall()


def events(conn: psycopg.Connection, episode_id: int, order: str = "e.id") -> list[dict[str, Any]]:
    """The episode's own events (its findings keep theirs in alert_events)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT e.*, s.username AS actor FROM episode_events e "
            f"LEFT JOIN staff s ON s.id = e.actor_id WHERE episode_id = %s ORDER BY {order}",
            (episode_id,),
        ).fetchall()


def finding_events(conn: psycopg.Connection, alert_id: int) -> list[str]:
    rows = conn.execute(
        "SELECT kind FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
    ).fetchall()
    return [kind for (kind,) in rows]


def test_the_red_alert_reaches_the_gp_and_the_centre_once_each(journey: Journey) -> None:
    conn, twilio, alert = journey.conn, journey.twilio, journey.alert

    # The red reading opened the red alert, for this patient, with its value and time.
    red_spo2 = journey.crossing.red.values["spo2"]
    assert alert["patient_id"] == journey.patient_id and alert["state"] == "open"
    assert alert["trigger_value"] == red_spo2
    assert alert["details"]["reading_at"] == device_time(journey.crossing.red).isoformat()
    # The values travelled unchanged: SFLOAT over GATT, JSON over MQTT, COPY into PostgreSQL.
    wait_until(
        lambda: stored(conn) >= journey.produced,
        30,
        "every replayed reading stored",
        state=journey.platform.describe,
    )
    readings = conn.execute(
        "SELECT measured_at, value FROM observations WHERE metric_id = %s ORDER BY measured_at",
        (METRICS["spo2"].id,),
    ).fetchall()
    replayed = (journey.crossing.before, journey.crossing.red)
    assert readings == [(device_time(m), m.values["spo2"]) for m in replayed]

    # One SMS to the GP and one to the duty phone, naming the patient by initials only.
    posts = clinical_posts(journey)
    assert sorted(p.form["To"] for p in posts) == sorted([journey.gp_phone, DUTY_PHONE])
    link = f"{journey.dashboard_url}/episodes/{alert['episode_id']}"
    for post in posts:
        body = post.form["Body"]
        assert f" {initials(journey.given_name, journey.family_name)} " in body, body
        assert "ROSSA" in body and f"SpO2 {red_spo2:.0f} %" in body, body
        assert body.endswith(link), body
        assert journey.given_name not in body and journey.family_name not in body, body
    # Nothing else was texted to staff: the GP and the centre heard of this patient once each.
    # (The patient's own reminders of a missed slot are not about the alert: docs/alerts.md.)
    clinical = "SELECT count(*) FROM notifications WHERE recipient_kind <> 'patient'"
    assert conn.execute(clinical).fetchone()[0] == 2

    ingest = journey.platform.ingest
    assert ingest is not None
    print(
        f"\ncovid journey: produced {journey.produced} observations, stored {stored(conn)}, "
        f"duplicates ignored {ingest.duplicates_ignored}, SMS {len(twilio.message_posts)}"
    )


def clinical_posts(journey: Journey) -> list:
    """The SMS sent to the GP and to the duty phone (a patient may also get a reminder of a
    missed slot, which names no value and no alert)."""
    staff = {journey.gp_phone, DUTY_PHONE}
    return [p for p in journey.twilio.message_posts if p.form["To"] in staff]


def test_a_nurse_works_the_episode_in_the_browser_and_the_audit_trail_is_complete(
    journey: Journey, browser: Browser
) -> None:
    conn, twilio, alert = journey.conn, journey.twilio, journey.alert
    episode = alert["episode_id"]
    posts = clinical_posts(journey)

    # The nurse signs in, sees the episode queued, follows the duty phone's link, claims it,
    # acknowledges it, records the call's outcome and resolves it with a note.
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{journey.dashboard_url}/login")
    page.fill("input[name=username]", NURSE)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button.primary")
    assert not page.locator("p.error").count(), page.locator("p.error").inner_text()
    expect(page).to_have_url(f"{journey.dashboard_url}/triage")
    # Listening from here on: the first page's own /favicon.ico request is a 404 (no icon).
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    expect(page.locator(f"tr[data-episode-id='{episode}']")).to_be_visible()
    [duty_sms] = [p.form["Body"] for p in posts if p.form["To"] == DUTY_PHONE]
    page.goto(re.search(r"https?://\S+$", duty_sms).group(0))
    state = page.locator("#episode-state")
    expect(state).to_have_class(re.compile(r"\bstate-open\b"))
    page.click("button[data-action=claim]")
    expect(page.locator("button[data-action=claim]")).to_have_count(0)
    page.click("button[data-action=acknowledge]")
    expect(state).to_have_class(re.compile(r"\bstate-acknowledged\b"))
    page.select_option("select[name=outcome]", "reached")
    page.locator("form[action$='/outcome'] input[name=note]").fill("Reached, SpO2 91% at rest")
    page.click("button[data-action=outcome]")
    # The dashboard speaks the nurse's language (the demo's nurse is Italian).
    reached = translator(journey.nurse_language)("outcome.reached")
    expect(page.locator("#episode-outcome")).to_have_text(reached)
    note = "Sent to hospital assessment, GP informed"
    page.locator(f"form[action='/episodes/{episode}/resolve'] input[name=note]").fill(note)
    page.click("button[data-action=resolve]")
    expect(state).to_have_class(re.compile(r"\bstate-resolved\b"))
    assert errors == [], errors  # script errors and CSP violations show up here
    page.close()

    with conn.cursor(row_factory=dict_row) as cur:
        done = cur.execute("SELECT * FROM episodes WHERE id = %s", (episode,)).fetchone()
        finding = cur.execute("SELECT * FROM alerts WHERE id = %s", (alert["id"],)).fetchone()
    assert done["state"] == "resolved" and done["outcome"] == "reached"
    assert done["resolution_note"] == note
    nurse = journey.nurse_id
    assert (done["claimed_by"], done["acknowledged_by"], done["resolved_by"]) == (nurse,) * 3
    # Resolving the episode resolved its finding, by the nurse.
    assert (finding["state"], finding["resolved_by"]) == ("resolved", nurse)
    assert finding_events(conn, alert["id"]) == ["opened", "resolve"]

    # The episode's history, in the order it was written: the engine (which may have opened it
    # on an amber finding the red one then joined), the SMS, then the nurse.
    history = events(conn, episode)
    kinds = [e["kind"] for e in history]
    engine = history[: kinds.index("notify_queued")]
    assert kinds[0] == "opened" and {e["kind"] for e in engine[1:]} <= {
        "finding_joined",
        "worsened",
    }
    assert alert["id"] in {e["alert_id"] for e in engine}
    assert kinds[len(engine) :] == [
        "notify_queued",
        "notify_queued",
        "notified",
        "notified",
        "claim",
        "acknowledge",
        "outcome",
        "resolve",
    ]
    rest = history[len(engine) :]
    opened, queued, notified, staff = history[0], rest[0:2], rest[2:4], rest[4:]
    assert (opened["actor"], opened["to_state"]) == (None, "open")
    assert {e["details"]["recipient_kind"] for e in queued} == {"gp", "service_centre"}
    sids = {m["sid"]: m["to"] for m in twilio.messages}
    assert {
        (e["details"]["recipient_kind"], sids[e["details"]["provider_id"]]) for e in notified
    } == {("gp", journey.gp_phone), ("service_centre", DUTY_PHONE)}
    assert [e["actor"] for e in staff] == [NURSE] * 4
    assert [(e["from_state"], e["to_state"]) for e in staff] == [
        ("open", "open"),
        ("open", "acknowledged"),
        ("acknowledged", "acknowledged"),
        ("acknowledged", "resolved"),
    ]
    assert staff[2]["details"] == {"outcome": "reached"}
    assert staff[3]["note"] == note
    # Stamped on the engine's (simulated) clock, then the nurse's: never backwards.
    stamped = [opened, *notified, *staff]
    assert [e["at"] for e in stamped] == sorted(e["at"] for e in stamped)

    # The audit log has the nurse's every action on this episode, in order.
    actions = conn.execute(
        "SELECT action FROM audit_log WHERE actor_username = %s AND object_type = 'episode' "
        "AND object_id = %s AND action NOT LIKE '%%read' ORDER BY id",
        (NURSE, str(episode)),
    ).fetchall()
    assert [a for (a,) in actions] == [
        "episode.claim",
        "episode.acknowledge",
        "episode.outcome",
        "episode.resolve",
    ]

    # Working the episode texted no one on staff.
    assert len(clinical_posts(journey)) == 2


def test_episode_history_in_time_order_is_the_order_of_events(journey: Journey) -> None:
    episode = journey.alert["episode_id"]
    written = [e["kind"] for e in events(journey.conn, episode)]
    # How the dashboard's episode page lists them (dashboard.clinical.events).
    shown = [e["kind"] for e in events(journey.conn, episode, "e.at, e.id")]
    assert shown == written
