"""Each stage of an episode's life texts once: each step of its chain again, reruns never.

Every evaluation runs on a fresh engine, as after a restart: the stage of a notification comes
from the episode's events in the database, not from anything an engine process remembers.
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
    MIN,
    Cohort,
    MakeEngine,
    acknowledge,
    episode_events,
    episodes,
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


def test_each_step_of_the_chain_texts_once_across_restarts_and_a_lapsed_snooze_resumes_it(
    db: psycopg.Connection,
    cohort: Cohort,
    make_engine: MakeEngine,
    clock: ManualClock,
    fake_twilio: FakeTwilio,
    send_due: Callable[[], SendReport],
) -> None:
    for value in (91, 90):
        spo2(db, make_engine(), clock, cohort.patient, value)
    [episode] = episodes(db)
    sent = [send_due().sent]
    sent.append(evaluate_after(make_engine, clock, 30 * MIN, send_due).sent)  # the GP, once
    sent.append(evaluate_after(make_engine, clock, 30 * MIN, send_due).sent)  # the duty phone
    sent.append(evaluate_after(make_engine, clock, HOUR, send_due).sent)  # and every hour
    acknowledge(db, episode["id"], cohort.gp_id, clock)  # snoozed for 4 h
    sent.append(evaluate_after(make_engine, clock, 4 * HOUR, send_due).sent)  # lapsed: no SMS
    sent.append(evaluate_after(make_engine, clock, HOUR, send_due).sent)  # the duty phone's next
    written = len(notifications(db))
    rerun = evaluate_after(make_engine, clock, timedelta(0), send_due)  # a restart, same step

    assert episode_events(db, episode["id"]) == [
        "opened",
        "escalated",
        "escalated",
        "escalated",
        "acknowledge",
        "snooze_expired",
        "escalated",
    ]
    assert stages(db) == [
        ("gp", "opened"),
        ("service_centre", "opened"),
        ("gp", "escalated"),
        ("service_centre", "escalated:2"),
        ("service_centre", "escalated:3"),
        ("service_centre", "escalated:4"),
    ]
    assert len(notifications(db)) == written and rerun == SendReport()
    assert [n["idempotency_key"] for n in notifications(db)][2:4] == [
        f"episode:{episode['id']}:gp:{cohort.gp_id}:escalated",
        f"episode:{episode['id']}:service_centre:{cohort.centre_id}:escalated:2",
    ]
    assert sent == [2, 1, 1, 1, 0, 1]
    assert [p.form["To"] for p in fake_twilio.message_posts] == [
        GP_PHONE,
        DUTY_PHONE,
        GP_PHONE,
        DUTY_PHONE,
        DUTY_PHONE,
        DUTY_PHONE,
    ]
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

    [episode] = episodes(db)
    assert (episode["state"], episode["outcome"]) == ("resolved", "auto_resolved")
    assert at_night.sent == 1
    gp = rows_after_resolution["gp"]
    assert (gp["status"], gp["cancel_reason"], gp["attempts"]) == (
        "cancelled",
        "episode resolved before sending",
        0,
    )
    assert rows_after_resolution["service_centre"]["status"] == "sent"  # sent stays sent
    cancelled = db.execute(
        "SELECT at, details FROM episode_events WHERE kind = 'notify_cancelled'"
    ).fetchall()
    resolved_at = episode["resolved_at"]
    assert cancelled == [
        (
            resolved_at,
            {
                "notification_id": gp["id"],
                "recipient_kind": "gp",
                "attempt": 0,
                "cancel_reason": "episode resolved before sending",
            },
        )
    ]
    assert morning == SendReport()
    assert [p.form["To"] for p in fake_twilio.message_posts] == [DUTY_PHONE]


def test_a_night_nobody_acts_on_reaches_a_sleeping_gp_as_two_sms_at_seven(
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
    assert gp_rows == [("opened", "sent"), ("escalated", "sent")]
    # The duty phone, staffed around the clock, heard at once and every hour after its step.
    centre = [n["stage"] for n in notifications(db) if n["recipient_kind"] == "service_centre"]
    assert centre == ["opened"] + [f"escalated:{n}" for n in range(2, 9)]
    assert sum(r.sent for r in nightly) == 7
    assert seven.sent == 2
    posts = [(p.form["To"], p.form["Body"].split(",")[0]) for p in fake_twilio.message_posts]
    assert posts[0] == (DUTY_PHONE, "Telemon: allerta ROSSA")
    assert posts[-2:] == [
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
    clock.advance(30 * MIN)
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
    [episode] = episodes(db)
    assert episode_events(db, episode["id"]) == ["opened", "escalated"]
