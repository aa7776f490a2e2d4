"""Sending through the real twilio client to the fake Twilio: one SMS per recipient, retries."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import psycopg

from alerts.notify import Sender, enqueue_episode_notifications
from alerts.notify.enqueue import load_episode_context
from alerts.notify.routing import ROME
from alerts.notify.sender import RetryPolicy
from telemon.config import Settings
from telemon.metrics import METRICS
from tests.fakes import FakeTwilio, Reply
from tests.notify.conftest import SenderFactory
from tests.notify.support import (
    DUTY_PHONE,
    GP_PHONE,
    MORNING,
    PUBLIC_URL,
    SENDER_NUMBER,
    Clock,
    Cohort,
    act,
    add_cohort,
    add_nurse,
    add_patient,
    events,
    gateway_for,
    notifications,
    queue_duty_phone_sms,
    raise_finding,
)
from tests.waiting import wait_until


def test_a_red_episode_sends_one_sms_to_the_gp_and_one_to_the_duty_phone(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = raise_finding(db, cohort.patient_id, settings, clock(), severity=2, value=86)

    report = make_sender().run_once()

    assert red.counts.notifications == 2
    assert (report.sent, report.failed, report.retrying) == (2, 0, 0)
    path = f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    posts = fake_twilio.message_posts
    assert [(p.path, p.auth) for p in posts] == [
        (path, (fake_twilio.account_sid, fake_twilio.auth_token))
    ] * 2
    link = f"{PUBLIC_URL}/episodes/{red.episode_id}"
    body = f"Telemon: allerta ROSSA, paziente M.R. SpO2 86 %. Apri: {link}"
    rows = notifications(db)
    assert [p.form for p in posts] == [
        {
            "To": row["to_address"],
            "From": SENDER_NUMBER,
            "Body": body,
            "StatusCallback": f"{PUBLIC_URL}/sms/status?notification={row['id']}",
        }
        for row in rows
    ]
    assert {r["to_address"] for r in rows} == {GP_PHONE, DUTY_PHONE}
    assert [(r["status"], r["attempts"]) for r in rows] == [("sent", 1)] * 2
    assert {(r["episode_id"], r["alert_id"]) for r in rows} == {(red.episode_id, red.alert_id)}
    assert sorted(r["provider_id"] for r in rows) == sorted(m["sid"] for m in fake_twilio.messages)
    assert {r["idempotency_key"] for r in rows} == {
        f"episode:{red.episode_id}:gp:{cohort.gp_id}:opened",
        f"episode:{red.episode_id}:service_centre:{cohort.centre_id}:opened",
    }
    notified = events(db, "notified")
    assert [(e["episode_id"], e["details"]["recipient_kind"]) for e in notified] == [
        (red.episode_id, r["recipient_kind"]) for r in rows
    ]
    assert [e["details"]["notification_id"] for e in notified] == [r["id"] for r in rows]


def test_a_finding_the_patient_hid_is_named_to_the_gp_only(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    # Oscuramento of the protocol the finding comes from: the GP still reads it whole; the
    # service centre's duty phone learns there is a red finding and where, not what.
    db.execute(
        "INSERT INTO patient_restrictions (patient_id, kind, protocol, metric_ids, requested_on, "
        "recorded_by) VALUES (%s, 'protocol', 'copd', %s, current_date, %s)",
        (cohort.patient_id, [METRICS["spo2"].id], cohort.gp_id),
    )
    red = raise_finding(db, cohort.patient_id, settings, clock(), severity=2, value=86)
    make_sender().run_once()
    link = f"{PUBLIC_URL}/episodes/{red.episode_id}"
    bodies = {r["to_address"]: r["body"] for r in notifications(db)}
    assert bodies == {
        GP_PHONE: f"Telemon: allerta ROSSA, paziente M.R. SpO2 86 %. Apri: {link}",
        DUTY_PHONE: f"Telemon: allerta ROSSA, paziente M.R. Valori fuori soglia. Apri: {link}",
    }
    context = load_episode_context(db, red.episode_id)
    assert context is not None and context.finding.withheld
    # Withdrawn, the restriction holds nothing back from the next SMS.
    db.execute("UPDATE patient_restrictions SET revoked_at = now(), revoked_by = recorded_by")
    context = load_episode_context(db, red.episode_id)
    assert context is not None and not context.finding.withheld


def test_the_same_episode_and_reason_is_notified_once(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = raise_finding(db, cohort.patient_id, settings, clock())
    sender = make_sender()

    sender.run_once()
    again = enqueue_episode_notifications(db, red.episode_id, "opened", settings, now=clock())
    sender.run_once()

    assert again == []
    assert len(fake_twilio.message_posts) == 2
    assert len(notifications(db)) == 2


def test_each_escalation_by_a_nurse_texts_the_gp_and_a_repeated_call_does_not(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    nurse = add_nurse(db)
    amber = raise_finding(db, cohort.patient_id, settings, clock(), severity=1)
    sender = make_sender()

    act(db, nurse, amber.episode_id, "escalate", clock(), settings=settings)
    sender.run_once()
    clock.advance(timedelta(minutes=30))
    act(db, nurse, amber.episode_id, "acknowledge", clock())
    clock.advance(timedelta(hours=2))  # the GP did not call back: escalate again
    act(db, nurse, amber.episode_id, "escalate", clock(), settings=settings)
    repeated = enqueue_episode_notifications(
        db, amber.episode_id, "escalated", settings, now=clock()
    )
    sender.run_once()

    assert amber.counts.notifications == 0
    assert repeated == []
    assert [(r["recipient_kind"], r["stage"], r["status"]) for r in notifications(db)] == [
        ("gp", "escalated", "sent"),
        ("gp", "escalated:2", "sent"),
    ]
    assert [p.form["To"] for p in fake_twilio.message_posts] == [GP_PHONE, GP_PHONE]
    queued = events(db, "notify_queued")
    assert [(e["details"]["reason"], e["details"]["stage"]) for e in queued] == [
        ("escalated", "escalated"),
        ("escalated", "escalated:2"),
    ]


def test_amber_reaches_the_gp_only_on_escalation_and_not_measuring_never(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    nurse = add_nurse(db)
    amber = raise_finding(db, cohort.patient_id, settings, clock(), severity=1)
    # A patient who only stopped measuring is the centre's task, even when a nurse escalates.
    quiet_patient = add_patient(db, cohort.gp_id, "P-0002")
    silent = raise_finding(
        db, quiet_patient, settings, clock(), rule="spo2_not_measuring", routing="centre_task"
    )
    act(db, nurse, silent.episode_id, "escalate", clock(), settings=settings)
    quiet_escalation = enqueue_episode_notifications(
        db, silent.episode_id, "escalated", settings, now=clock()
    )
    act(db, nurse, amber.episode_id, "escalate", clock(), settings=settings)
    make_sender().run_once()

    assert (amber.counts.notifications, silent.counts.notifications) == (0, 0)
    assert quiet_escalation == []
    assert [p.form["To"] for p in fake_twilio.message_posts] == [GP_PHONE]
    assert "non ancora presa in carico" in fake_twilio.message_posts[0].form["Body"]
    assert [r["episode_id"] for r in notifications(db)] == [amber.episode_id]


def test_english_gp_and_duty_phone_from_settings(
    db: psycopg.Connection,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    cohort = add_cohort(db, gp_language="en", duty_phone=None)
    settings = settings.model_copy(update={"service_centre_phone": "+390299999999"})
    raise_finding(
        db,
        cohort.patient_id,
        settings,
        clock(),
        protocol="hypertension",
        rule="bp_severe",
        metric_id=METRICS["systolic"].id,
        value=192,
    )

    make_sender().run_once()

    bodies = {p.form["To"]: p.form["Body"] for p in fake_twilio.message_posts}
    assert bodies[GP_PHONE].startswith("Telemon: RED alert, patient M.R. SBP 192 mmHg.")
    assert bodies["+390299999999"].startswith("Telemon: allerta ROSSA, paziente M.R.")
    assert "service_centre:default:opened" in notifications(db)[1]["idempotency_key"]


def test_a_messaging_service_sender_is_named_as_such(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    database_url: str,
    clock: Clock,
) -> None:
    raise_finding(db, cohort.patient_id, settings, clock())
    service = "MG" + "0" * 32
    with psycopg.connect(database_url, autocommit=True) as conn:
        Sender(
            conn, gateway_for(fake_twilio, service), public_url="http://127.0.0.1:8000", clock=clock
        ).run_once()

    forms = [p.form for p in fake_twilio.message_posts]
    assert [f["MessagingServiceSid"] for f in forms] == [service, service]
    assert not any("From" in f or "StatusCallback" in f for f in forms)


def test_the_gp_sms_waits_for_the_end_of_quiet_hours(
    db: psycopg.Connection,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    cohort = add_cohort(db, quiet_hours=(time(22), time(7)))
    clock.now = datetime(2026, 3, 10, 23, 40, tzinfo=ROME).astimezone(UTC)
    sender = make_sender()

    raise_finding(db, cohort.patient_id, settings, clock())
    sender.run_once()
    at_night = [p.form["To"] for p in fake_twilio.message_posts]
    clock.now = datetime(2026, 3, 11, 6, 59, tzinfo=ROME).astimezone(UTC)
    sender.run_once()
    before_seven = len(fake_twilio.message_posts)
    clock.now = datetime(2026, 3, 11, 7, 0, tzinfo=ROME).astimezone(UTC)
    sender.run_once()

    assert at_night == [DUTY_PHONE]
    assert before_seven == 1
    assert [p.form["To"] for p in fake_twilio.message_posts] == [DUTY_PHONE, GP_PHONE]
    gp_row = next(r for r in notifications(db) if r["recipient_kind"] == "gp")
    assert gp_row["next_attempt_at"] is None and gp_row["status"] == "sent"


def test_server_errors_are_retried_with_backoff_until_accepted(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(Reply.server_error(), Reply.server_error(503))
    sender = make_sender()
    start = clock()

    first = sender.run_once()
    row_after_first = notifications(db)[0]
    too_early = sender.run_once()
    clock.advance(timedelta(minutes=1))
    sender.run_once()
    row_after_second = notifications(db)[0]
    clock.advance(timedelta(minutes=2))
    last = sender.run_once()

    assert first.retrying == 1 and too_early == type(too_early)()
    assert row_after_first["status"] == "pending"
    assert row_after_first["next_attempt_at"] == start + timedelta(minutes=1)
    assert "Twilio 500 error 20500" in row_after_first["last_error"]
    assert row_after_second["next_attempt_at"] == start + timedelta(minutes=3)
    assert last.sent == 1
    assert len(fake_twilio.message_posts) == 3
    assert len(fake_twilio.messages) == 1
    row = notifications(db)[0]
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 3, None)
    assert row["provider_id"] == fake_twilio.messages[0]["sid"]
    failed = events(db, "notify_failed")
    assert [(e["details"]["attempt"], e["details"]["will_retry"]) for e in failed] == [
        (1, True),
        (2, True),
    ]
    assert [e["details"]["attempt"] for e in events(db, "notified")] == [3]


def test_after_the_last_attempt_the_row_fails_for_the_dashboard(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(*[Reply.server_error()] * 3)
    sender = make_sender(policy=RetryPolicy(max_attempts=3, first_delay=timedelta(0)))

    for _ in range(5):
        sender.run_once()

    row = notifications(db)[0]
    assert (row["status"], row["attempts"]) == ("failed", 3)
    assert row["last_error"].startswith("gave up after 3 attempts: Twilio 500")
    assert len(fake_twilio.message_posts) == 3
    assert events(db, "notify_failed")[-1]["details"]["will_retry"] is False


def test_an_invalid_number_fails_at_once(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(Reply.invalid_to())
    sender = make_sender()

    report = sender.run_once()
    clock.advance(timedelta(hours=1))
    sender.run_once()

    assert report.failed == 1
    row = notifications(db)[0]
    assert (row["status"], row["attempts"]) == ("failed", 1)
    assert "error 21211" in row["last_error"]
    assert len(fake_twilio.message_posts) == 1
    (event,) = events(db, "notify_failed")
    assert event["details"]["recipient_kind"] == "service_centre"
    assert event["details"]["will_retry"] is False


def test_a_timeout_after_twilio_accepted_is_found_not_resent(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(Reply.slow(1.0, accept=True))
    sender = make_sender()

    first = sender.run_once()
    clock.advance(timedelta(minutes=1))
    second = sender.run_once()

    assert first.retrying == 1
    assert "no answer from Twilio in time" in events(db, "notify_failed")[0]["details"]["error"]
    assert second.reconciled == 1
    assert len(fake_twilio.message_posts) == 1
    assert len(fake_twilio.messages) == 1
    lookups = [r for r in fake_twilio.requests if r.method == "GET"]
    assert [r.query["To"] for r in lookups] == [[DUTY_PHONE]]
    row = notifications(db)[0]
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert row["provider_id"] == fake_twilio.messages[0]["sid"]
    assert events(db, "notified")[0]["details"]["reconciled"] is True


def test_a_timeout_before_twilio_accepted_is_sent_again(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    queue_duty_phone_sms(db, cohort, settings, now=clock())
    fake_twilio.reply_with(Reply.slow(1.0, accept=False))
    sender = make_sender()

    sender.run_once()
    clock.advance(timedelta(minutes=1))
    second = sender.run_once()

    assert second.sent == 1
    assert len(fake_twilio.message_posts) == 2
    assert len(fake_twilio.messages) == 1
    row = notifications(db)[0]
    assert (row["status"], row["attempts"]) == ("sent", 2)


def test_without_credentials_messages_go_to_the_outbox(
    db: psycopg.Connection,
    cohort: Cohort,
    fake_twilio: FakeTwilio,
    database_url: str,
) -> None:
    demo = Settings(
        public_url=PUBLIC_URL, twilio_account_sid=None, twilio_auth_token=None, twilio_from=None
    )
    raise_finding(db, cohort.patient_id, demo, MORNING)
    with psycopg.connect(database_url, autocommit=True) as conn:
        report = Sender.from_settings(conn, demo).run_once()

    assert report.outboxed == 2
    assert [r["status"] for r in notifications(db)] == ["outboxed", "outboxed"]
    assert all(r["body"].startswith("Telemon: allerta ROSSA") for r in notifications(db))
    assert [e["details"]["status"] for e in events(db, "notified")] == ["outboxed"] * 2
    assert fake_twilio.requests == []


def test_a_serving_sender_sends_a_new_row_at_once_not_at_its_next_round(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    sender = make_sender()
    pid = sender.conn.info.backend_pid
    stop = threading.Event()
    serving = threading.Thread(target=sender.serve, args=(stop, 60.0), daemon=True)
    serving.start()
    try:
        # LISTEN is the sender's first statement: once its connection has run anything, a row
        # committed from now on wakes it.
        wait_until(
            lambda: db.execute(
                "SELECT query <> '' FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()[0],
            timeout=10,
        )
        queue_duty_phone_sms(db, cohort, settings, now=clock())
        # Far sooner than the 60 s round: the commit's NOTIFY woke it.
        wait_until(lambda: len(fake_twilio.message_posts) == 1, timeout=10)
    finally:
        stop.set()
        serving.join(10)
    assert not serving.is_alive()
    assert [row["status"] for row in notifications(db)] == ["sent"]
