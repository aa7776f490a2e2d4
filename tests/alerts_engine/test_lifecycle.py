"""The lifecycle end to end in the real database: readings in, findings, episodes and SMS out."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg

from alerts.engine import Engine, ManualClock
from alerts.engine.decide import Decision
from alerts.engine.lifecycle import Applied, RuleContext, apply_decision
from alerts.episodes import act
from telemon.config import Settings
from tests.alerts_engine.support import (
    DUTY_PHONE,
    GP_PHONE,
    HOUR,
    MIN,
    MORNING,
    PROTOCOLS,
    Cohort,
    MakeEngine,
    acknowledge,
    add_cohort,
    add_readings,
    alerts,
    episode_events,
    episodes,
    events,
    notifications,
    spo2,
)


def test_red_spo2_opens_one_finding_in_one_episode_with_sms_rows_for_gp_and_centre(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    spo2(db, engine, clock, cohort.patient, 91)
    assert alerts(db) == []  # one reading is not confirmed: the app asks for a second

    spo2(db, engine, clock, cohort.patient, 90)
    spo2(db, engine, clock, cohort.patient, 90.5)
    engine.evaluate(clock(), None)

    [alert] = alerts(db)
    assert (alert["rule"], alert["kind"], alert["severity"], alert["state"]) == (
        "spo2_low",
        "clinical",
        2,
        "open",
    )
    assert alert["trigger_value"] == 90 and alert["reason"] == "spo2:red"
    assert events(db, alert["id"]) == ["opened"]
    [episode] = episodes(db)
    assert (episode["patient_id"], episode["severity"], episode["alert_level"]) == (
        cohort.patient,
        2,
        2,
    )
    assert (episode["state"], alert["episode_id"]) == ("open", episode["id"])
    assert episode_events(db, episode["id"]) == ["opened"]
    rows = notifications(db)
    assert sorted((n["recipient_kind"], n["to_address"]) for n in rows) == [
        ("gp", GP_PHONE),
        ("service_centre", DUTY_PHONE),
    ]
    assert all(n["status"] == "pending" and n["episode_id"] == episode["id"] for n in rows)


def test_two_engines_evaluating_at_once_open_one_alert(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    first = make_engine()
    spo2(db, first, clock, cohort.patient, 91)
    add_readings(db, cohort.patient, "spo2", [(clock() + 4 * MIN, 90)])
    clock.advance(5 * MIN)

    engines = [make_engine() for _ in range(4)]
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def run(engine: Engine) -> None:
        try:
            start.wait()
            engine.evaluate(clock(), [cohort.patient])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(alerts(db)) == 1
    assert len(episodes(db)) == 1
    assert len(notifications(db)) == 2


def test_the_database_refuses_a_second_open_alert_when_engine_states_disagree(
    db: psycopg.Connection, cohort: Cohort, settings: Settings
) -> None:
    rule = PROTOCOLS["covid19_home_oximetry"].rule("spo2_low")
    context = RuleContext(
        "covid19_home_oximetry", rule, __import__("numpy").array([cohort.patient])
    )
    decision = Decision("open", 0, None, 2, 90.0, int(MORNING.timestamp()), "spo2:red", 0)
    results = []
    for _ in range(2):
        applied = Applied()
        with db.transaction():
            apply_decision(
                db, context, decision, PROTOCOLS, settings, int(MORNING.timestamp()), applied
            )
        results.append((applied.opened, applied.conflicts, applied.notifications))
    assert results == [(1, 0, 2), (0, 1, 0)]
    assert len(alerts(db)) == 1


def test_hysteresis_holds_the_finding_then_it_downgrades_and_resolves_with_margin(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (91, 90):
        spo2(db, engine, clock, cohort.patient, value)
    # Around the red threshold (92) but within the clear margin (1): the finding stays red.
    for value in (93, 92, 93, 91.5, 93):
        spo2(db, engine, clock, cohort.patient, value)
        engine.evaluate(clock(), None)
    [alert] = alerts(db)
    assert (alert["severity"], alert["state"]) == (2, "open")
    assert events(db, alert["id"]) == ["opened"]

    spo2(db, engine, clock, cohort.patient, 94)  # out of red with margin, amber held
    assert alerts(db)[0]["severity"] == 1
    assert episodes(db)[0]["severity"] == 1
    spo2(db, engine, clock, cohort.patient, 95)  # amber band is <= 94, held up to 95
    assert alerts(db)[0]["state"] != "resolved"
    spo2(db, engine, clock, cohort.patient, 96)

    [alert] = alerts(db)
    assert (alert["state"], alert["outcome"]) == ("resolved", "auto_resolved")
    assert alert["resolved_by"] is None and alert["resolved_at"] == clock()
    assert events(db, alert["id"]) == ["opened", "downgraded", "auto_resolved"]
    [episode] = episodes(db)
    assert (episode["state"], episode["outcome"], episode["resolved_at"]) == (
        "resolved",
        "auto_resolved",
        clock(),
    )
    # Unacknowledged for over half an hour while red: the GP was reminded once on the way.
    assert episode_events(db, episode["id"]) == [
        "opened",
        "escalated",
        "downgraded",
        "auto_resolved",
    ]
    actors = db.execute(
        "SELECT DISTINCT actor_id FROM alert_events UNION SELECT actor_id FROM episode_events"
    ).fetchall()
    assert actors == [(None,)]
    sent = sorted((n["recipient_kind"], n["stage"]) for n in notifications(db))
    # Amber before the duty phone's step came due; downgrades, resolutions: no SMS.
    assert sent == [("gp", "escalated"), ("gp", "opened"), ("service_centre", "opened")]


def test_an_unacknowledged_red_episode_reminds_the_gp_once_then_the_duty_phone_for_a_day(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (91, 90):
        spo2(db, engine, clock, cohort.patient, value)
    [episode] = episodes(db)
    opened = episode["opened_at"]

    clock.advance(opened + 29 * MIN - clock())  # the red chain: the GP after 30 min
    engine.evaluate(clock(), None)
    assert episodes(db)[0]["state"] == "open"
    clock.advance(MIN)
    engine.evaluate(clock(), None)
    [episode] = episodes(db)
    assert (episode["state"], episode["escalated_at"]) == ("escalated", clock())
    # Then the duty phone 30 min later and every hour: two days of nobody acting.
    for _ in range(48 * 6):
        clock.advance(10 * MIN)
        engine.evaluate(clock(), None)
    to_gp = [n["stage"] for n in notifications(db) if n["recipient_kind"] == "gp"]
    assert to_gp == ["opened", "escalated"]  # at most two SMS to a GP for one episode
    to_centre = [n["stage"] for n in notifications(db) if n["recipient_kind"] == "service_centre"]
    assert to_centre[:3] == ["opened", "escalated:2", "escalated:3"]
    # The opening, then one an hour from the duty phone's step, for a day (times = 24).
    assert len(to_centre) == 1 + 24

    acknowledge(db, episode["id"], cohort.gp_id, clock)
    before = len(notifications(db))
    for _ in range(3 * 6):
        clock.advance(10 * MIN)
        engine.evaluate(clock(), None)
    assert len(notifications(db)) == before  # the acknowledgement holds the chain (snooze 4 h)


def test_an_amber_episode_texts_the_gp_once_when_nobody_acknowledges_it(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (94, 93):
        spo2(db, engine, clock, cohort.patient, value)
    assert notifications(db) == []  # amber waits in the queue
    for _ in range(24 * 6):
        clock.advance(10 * MIN)
        engine.evaluate(clock(), None)
    assert [(n["recipient_kind"], n["stage"]) for n in notifications(db)] == [("gp", "escalated")]
    [episode] = episodes(db)
    assert (episode["state"], episode["next_escalation_at"]) == ("escalated", None)


def test_acknowledged_episode_is_not_renotified_within_snooze_but_worse_breaks_it(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (94, 93):
        spo2(db, engine, clock, cohort.patient, value)
    [episode] = episodes(db)
    assert episode["severity"] == 1 and notifications(db) == []  # amber waits in the queue
    acknowledge(db, episode["id"], cohort.gp_id, clock)

    # Amber readings for three hours, well past the amber step (1 h): still silent.
    for _ in range(18):
        spo2(db, engine, clock, cohort.patient, 93.5)
        engine.evaluate(clock(), None)
    [episode] = episodes(db)
    assert episode["state"] == "acknowledged"
    assert episode_events(db, episode["id"]) == ["opened", "acknowledge"]
    assert notifications(db) == []

    spo2(db, engine, clock, cohort.patient, 90)  # worse: red
    [episode] = episodes(db)
    assert (episode["severity"], episode["state"], episode["snoozed_until"]) == (2, "open", None)
    assert episode_events(db, episode["id"]) == ["opened", "acknowledge", "worsened"]
    [alert] = alerts(db)
    assert events(db, alert["id"]) == ["opened", "worsened"]
    worsened = {(n["recipient_kind"], n["stage"]) for n in notifications(db)}
    assert worsened == {("gp", "worsened"), ("service_centre", "worsened")}


def test_a_lapsed_acknowledgement_reopens_the_episode_and_resumes_its_chain_without_a_new_sms(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (91, 90):
        spo2(db, engine, clock, cohort.patient, value)
    [episode] = episodes(db)
    acknowledge(db, episode["id"], cohort.gp_id, clock)  # before the GP's reminder
    clock.advance(3 * HOUR)
    engine.evaluate(clock(), None)
    assert episodes(db)[0]["state"] == "acknowledged"
    clock.advance(HOUR)  # the spo2_low snooze (4 h) is over
    engine.evaluate(clock(), None)
    [episode] = episodes(db)
    assert episode["state"] == "open"
    assert episode_events(db, episode["id"]) == ["opened", "acknowledge", "snooze_expired"]
    assert [n["stage"] for n in notifications(db)] == ["opened", "opened"]
    assert episode["next_escalation_at"] == clock() + 30 * MIN  # the GP's step, not taken yet

    clock.advance(30 * MIN)
    engine.evaluate(clock(), None)
    last = notifications(db)[-1]
    assert (last["recipient_kind"], last["stage"]) == ("gp", "escalated")
    assert "dopo la presa in carico" in last["body"]  # a reminder: it was acknowledged


def test_a_finding_joining_an_open_episode_at_the_same_or_a_lower_level_texts_nobody(
    db: psycopg.Connection, make_engine: MakeEngine, clock: ManualClock
) -> None:
    cohort = add_cohort(db)
    engine = make_engine()
    for value in (91, 90):
        spo2(db, engine, clock, cohort.patient, value)
    texted = len(notifications(db))
    # Temperature, pulse and a third parameter: partial NEWS2 amber (SpO2 3 points, T 2, FC 2).
    add_readings(db, cohort.patient, "body_temperature", [(clock() - MIN, 39.2)])
    add_readings(db, cohort.patient, "pulse_rate", [(clock() - MIN, 118)])
    engine.evaluate(clock(), [cohort.patient])
    clock.advance(10 * MIN)  # the next set of readings confirms the score
    add_readings(db, cohort.patient, "body_temperature", [(clock() - MIN, 39.3)])
    add_readings(db, cohort.patient, "pulse_rate", [(clock() - MIN, 120)])
    engine.evaluate(clock(), [cohort.patient])
    findings = alerts(db)
    assert sorted(a["rule"] for a in findings) == ["news2_partial", "spo2_low"]
    [episode] = episodes(db)
    assert {a["episode_id"] for a in findings} == {episode["id"]}
    assert episode_events(db, episode["id"]) == ["opened", "finding_joined"]
    assert len(notifications(db)) == texted


def test_not_measuring_task_opens_without_sms_and_resolves_when_data_arrives(
    db: psycopg.Connection, make_engine: MakeEngine, clock: ManualClock
) -> None:
    cohort = add_cohort(db, n_patients=2)
    measured, silent = cohort.patients
    add_readings(db, measured, "spo2", [(clock() - timedelta(hours=21), 97)])
    engine = make_engine()
    engine.evaluate(clock(), None)

    tasks = {a["patient_id"]: a for a in alerts(db, rule="spo2_not_measuring")}
    assert {p: (a["kind"], a["severity"]) for p, a in tasks.items()} == {
        measured: ("not_measuring", 1),  # > 20 h: two sessions missed
        silent: ("not_measuring", 2),  # never measured
    }
    assert tasks[measured]["trigger_value"] == 21.0
    assert notifications(db) == []  # a task for the service centre, never an SMS
    assert {e["patient_id"]: e["alert_level"] for e in episodes(db)} == {measured: 0, silent: 0}
    for _ in range(3 * 24):
        clock.advance(HOUR)
        engine.evaluate(clock(), None)
    assert notifications(db) == []  # nor later: no chain without a finding routed to the GP

    clock.advance(30 * MIN)
    add_readings(db, measured, "spo2", [(clock() - MIN, 97)])
    engine.evaluate(clock(), [measured])
    resolved = alerts(db, patient_id=measured, rule="spo2_not_measuring")[0]
    assert (resolved["state"], resolved["outcome"]) == ("resolved", "auto_resolved")
    assert episodes(db, patient_id=measured)[0]["state"] == "resolved"
    assert alerts(db, patient_id=silent)[0]["state"] == "open"


def test_findings_of_two_protocols_opened_by_concurrent_engines_join_one_episode(
    db: psycopg.Connection, make_engine: MakeEngine, clock: ManualClock
) -> None:
    cohort = add_cohort(db, n_patients=3)
    for patient in cohort.patients:
        db.execute(
            "INSERT INTO patient_protocols (patient_id, protocol, started_at) "
            "VALUES (%s, 'hypertension', %s)",
            (patient, clock() - timedelta(days=30)),
        )
        add_readings(db, patient, "spo2", [(clock() - 9 * MIN, 90), (clock() - 2 * MIN, 89)])
        add_readings(db, patient, "systolic", [(clock() - 2 * MIN, 192)])
        add_readings(db, patient, "diastolic", [(clock() - 2 * MIN, 100)])

    engines = [make_engine() for _ in range(4)]
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def run(engine: Engine, patients: list[int]) -> None:
        try:
            start.wait()
            engine.evaluate(clock(), patients)
        except BaseException as exc:
            failures.append(exc)

    # Each engine takes the patients in another order, each protocol in its own transaction.
    orders = [cohort.patients, cohort.patients[::-1], cohort.patients[1:], cohort.patients[:1]]
    threads = [
        threading.Thread(target=run, args=pair) for pair in zip(engines, orders, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for patient in cohort.patients:
        [episode] = episodes(db, patient_id=patient)
        findings = alerts(db, patient_id=patient)
        assert sorted(a["rule"] for a in findings) == ["bp_severe", "spo2_low"]
        assert {a["episode_id"] for a in findings} == {episode["id"]}
        texted = [n for n in notifications(db) if n["episode_id"] == episode["id"]]
        assert sorted(n["recipient_kind"] for n in texted) == ["gp", "service_centre"]


def test_a_restarted_engine_resumes_the_debounce_state(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    spo2(db, make_engine(), clock, cohort.patient, 91)

    restarted = make_engine()
    restarted.evaluate(clock(), None)  # the same reading again: not counted twice
    restarted.evaluate(clock() + MIN, [cohort.patient])
    assert alerts(db) == []

    spo2(db, make_engine(), clock, cohort.patient, 90)  # the second reading confirms
    assert [a["severity"] for a in alerts(db)] == [2]


def test_a_gateways_backlog_counts_each_reading_and_opens_the_red_alert_at_once(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    # Amber, then red, measured an hour apart while the gateway was offline: stored together.
    add_readings(
        db, cohort.patient, "spo2", [(clock() - 2 * HOUR, 94), (clock() - HOUR, 91)], notify=True
    )
    make_engine().evaluate(clock(), [cohort.patient])
    [alert] = alerts(db)
    assert (alert["rule"], alert["severity"], alert["trigger_value"]) == ("spo2_low", 2, 91)
    assert events(db, alert["id"]) == ["opened"]


def test_a_backlog_with_one_reading_in_band_is_counted_once_across_restarts(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    add_readings(db, cohort.patient, "spo2", [(clock() - 2 * HOUR, 97), (clock() - 5 * MIN, 91)])
    make_engine().evaluate(clock(), [cohort.patient])
    # Restarted engines, the same readings: still one of two confirmations (within the 30 min
    # confirm timeout, after which it would open unconfirmed).
    for _ in range(3):
        clock.advance(5 * MIN)
        make_engine().evaluate(clock(), None)
    assert alerts(db) == []

    spo2(db, make_engine(), clock, cohort.patient, 90)  # the second reading in band
    assert [a["severity"] for a in alerts(db)] == [2]


def test_readings_before_a_resolution_by_hand_do_not_count_again(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    add_readings(db, cohort.patient, "spo2", [(clock() - 2 * HOUR, 93), (clock() - HOUR, 92)])
    engine.evaluate(clock(), None)
    [episode] = episodes(db)
    with db.transaction():
        act(
            db,
            episode["id"],
            "resolve",
            actor=cohort.gp_id,
            now=clock(),
            protocols=PROTOCOLS,
            outcome="reached",
        )
    engine.evaluate(clock() + MIN, None)
    # Still in band, but only readings after the resolution confirm a new alert.
    spo2(db, engine, clock, cohort.patient, 93)
    assert [a["state"] for a in alerts(db)] == ["resolved"]
    spo2(db, engine, clock, cohort.patient, 93.5)
    assert [a["state"] for a in alerts(db)] == ["resolved", "open"]
