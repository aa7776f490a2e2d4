"""SMS that lost their point before leaving: cancelled, never sent, and said so in the record.

A GP's SMS held for their quiet hours waits long enough for a nurse to resolve the episode, or
to acknowledge it when the SMS was an escalation that only existed because nobody had. The
staff act through ``alerts.episodes.act``, the code that really changes episodes: it cancels in
its own transaction, and the sender's rounds catch what it could not reach (rows a sender held).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest

from alerts import episodes
from alerts.notify import enqueue_episode_notifications
from alerts.notify.routing import ROME
from alerts.notify.sender import SendReport
from telemon.config import Settings
from tests.fakes import FakeTwilio, Reply
from tests.notify.conftest import SenderFactory
from tests.notify.support import (
    DUTY_PHONE,
    GP_PHONE,
    PROTOCOLS,
    Clock,
    Cohort,
    act,
    add_cohort,
    add_nurse,
    clear_finding,
    episode,
    escalate,
    events,
    notifications,
    open_silent_episode,
    queue_duty_phone_sms,
    raise_finding,
)

NIGHT = datetime(2026, 3, 10, 23, 40, tzinfo=ROME).astimezone(UTC)
SEVEN = datetime(2026, 3, 11, 7, 0, tzinfo=ROME).astimezone(UTC)
RESOLVED = "episode resolved before sending"
ACKNOWLEDGED = "episode acknowledged before sending"


@pytest.fixture
def sleeping_gp(db: psycopg.Connection, clock: Clock) -> Cohort:
    """A GP with quiet hours from 22:00 to 07:00, and the clock at 23:40."""
    clock.now = NIGHT
    return add_cohort(db, quiet_hours=(time(22), time(7)))


def by_kind(db: psycopg.Connection, episode_id: int) -> dict[str, dict]:
    return {n["recipient_kind"]: n for n in notifications(db) if n["episode_id"] == episode_id}


def test_a_gp_sms_held_for_quiet_hours_is_cancelled_by_the_nurses_resolution_itself(
    db: psycopg.Connection,
    sleeping_gp: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = raise_finding(db, sleeping_gp.patient_id, settings, clock())
    sender = make_sender()
    sender.run_once()
    clock.advance(timedelta(minutes=10))
    resolved_at = clock()
    act(db, add_nurse(db), red.episode_id, "resolve", resolved_at, note="called, SpO2 96%")
    rows = by_kind(db, red.episode_id)  # before any round of the sender
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
    assert by_kind(db, red.episode_id)["gp"] == gp
    [cancelled] = events(db, "notify_cancelled")
    assert (cancelled["at"], cancelled["episode_id"]) == (resolved_at, red.episode_id)
    assert cancelled["details"] == {
        "notification_id": gp["id"],
        "recipient_kind": "gp",
        "attempt": 0,
        "cancel_reason": RESOLVED,
    }


def test_readings_that_clear_the_episode_cancel_the_gps_held_sms_in_the_engines_transaction(
    db: psycopg.Connection,
    sleeping_gp: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = raise_finding(db, sleeping_gp.patient_id, settings, clock())
    news2 = raise_finding(
        db, sleeping_gp.patient_id, settings, clock(), rule="news2_partial", metric_id=None
    )
    sender = make_sender()
    sender.run_once()
    clock.advance(timedelta(minutes=15))
    one_cleared = clear_finding(db, red.alert_id, settings, clock())
    still_held = by_kind(db, red.episode_id)["gp"]["status"]
    clock.advance(timedelta(minutes=5))
    last_cleared = clear_finding(db, news2.alert_id, settings, clock())
    rows = by_kind(db, red.episode_id)  # before any round of the sender
    clock.now = SEVEN
    morning = sender.run_once()

    # One finding clearing leaves the episode open and red: the GP still needs to hear of it.
    assert (one_cleared.resolved, one_cleared.cancelled, still_held) == (0, 0, "pending")
    assert (last_cleared.resolved, last_cleared.cancelled) == (1, 1)
    assert (rows["gp"]["status"], rows["gp"]["cancel_reason"]) == ("cancelled", RESOLVED)
    assert morning == SendReport()
    assert [p.form["To"] for p in fake_twilio.message_posts] == [DUTY_PHONE]
    resolved = episode(db, red.episode_id)
    assert (resolved["state"], resolved["outcome"]) == ("resolved", "auto_resolved")


def test_an_acknowledgement_cancels_a_held_escalation_but_not_the_red_episodes_own_sms(
    db: psycopg.Connection,
    sleeping_gp: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = raise_finding(db, sleeping_gp.patient_id, settings, clock())
    sender = make_sender()
    sender.run_once()
    clock.advance(timedelta(minutes=30))  # nobody acknowledged: the chain reminds the GP
    escalate(db, settings, clock())
    held = [(r["reason"], r["status"]) for r in notifications(db) if r["recipient_kind"] == "gp"]
    clock.advance(timedelta(minutes=5))
    act(db, add_nurse(db), red.episode_id, "acknowledge", clock())
    rows = [r for r in notifications(db) if r["recipient_kind"] == "gp"]  # before any round
    after_acknowledgement = sender.run_once()
    clock.now = SEVEN
    morning = sender.run_once()

    assert held == [("opened", "pending"), ("escalated", "pending")]
    opening, reminder = rows
    assert (opening["status"], opening["attempts"]) == ("pending", 0)
    assert (reminder["stage"], reminder["status"]) == ("escalated", "cancelled")
    assert reminder["cancel_reason"] == ACKNOWLEDGED
    assert after_acknowledgement == SendReport()
    assert morning.sent == 1
    posts = fake_twilio.message_posts
    assert [p.form["To"] for p in posts] == [DUTY_PHONE, GP_PHONE]
    assert posts[1].form["Body"].startswith("Telemon: allerta ROSSA, paziente M.R.")


def test_the_chains_reminder_after_a_nurses_escalation_does_not_text_the_gp_a_third_time(
    db: psycopg.Connection,
    sleeping_gp: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = raise_finding(db, sleeping_gp.patient_id, settings, clock())
    sender = make_sender()
    clock.advance(timedelta(minutes=10))
    act(db, add_nurse(db), red.episode_id, "escalate", clock(), settings=settings)
    clock.advance(timedelta(minutes=20))
    escalate(db, settings, clock())  # the chain's reminder: the GP has two SMS already
    sender.run_once()
    clock.now = SEVEN
    sender.run_once()

    gp = [r for r in notifications(db) if r["recipient_kind"] == "gp"]
    assert [(r["stage"], r["status"]) for r in gp] == [("opened", "sent"), ("escalated", "sent")]
    step = db.execute(
        "SELECT details FROM episode_events WHERE kind = 'escalated' ORDER BY id DESC LIMIT 1"
    ).fetchone()[0]
    assert step["to"] == "gp" and "not_texted" in step
    to_gp = [p.form["Body"] for p in fake_twilio.message_posts if p.form["To"] == GP_PHONE]
    assert len(to_gp) == 2
    assert "non ancora presa in carico" in to_gp[1]


def test_a_resolution_in_progress_during_the_claim_holds_the_sms_back(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    database_url: str,
    clock: Clock,
) -> None:
    red = queue_duty_phone_sms(db, cohort, settings, now=clock())
    nurse = add_nurse(db)
    sender = make_sender()
    with psycopg.connect(database_url, autocommit=True) as nurse_conn:
        # The nurse's resolution has changed the episode but not committed when the sender looks.
        with nurse_conn.transaction():
            episodes.act(
                nurse_conn, red.episode_id, "resolve", actor=nurse, now=clock(), protocols=PROTOCOLS
            )
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
def test_a_retry_for_a_resolved_episode_asks_twilio_before_cancelling(
    accepted: bool,
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(Reply.slow(1.0, accept=accepted))
    sender = make_sender()
    first = sender.run_once()  # times out: was it sent? Only Twilio knows
    act(db, add_nurse(db), red.episode_id, "resolve", clock())
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
    red = open_silent_episode(db, cohort.patient_id, clock())
    enqueue_episode_notifications(db, red.episode_id, "opened", settings, now=clock())
    with psycopg.connect(database_url, autocommit=True) as claiming, claiming.transaction():
        # A sender's claim has the rows locked (and will pass them over: the episode is locked
        # by the resolution), so the resolution cannot cancel them itself.
        claiming.execute("SELECT id FROM notifications FOR UPDATE")
        act(db, add_nurse(db), red.episode_id, "resolve", clock())
        after_resolution = [r["status"] for r in notifications(db)]
    report = make_sender(outbox=not credentials).run_once()

    assert after_resolution == ["pending", "pending"]
    assert report == SendReport(cancelled=2)  # not sent, and not outboxed either
    assert [(r["status"], r["cancel_reason"]) for r in notifications(db)] == [
        ("cancelled", RESOLVED)
    ] * 2
    assert fake_twilio.requests == []
