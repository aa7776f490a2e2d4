"""Each stage of an alert's life texts once: escalations and lapsed snoozes again, reruns never.

Every evaluation runs on a fresh engine, as after a restart: the stage of a notification comes
from the alert's events in the database, not from anything an engine process remembers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest

from alerts.engine import ManualClock
from alerts.notify import Sender, SendReport
from alerts.notify.routing import ROME
from telemon.config import Settings
from tests.alerts_engine.support import (
    DUTY_PHONE,
    GP_PHONE,
    HOUR,
    Cohort,
    MakeEngine,
    acknowledge,
    alerts,
    events,
    notifications,
    set_quiet_hours,
    spo2,
)
from tests.fakes import FakeTwilio


@pytest.fixture
def send_due(
    database_url: str, settings: Settings, clock: ManualClock
) -> Iterator[Callable[[], SendReport]]:
    """One pass of a sender on its own connection, at the engine's clock."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        sender = Sender.from_settings(conn, settings, timeout=2.0)
        sender.clock = clock
        yield sender.run_once


def evaluate_after(
    make_engine: MakeEngine,
    clock: ManualClock,
    delta: timedelta,
    send_due: Callable[[], SendReport],
) -> SendReport:
    """Everyone evaluated ``delta`` later by a newly started engine (no readings: timers only),
    then a round of the sender, as the service runs it seconds later."""
    clock.advance(delta)
    make_engine().evaluate(clock(), None)
    return send_due()


def stages(db: psycopg.Connection) -> list[tuple[str, str]]:
    return [(n["recipient_kind"], n["stage"]) for n in notifications(db)]


def test_each_escalation_and_each_lapsed_snooze_texts_the_gp_once_across_restarts(
    db: psycopg.Connection,
    cohort: Cohort,
    make_engine: MakeEngine,
    clock: ManualClock,
    fake_twilio: FakeTwilio,
    send_due: Callable[[], SendReport],
) -> None:
    for value in (91, 90):
        spo2(db, make_engine(), clock, cohort.patient, value)
    [alert] = alerts(db)
    sent = [send_due().sent]
    sent.append(evaluate_after(make_engine, clock, HOUR, send_due).sent)  # escalate_after: 1 h
    sent.append(evaluate_after(make_engine, clock, HOUR, send_due).sent)  # an hour later still
    acknowledge(db, alert["id"], cohort.gp_id, clock)  # snoozed for 4 h
    sent.append(evaluate_after(make_engine, clock, 4 * HOUR, send_due).sent)  # lapsed, still red
    sent.append(evaluate_after(make_engine, clock, HOUR, send_due).sent)  # reminder unheeded
    acknowledge(db, alert["id"], cohort.gp_id, clock)
    sent.append(evaluate_after(make_engine, clock, 4 * HOUR, send_due).sent)
    written = len(notifications(db))
    rerun = evaluate_after(make_engine, clock, timedelta(0), send_due)  # a restart, same step

    assert events(db, alert["id"]) == [
        "opened",
        "escalated",
        "escalated",
        "snooze_expired",
        "escalated",
        "snooze_expired",
    ]
    assert stages(db) == [
        ("gp", "opened"),
        ("service_centre", "opened"),
        ("gp", "escalated"),
        ("gp", "escalated:2"),
        ("gp", "reminded"),
        ("gp", "escalated:3"),
        ("gp", "reminded:2"),
    ]
    assert len(notifications(db)) == written and rerun == SendReport()
    assert [n["idempotency_key"] for n in notifications(db)][2:4] == [
        f"alert:{alert['id']}:gp:{cohort.gp_id}:escalated",
        f"alert:{alert['id']}:gp:{cohort.gp_id}:escalated:2",
    ]
    assert sent == [2, 1, 1, 1, 1, 1]
    assert [p.form["To"] for p in fake_twilio.message_posts] == [GP_PHONE, DUTY_PHONE] + [
        GP_PHONE
    ] * 5
    assert {n["status"] for n in notifications(db)} == {"sent"}


