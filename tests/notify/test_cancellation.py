"""SMS that lost their point before leaving: cancelled, never sent, and said so in the record.

A GP's SMS held for their quiet hours waits long enough for a nurse to resolve the alert, or to
acknowledge an escalation that only existed because nobody had. The staff act through the
dashboard's own ``perform``, the code that really changes alerts: it cancels in its own
transaction, and the sender's rounds catch what it could not reach (rows a sender held).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest

from alerts.notify import enqueue_alert_notifications
from alerts.notify.routing import ROME
from alerts.notify.sender import SendReport
from dashboard.alert_actions import perform
from telemon.config import Settings
from tests.fakes import FakeTwilio, Reply
from tests.notify.conftest import SenderFactory
from tests.notify.support import (
    DUTY_PHONE,
    GP_PHONE,
    Clock,
    Cohort,
    add_cohort,
    add_nurse,
    events,
    notifications,
    open_alert,
    queue_duty_phone_sms,
)

NIGHT = datetime(2026, 3, 10, 23, 40, tzinfo=ROME).astimezone(UTC)
SEVEN = datetime(2026, 3, 11, 7, 0, tzinfo=ROME).astimezone(UTC)
RESOLVED = "alert resolved before sending"
ACKNOWLEDGED = "alert acknowledged before sending"


@pytest.fixture
def sleeping_gp(db: psycopg.Connection, clock: Clock) -> Cohort:
    """A GP with quiet hours from 22:00 to 07:00, and the clock at 23:40."""
    clock.now = NIGHT
    return add_cohort(db, quiet_hours=(time(22), time(7)))


def by_kind(db: psycopg.Connection, alert_id: int) -> dict[str, dict]:
    return {n["recipient_kind"]: n for n in notifications(db) if n["alert_id"] == alert_id}


def test_a_gp_sms_held_for_quiet_hours_is_cancelled_by_the_nurses_resolution_itself(
    db: psycopg.Connection,
    sleeping_gp: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    alert_id = open_alert(db, sleeping_gp.patient_id, severity=2)
    enqueue_alert_notifications(db, alert_id, "opened", settings, now=clock())
    sender = make_sender()
    sender.run_once()
    clock.advance(timedelta(minutes=10))
    resolved_at = clock()
    perform(db, add_nurse(db), alert_id, "resolve", now=resolved_at, note="called, SpO2 96%")
    rows = by_kind(db, alert_id)  # before any round of the sender
    history = [e["kind"] for e in events(db, "resolve", "notify_cancelled")]
    after_resolution = sender.run_once()
    clock.now = SEVEN
    morning = sender.run_once()

    assert history == ["resolve", "notify_cancelled"]
    assert after_resolution == SendReport()
    assert morning == SendReport()
    assert [p.form["To"] for p in fake_twilio.message_posts] == [DUTY_PHONE]
    assert rows["service_centre"]["status"] == "sent"
    gp = rows["gp"]
    assert (gp["status"], gp["cancel_reason"], gp["attempts"]) == ("cancelled", RESOLVED, 0)
    assert gp["next_attempt_at"] is None and gp["provider_id"] is None
    assert by_kind(db, alert_id)["gp"] == gp
    [cancelled] = events(db, "notify_cancelled")
    assert cancelled["at"] == resolved_at
    assert cancelled["details"] == {
        "notification_id": gp["id"],
        "recipient_kind": "gp",
        "attempt": 0,
        "cancel_reason": RESOLVED,
    }


def test_an_acknowledgement_cancels_a_held_escalation_but_not_a_red_alerts_sms(
    db: psycopg.Connection,
    sleeping_gp: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    nurse = add_nurse(db)
    amber = open_alert(db, sleeping_gp.patient_id, severity=1, rule="spo2_amber")
    red = open_alert(db, sleeping_gp.patient_id, severity=2, rule="spo2_low")
    # Amber reaches the GP only when escalated; red reaches them in any case.
    perform(db, nurse, amber, "escalate", now=clock(), notify=settings)
    enqueue_alert_notifications(db, red, "opened", settings, now=clock())
    sender = make_sender()
    sender.run_once()
    clock.advance(timedelta(minutes=5))
    for alert_id in (amber, red):
        perform(db, nurse, alert_id, "acknowledge", now=clock())
    escalation = by_kind(db, amber)["gp"]  # before any round of the sender
    red_sms = by_kind(db, red)["gp"]
    after_acknowledgement = sender.run_once()
    clock.now = SEVEN
    morning = sender.run_once()

    assert after_acknowledgement == SendReport()
    assert (red_sms["status"], red_sms["attempts"]) == ("pending", 0)
    assert (escalation["stage"], escalation["status"]) == ("escalated", "cancelled")
    assert escalation["cancel_reason"] == ACKNOWLEDGED
    assert morning.sent == 1
    assert by_kind(db, red)["gp"]["status"] == "sent"
    posts = fake_twilio.message_posts
    assert [p.form["To"] for p in posts] == [DUTY_PHONE, GP_PHONE]
    assert posts[1].form["Body"].startswith("Telemon: allerta ROSSA, paziente M.R.")


def test_a_resolution_in_progress_during_the_claim_holds_the_sms_back(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    database_url: str,
    clock: Clock,
) -> None:
    alert_id = queue_duty_phone_sms(db, cohort, settings, now=clock())
    sender = make_sender()
    with psycopg.connect(database_url, autocommit=True) as nurse_conn:
        # The nurse's resolution has changed the alert but not committed when the sender looks.
        with nurse_conn.transaction():
            perform(nurse_conn, add_nurse(db), alert_id, "resolve", now=clock())
            during = sender.run_once()
            row_during = notifications(db)[0]
        after = sender.run_once()

    assert during == SendReport()
    # The resolution's own cancellation commits with it: nothing to see before, nor to do after.
    assert (row_during["status"], row_during["attempts"]) == ("pending", 0)
    assert after == SendReport()
    assert (notifications(db)[0]["status"], notifications(db)[0]["cancel_reason"]) == (
        "cancelled",
        RESOLVED,
    )
    assert fake_twilio.requests == []


@pytest.mark.parametrize("accepted", [True, False], ids=["twilio-had-it", "never-arrived"])
def test_a_retry_of_a_resolved_alert_asks_twilio_before_cancelling(
    accepted: bool,
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    alert_id = queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(Reply.slow(1.0, accept=accepted))
    sender = make_sender()
    first = sender.run_once()  # times out: was it sent? Only Twilio knows
    perform(db, add_nurse(db), alert_id, "resolve", now=clock())
    right_after = sender.run_once()  # not due yet, and not cancelled blind either
    clock.advance(timedelta(minutes=1))
    retry = sender.run_once()

    assert first.retrying == 1 and right_after == SendReport()
    assert len(fake_twilio.message_posts) == 1
    assert [r.method for r in fake_twilio.requests] == ["POST", "GET"]
    row = notifications(db)[0]
    if accepted:
        assert retry == SendReport(reconciled=1)
        assert (row["status"], row["provider_id"]) == ("sent", fake_twilio.messages[0]["sid"])
        assert row["cancel_reason"] is None
    else:
        assert retry == SendReport(cancelled=1)
        assert (row["status"], row["cancel_reason"], row["attempts"]) == ("cancelled", RESOLVED, 2)
        assert events(db, "notify_cancelled")[0]["details"]["attempt"] == 2


@pytest.mark.parametrize("credentials", [True, False], ids=["twilio", "demo-outbox"])
def test_rows_a_sender_held_during_the_resolution_are_cancelled_at_its_next_round(
    credentials: bool,
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    database_url: str,
    clock: Clock,
) -> None:
    alert_id = open_alert(db, cohort.patient_id)
    enqueue_alert_notifications(db, alert_id, "opened", settings, now=clock())
    with psycopg.connect(database_url, autocommit=True) as claiming, claiming.transaction():
        # A sender's claim has the rows locked (and will pass them over: the alert is locked
        # by the resolution), so the resolution cannot cancel them itself.
        claiming.execute("SELECT id FROM notifications FOR UPDATE")
        perform(db, add_nurse(db), alert_id, "resolve", now=clock())
        after_resolution = [r["status"] for r in notifications(db)]
    report = make_sender(outbox=not credentials).run_once()

    assert after_resolution == ["pending", "pending"]
    assert report == SendReport(cancelled=2)  # not sent, and not outboxed either
    assert [(r["status"], r["cancel_reason"]) for r in notifications(db)] == [
        ("cancelled", RESOLVED)
    ] * 2
    assert fake_twilio.requests == []
