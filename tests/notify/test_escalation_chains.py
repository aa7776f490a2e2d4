"""What an episode texts over days: its opening, its worsening and its finite escalation chain.

The clock runs as the engine's would, a tick every ten minutes: each tick takes the steps due
and the acknowledgements lapsed (``alerts.episodes.escalate_due``), then a sender sends what is
due to the fake Twilio. The chains are the shipped COPD protocol's: amber reminds the GP after
1 h; red texts the GP and the duty phone at once, reminds the GP after 30 min, then texts the
duty phone 30 min later and every hour until someone acknowledges.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, time, timedelta

import psycopg

from alerts.notify.routing import ROME
from alerts.notify.sender import Sender
from telemon.config import Settings
from tests.fakes import FakeTwilio
from tests.notify.conftest import SenderFactory
from tests.notify.support import (
    DUTY_PHONE,
    GP_PHONE,
    Clock,
    Cohort,
    Raised,
    act,
    add_cohort,
    add_nurse,
    add_patient,
    clear_finding,
    episode,
    escalate,
    notifications,
    raise_finding,
)

TICK = timedelta(minutes=10)
HOUR = timedelta(hours=1)


def run_until(
    db: psycopg.Connection, settings: Settings, sender: Sender, clock: Clock, until: datetime
) -> None:
    while clock() < until:
        clock.advance(TICK)
        escalate(db, settings, clock())
        sender.run_once()


def sent(db: psycopg.Connection, recipient_kind: str, since: datetime) -> list[timedelta]:
    """When each SMS to that recipient left, from ``since``."""
    return [
        row["sent_at"] - since
        for row in notifications(db)
        if row["recipient_kind"] == recipient_kind and row["status"] == "sent"
    ]


def bodies_to(fake: FakeTwilio, phone: str) -> list[str]:
    return [p.form["Body"] for p in fake.message_posts if p.form["To"] == phone]


def test_a_red_episode_nobody_acknowledges_texts_the_gp_twice_then_the_duty_phone_hourly(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    red = raise_finding(db, cohort.patient_id, settings, start)
    sender = make_sender()
    sender.run_once()

    run_until(db, settings, sender, clock, start + timedelta(days=2))
    unacknowledged = (sent(db, "gp", start), sent(db, "service_centre", start))
    act(db, add_nurse(db), red.episode_id, "acknowledge", clock())
    acknowledged_at = clock()
    run_until(db, settings, sender, clock, acknowledged_at + timedelta(hours=3))

    gp, duty = unacknowledged
    assert gp == [timedelta(0), timedelta(minutes=30)]
    # The opening, then hourly from the duty phone's step for a day (times = 24), then quiet.
    assert duty == [timedelta(0)] + [n * HOUR for n in range(1, 25)]
    # Nothing after the acknowledgement, within its snooze (4 h for a low SpO2).
    assert (sent(db, "gp", start), sent(db, "service_centre", start)) == unacknowledged
    to_gp = bodies_to(fake_twilio, GP_PHONE)
    assert to_gp[0].startswith("Telemon: allerta ROSSA, paziente M.R.")
    assert to_gp[1].startswith("Telemon: allerta ROSSA non ancora presa in carico")
    assert all(
        body.startswith("Telemon: allerta ROSSA non ancora presa in carico")
        for body in bodies_to(fake_twilio, DUTY_PHONE)[1:]
    )
    held = episode(db, red.episode_id)
    assert (held["state"], held["next_escalation_at"]) == ("acknowledged", None)


def test_an_amber_episode_nobody_acknowledges_texts_the_gp_once(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    amber = raise_finding(db, cohort.patient_id, settings, start, severity=1, value=93)
    sender = make_sender()

    run_until(db, settings, sender, clock, start + timedelta(days=2))

    assert amber.counts.notifications == 0
    assert sent(db, "gp", start) == [HOUR]
    assert sent(db, "service_centre", start) == []
    [body] = bodies_to(fake_twilio, GP_PHONE)
    assert body.startswith("Telemon: allerta GIALLA non ancora presa in carico, paziente M.R.")
    assert episode(db, amber.episode_id)["next_escalation_at"] is None  # the chain has ended


def test_a_finding_joining_at_the_same_or_a_lower_level_texts_nobody(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    red = raise_finding(db, cohort.patient_id, settings, clock())
    chain_before = episode(db, red.episode_id)
    clock.advance(timedelta(minutes=5))
    joined = [
        raise_finding(db, cohort.patient_id, settings, clock(), **finding)  # type: ignore[arg-type]
        for finding in (
            {"rule": "news2_partial", "severity": 2, "metric_id": None, "value": 7},
            {"rule": "spo2_falling", "severity": 1, "value": -4},
            {"rule": "spo2_not_measuring", "severity": 2, "routing": "centre_task"},
        )
    ]
    make_sender().run_once()

    assert {j.episode_id for j in joined} == {red.episode_id}
    assert [j.counts.notifications for j in joined] == [0, 0, 0]
    assert [(r["recipient_kind"], r["reason"]) for r in notifications(db)] == [
        ("gp", "opened"),
        ("service_centre", "opened"),
    ]
    # Nor does a joining finding restart the chain: the GP's reminder is still 30 min after
    # the opening.
    chain_after = episode(db, red.episode_id)
    assert chain_after["next_escalation_at"] == chain_before["next_escalation_at"]
    assert chain_after["escalation_step"] == chain_before["escalation_step"] == 0


def test_worsening_from_amber_to_red_texts_the_gp_and_the_duty_phone(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    amber = raise_finding(db, cohort.patient_id, settings, start, severity=1, rule="spo2_falling")
    sender = make_sender()
    clock.advance(timedelta(minutes=20))
    worse = raise_finding(db, cohort.patient_id, settings, clock(), severity=2, value=86)
    sender.run_once()
    run_until(db, settings, sender, clock, start + timedelta(hours=1, minutes=30))

    assert worse.episode_id == amber.episode_id
    assert worse.counts.notifications == 2
    rows = notifications(db)
    assert [(r["recipient_kind"], r["reason"], r["stage"]) for r in rows[:2]] == [
        ("gp", "worsened", "worsened"),
        ("service_centre", "worsened", "worsened"),
    ]
    assert bodies_to(fake_twilio, GP_PHONE)[0] == (
        "Telemon: allerta aggravata a ROSSA, paziente M.R. SpO2 86 %. "
        f"Apri: {settings.public_url}/episodes/{amber.episode_id}"
    )
    # The red chain starts at the worsening, not at the amber opening: the GP's reminder comes
    # 30 min after it, and the amber chain's step (1 h after the opening) is not taken.
    assert sent(db, "gp", start) == [timedelta(minutes=20), timedelta(minutes=50)]
    assert sent(db, "service_centre", start) == [timedelta(minutes=20), timedelta(minutes=80)]


def test_a_red_finding_for_a_patient_who_only_stopped_measuring_opens_the_red_sms(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    task = raise_finding(
        db, cohort.patient_id, settings, clock(), rule="spo2_not_measuring", routing="centre_task"
    )
    clock.advance(timedelta(hours=3))
    red = raise_finding(db, cohort.patient_id, settings, clock())
    make_sender().run_once()

    assert red.episode_id == task.episode_id
    assert [(r["recipient_kind"], r["reason"]) for r in notifications(db)] == [
        ("gp", "opened"),
        ("service_centre", "opened"),
    ]
    assert bodies_to(fake_twilio, GP_PHONE)[0].startswith("Telemon: allerta ROSSA, paziente")


def test_after_an_acknowledgement_lapses_the_chain_resumes_without_texting_the_gp_again(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    red = raise_finding(db, cohort.patient_id, settings, start)
    sender = make_sender()
    sender.run_once()
    # The GP's reminder goes at 30 min; a nurse acknowledges at 40, before the duty phone's.
    run_until(db, settings, sender, clock, start + timedelta(minutes=40))
    act(db, add_nurse(db), red.episode_id, "acknowledge", clock())
    # spo2_low snoozes for 4 h: the episode comes back at 4 h 40 min, and the chain goes on
    # with the step it had not taken (the duty phone, 30 min later), then every hour.
    run_until(db, settings, sender, clock, start + timedelta(hours=7))

    assert sent(db, "gp", start) == [timedelta(0), timedelta(minutes=30)]
    minutes = [int(t / timedelta(minutes=1)) for t in sent(db, "service_centre", start)]
    assert minutes == [0, 310, 370]
    reminders = bodies_to(fake_twilio, DUTY_PHONE)[1:]
    # Somebody did acknowledge it once: the SMS must not say nobody did.
    assert all("ancora aperta dopo la presa in carico" in body for body in reminders)
    assert episode(db, red.episode_id)["state"] == "escalated"


def test_an_acknowledgement_stops_the_chain_of_an_amber_episode(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    amber = raise_finding(db, cohort.patient_id, settings, start, severity=1, rule="spo2_falling")
    sender = make_sender()
    clock.advance(timedelta(minutes=30))
    act(db, add_nurse(db), amber.episode_id, "acknowledge", clock())
    # spo2_falling snoozes for 8 h; the amber chain's step (1 h) is never taken meanwhile.
    run_until(db, settings, sender, clock, start + timedelta(hours=8))

    assert notifications(db) == []
    clock_after_snooze = start + timedelta(hours=8, minutes=30) + HOUR
    run_until(db, settings, sender, clock, clock_after_snooze)
    # The snooze lapsed at 8 h 30 min: the step left (the GP, once) is due 1 h later.
    assert sent(db, "gp", start) == [timedelta(hours=9, minutes=30)]


def test_in_quiet_hours_the_gp_waits_for_the_morning_and_the_duty_phone_does_not(
    db: psycopg.Connection,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    cohort = add_cohort(db, quiet_hours=(time(22), time(7)))
    night = datetime(2026, 3, 10, 23, 40, tzinfo=ROME).astimezone(UTC)
    seven = datetime(2026, 3, 11, 7, 0, tzinfo=ROME).astimezone(UTC)
    clock.now = night
    raise_finding(db, cohort.patient_id, settings, night)
    sender = make_sender()
    sender.run_once()

    run_until(db, settings, sender, clock, seven - TICK)
    at_night = [p.form["To"] for p in fake_twilio.message_posts]
    run_until(db, settings, sender, clock, seven)

    # The duty phone at once and every hour from 00:40; the GP nothing before 07:00.
    assert at_night == [DUTY_PHONE] * 8
    assert sent(db, "service_centre", night) == [timedelta(0)] + [
        timedelta(minutes=60 * n) for n in range(1, 8)
    ]
    # Then the opening and the reminder, which was due at 00:10: no more than two.
    assert sent(db, "gp", night) == [seven - night] * 2
    assert [r["reason"] for r in notifications(db) if r["recipient_kind"] == "gp"] == [
        "opened",
        "escalated",
    ]


def test_each_patient_has_one_episode_and_one_chain(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    other = add_patient(db, cohort.gp_id, "P-0002")
    first = raise_finding(db, cohort.patient_id, settings, start)
    second = raise_finding(db, other, settings, start)
    run_until(db, settings, make_sender(), clock, start + timedelta(hours=1))

    assert first.episode_id != second.episode_id
    per_episode = {
        e: [
            r["stage"]
            for r in notifications(db)
            if r["episode_id"] == e and r["recipient_kind"] == "gp"
        ]
        for e in (first.episode_id, second.episode_id)
    }
    assert per_episode == {
        first.episode_id: ["opened", "escalated"],
        second.episode_id: ["opened", "escalated"],
    }


def test_an_acknowledged_amber_does_not_stand_for_the_red_it_worsened_to(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    amber = raise_finding(db, cohort.patient_id, settings, start, severity=1, rule="spo2_falling")
    sender = make_sender()
    clock.advance(timedelta(minutes=10))
    act(db, add_nurse(db), amber.episode_id, "acknowledge", clock())
    clock.advance(timedelta(minutes=10))
    raise_finding(db, cohort.patient_id, settings, clock(), severity=2)
    sender.run_once()
    run_until(db, settings, sender, clock, start + timedelta(hours=1))

    assert sent(db, "gp", start) == [timedelta(minutes=20), timedelta(minutes=50)]
    worsened, reminder = bodies_to(fake_twilio, GP_PHONE)
    assert worsened.startswith("Telemon: allerta aggravata a ROSSA")
    # Nobody has acknowledged the red episode: the reminder says so.
    assert reminder.startswith("Telemon: allerta ROSSA non ancora presa in carico")


def test_an_acknowledged_episode_worse_for_the_queue_only_goes_on_with_its_chain(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    amber = raise_finding(db, cohort.patient_id, settings, start, severity=1, rule="spo2_falling")
    sender = make_sender()
    clock.advance(timedelta(minutes=10))
    act(db, add_nurse(db), amber.episode_id, "acknowledge", clock())
    clock.advance(timedelta(minutes=10))
    # The same patient, also followed for hypertension, stops measuring their pressure: red
    # for the nurses' queue, which breaks the acknowledgement, and no SMS of its own.
    task = raise_finding(
        db,
        cohort.patient_id,
        settings,
        clock(),
        protocol="hypertension",
        rule="bp_not_measuring",
        routing="centre_task",
    )
    reopened = episode(db, amber.episode_id)
    run_until(db, settings, sender, clock, start + timedelta(hours=2))

    assert task.counts.notifications == 0
    assert (reopened["state"], reopened["severity"], reopened["alert_level"]) == ("open", 2, 1)
    # Unacknowledged again, the amber chain goes on: the GP once, 1 h after the change.
    assert sent(db, "gp", start) == [timedelta(minutes=80)]


def test_red_again_after_a_red_cleared_within_one_episode_texts_again(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    fake_twilio: FakeTwilio,
    make_sender: SenderFactory,
    clock: Clock,
) -> None:
    start = clock()
    # The episode stays open throughout: the patient has stopped measuring their pressure.
    raise_finding(
        db,
        cohort.patient_id,
        settings,
        start,
        protocol="hypertension",
        rule="bp_not_measuring",
        routing="centre_task",
    )
    sender = make_sender()
    first = raise_finding(db, cohort.patient_id, settings, start)
    sender.run_once()
    clear_finding(db, first.alert_id, settings, start + timedelta(minutes=20))
    clock.advance(timedelta(hours=5))
    again = raise_finding(db, cohort.patient_id, settings, clock(), value=84)
    sender.run_once()

    assert again.episode_id == first.episode_id
    assert again.counts.notifications == 2
    to_gp = bodies_to(fake_twilio, GP_PHONE)
    assert len(to_gp) == 2
    assert to_gp[1].startswith("Telemon: allerta ROSSA, paziente M.R. SpO2 84 %")
    assert len(bodies_to(fake_twilio, DUTY_PHONE)) == 2
    assert [r["stage"] for r in notifications(db) if r["recipient_kind"] == "gp"] == [
        "worsened",
        "worsened:2",
    ]


def test_two_engines_opening_red_findings_at_once_text_one_episodes_sms(
    db: psycopg.Connection,
    cohort: Cohort,
    settings: Settings,
    database_url: str,
    clock: Clock,
) -> None:
    with (
        psycopg.connect(database_url, autocommit=True) as first,
        psycopg.connect(database_url, autocommit=True) as second,
    ):
        results: list[Raised] = []
        with first.transaction():
            results.append(raise_finding(first, cohort.patient_id, settings, clock()))
            # The second engine's episode insert waits for the first's commit, then joins.
            joining = threading.Thread(
                target=lambda: results.append(
                    raise_finding(
                        second,
                        cohort.patient_id,
                        settings,
                        clock(),
                        rule="news2_partial",
                        metric_id=None,
                    )
                )
            )
            joining.start()
            joining.join(0.5)
            waited = joining.is_alive()
        joining.join(10)

    opened, joined = results
    assert waited
    assert joined.episode_id == opened.episode_id
    assert (opened.counts.notifications, joined.counts.notifications) == (2, 0)
    assert [(r["recipient_kind"], r["stage"]) for r in notifications(db)] == [
        ("gp", "opened"),
        ("service_centre", "opened"),
    ]