def test_auto_resolution_cancels_the_gp_sms_held_for_quiet_hours_in_its_transaction(
    db: psycopg.Connection,
    cohort: Cohort,
    make_engine: MakeEngine,
    clock: ManualClock,
    fake_twilio: FakeTwilio,
    send_due: Callable[[], SendReport],
) -> None:
    set_quiet_hours(db, cohort.gp_id, time(22), time(7))
    clock.set(datetime(2026, 3, 10, 23, 0, tzinfo=ROME).astimezone(UTC))
    engine = make_engine()
    for value in (91, 90):
        spo2(db, engine, clock, cohort.patient, value)
    at_night = send_due()
    spo2(db, engine, clock, cohort.patient, 97)  # back to normal with margin: auto-resolved
    rows_after_resolution = {n["recipient_kind"]: n for n in notifications(db)}
    clock.set(datetime(2026, 3, 11, 7, 0, tzinfo=ROME).astimezone(UTC))
    morning = send_due()

    [alert] = alerts(db)
    assert (alert["state"], alert["outcome"]) == ("resolved", "auto_resolved")
    assert at_night.sent == 1
    gp = rows_after_resolution["gp"]
    assert (gp["status"], gp["cancel_reason"], gp["attempts"]) == (
        "cancelled",
        "alert resolved before sending",
        0,
    )
    assert rows_after_resolution["service_centre"]["status"] == "sent"  # sent stays sent
    cancelled = db.execute(
        "SELECT at, details FROM alert_events WHERE kind = 'notify_cancelled'"
    ).fetchall()
    resolved_at = alert["resolved_at"]
    assert cancelled == [
        (
            resolved_at,
            {
                "notification_id": gp["id"],
                "recipient_kind": "gp",
                "attempt": 0,
                "cancel_reason": "alert resolved before sending",
            },
        )
    ]
    assert morning == SendReport()
    assert [p.form["To"] for p in fake_twilio.message_posts] == [DUTY_PHONE]


def test_a_night_of_hourly_escalations_reaches_a_sleeping_gp_as_one_sms_at_seven(
    db: psycopg.Connection,
    cohort: Cohort,
    make_engine: MakeEngine,
    clock: ManualClock,
    fake_twilio: FakeTwilio,
    send_due: Callable[[], SendReport],
) -> None:
    set_quiet_hours(db, cohort.gp_id, time(22), time(7))
    clock.set(datetime(2026, 3, 10, 22, 30, tzinfo=ROME).astimezone(UTC))
    for value in (91, 90):
        spo2(db, make_engine(), clock, cohort.patient, value)  # red at 22:50, nobody answers
    send_due()
    nightly = [evaluate_after(make_engine, clock, HOUR, send_due) for _ in range(8)]  # to 06:50
    clock.set(datetime(2026, 3, 11, 7, 0, tzinfo=ROME).astimezone(UTC))
    seven = send_due()

    gp_rows = [(n["stage"], n["status"]) for n in notifications(db) if n["recipient_kind"] == "gp"]
    assert gp_rows == [("opened", "sent")] + [
        (f"escalated:{n}" if n > 1 else "escalated", "cancelled") for n in range(1, 8)
    ] + [("escalated:8", "sent")]
    assert {n["cancel_reason"] for n in notifications(db) if n["status"] == "cancelled"} == {
        "superseded by a later SMS of the same kind"
    }
    assert sum(r.sent for r in nightly) == 0 and sum(r.cancelled for r in nightly) == 7
    assert seven.sent == 2
    posts = [(p.form["To"], p.form["Body"].split(",")[0]) for p in fake_twilio.message_posts]
    assert posts == [
        (DUTY_PHONE, "Telemon: allerta ROSSA"),
        (GP_PHONE, "Telemon: allerta ROSSA"),
        (GP_PHONE, "Telemon: allerta ROSSA non ancora presa in carico"),
    ]


class Crash(Exception):
    pass


def test_an_engine_dying_before_its_rows_are_sent_or_before_its_commit_texts_each_once(
    db: psycopg.Connection,
    cohort: Cohort,
    make_engine: MakeEngine,
    clock: ManualClock,
    fake_twilio: FakeTwilio,
    send_due: Callable[[], SendReport],
) -> None:
    for value in (91, 90):
        spo2(db, make_engine(), clock, cohort.patient, value)
    send_due()
    clock.advance(HOUR)
    # Dies mid-step: the escalation, its event and its SMS row roll back together.
    doomed = make_engine()
    with pytest.raises(Crash), doomed.conn.transaction():
        doomed.evaluate(clock(), None)  # its own transaction nests as a savepoint
        assert [n["stage"] for n in notifications(doomed.conn)][-1] == "escalated"
        raise Crash
    after_crash = [n["stage"] for n in notifications(db)]
    # Commits the step, then dies before the sender's next round.
    first = make_engine()
    first.evaluate(clock(), None)
    first.conn.close()
    # Its successor starts with a full pass at the same instant, then another a minute on.
    successor = make_engine()
    successor.evaluate(clock(), None)
    successor.evaluate(clock() + timedelta(minutes=1), None)
    report = send_due()

    assert after_crash == ["opened", "opened"]
    assert [n["stage"] for n in notifications(db)] == ["opened", "opened", "escalated"]
    assert report.sent == 1
    assert [p.form["To"] for p in fake_twilio.message_posts] == [GP_PHONE, DUTY_PHONE, GP_PHONE]
    [alert] = alerts(db)
    assert events(db, alert["id"]) == ["opened", "escalated"]
