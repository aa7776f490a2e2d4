"""The alert lifecycle end to end in the real database: readings in, alerts and SMS rows out."""

from __future__ import annotations

import threading
from datetime import timedelta

import psycopg

from alerts.engine import Engine, ManualClock
from alerts.engine.decide import Action
from alerts.engine.lifecycle import Applied, RuleContext, apply_actions
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
    events,
    notifications,
    spo2,
)


def test_red_spo2_opens_one_alert_with_sms_rows_for_gp_and_centre(
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
    rows = notifications(db)
    assert sorted((n["recipient_kind"], n["to_address"]) for n in rows) == [
        ("gp", GP_PHONE),
        ("service_centre", DUTY_PHONE),
    ]
    assert all(n["status"] == "pending" for n in rows)


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
    assert len(notifications(db)) == 2


def test_the_database_refuses_a_second_open_alert_when_engine_states_disagree(
    db: psycopg.Connection, cohort: Cohort, settings: Settings
) -> None:
    rule = PROTOCOLS["covid19_home_oximetry"].rule("spo2_low")
    context = RuleContext(
        "covid19_home_oximetry", rule, __import__("numpy").array([cohort.patient])
    )
    action = Action("open", 0, None, 2, 90.0, int(MORNING.timestamp()), "spo2:red", 0)
    results = []
    for _ in range(2):
        applied = Applied()
        with db.transaction():
            apply_actions(db, context, [action], settings, int(MORNING.timestamp()), applied)
        results.append((applied.opened, applied.conflicts, applied.notifications))
    assert results == [(1, 0, 2), (0, 1, 0)]
    assert len(alerts(db)) == 1


def test_hysteresis_holds_the_alert_then_it_downgrades_and_resolves_with_margin(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (91, 90):
        spo2(db, engine, clock, cohort.patient, value)
    # Around the red threshold (92) but within the clear margin (1): the alert stays red.
    for value in (93, 92, 93, 91.5, 93):
        spo2(db, engine, clock, cohort.patient, value)
        engine.evaluate(clock(), None)
    [alert] = alerts(db)
    assert (alert["severity"], alert["state"]) == (2, "open")
    assert events(db, alert["id"]) == ["opened"]

    spo2(db, engine, clock, cohort.patient, 94)  # out of red with margin, amber held
    assert alerts(db)[0]["severity"] == 1
    spo2(db, engine, clock, cohort.patient, 95)  # amber band is <= 94, held up to 95
    assert alerts(db)[0]["state"] != "resolved"
    spo2(db, engine, clock, cohort.patient, 96)

    [alert] = alerts(db)
    assert (alert["state"], alert["outcome"]) == ("resolved", "auto_resolved")
    assert alert["resolved_by"] is None and alert["resolved_at"] == clock()
    # Unacknowledged for over an hour on the way, so it was escalated too.
    assert events(db, alert["id"]) == ["opened", "downgraded", "escalated", "auto_resolved"]
    actors = db.execute("SELECT DISTINCT actor_id FROM alert_events").fetchall()
    assert actors == [(None,)]
    kinds = sorted(n["idempotency_key"].rsplit(":", 1)[1] for n in notifications(db))
    assert kinds == ["escalated", "opened", "opened"]  # downgrades, resolutions: no SMS


def test_unacknowledged_alert_escalates_after_the_rule_time(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (91, 90):
        spo2(db, engine, clock, cohort.patient, value)
    [alert] = alerts(db)

    clock.advance(59 * MIN)  # escalate_after is 1 h
    engine.evaluate(clock(), None)
    assert alerts(db)[0]["state"] == "open"

    clock.advance(MIN)
    engine.evaluate(clock(), None)
    [alert] = alerts(db)
    assert (alert["state"], alert["escalated_at"]) == ("escalated", clock())
    assert events(db, alert["id"]) == ["opened", "escalated"]
    escalation = [n for n in notifications(db) if n["idempotency_key"].endswith(":escalated")]
    assert [(n["recipient_kind"], n["to_address"]) for n in escalation] == [("gp", GP_PHONE)]


def test_acknowledged_alert_is_not_renotified_within_snooze_but_worse_breaks_it(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (94, 93):
        spo2(db, engine, clock, cohort.patient, value)
    [alert] = alerts(db)
    assert alert["severity"] == 1 and notifications(db) == []  # amber waits in the queue
    acknowledge(db, alert["id"], cohort.gp_id, clock)

    # Amber readings for three hours, well past escalate_after (1 h): still silent.
    for _ in range(18):
        spo2(db, engine, clock, cohort.patient, 93.5)
        engine.evaluate(clock(), None)
    [alert] = alerts(db)
    assert alert["state"] == "acknowledged"
    assert events(db, alert["id"]) == ["opened"]
    assert notifications(db) == []

    spo2(db, engine, clock, cohort.patient, 90)  # worse: red
    [alert] = alerts(db)
    assert (alert["severity"], alert["state"], alert["snoozed_until"]) == (2, "open", None)
    assert events(db, alert["id"]) == ["opened", "worsened"]
    worsened = {
        (n["recipient_kind"], n["idempotency_key"].rsplit(":", 1)[1]) for n in notifications(db)
    }
    assert worsened == {("gp", "worsened"), ("service_centre", "worsened")}


def test_lapsed_snooze_reminds_the_gp(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    for value in (91, 90):
        spo2(db, engine, clock, cohort.patient, value)
    [alert] = alerts(db)
    acknowledge(db, alert["id"], cohort.gp_id, clock)
    clock.advance(3 * timedelta(hours=1))
    engine.evaluate(clock(), None)
    assert alerts(db)[0]["state"] == "acknowledged"
    clock.advance(timedelta(hours=1))
    engine.evaluate(clock(), None)
    assert alerts(db)[0]["state"] == "open"
    assert events(db, alert["id"]) == ["opened", "snooze_expired"]
    assert [n["recipient_kind"] for n in notifications(db)][-1] == "gp"


def test_not_measuring_task_opens_without_sms_and_resolves_when_data_arrives(
    db: psycopg.Connection, make_engine: MakeEngine, clock: ManualClock
) -> None:
    cohort = add_cohort(db, n_patients=2)
    measured, silent = cohort.patients
    add_readings(db, measured, "spo2", [(clock() - timedelta(hours=13), 97)])
    engine = make_engine()
    engine.evaluate(clock(), None)

    tasks = {a["patient_id"]: a for a in alerts(db, rule="spo2_not_measuring")}
    assert {p: (a["kind"], a["severity"]) for p, a in tasks.items()} == {
        measured: ("not_measuring", 1),  # > 12 h
        silent: ("not_measuring", 2),  # never measured
    }
    assert tasks[measured]["trigger_value"] == 13.0
    assert notifications(db) == []  # a task for the service centre, never an SMS

    clock.advance(30 * MIN)
    add_readings(db, measured, "spo2", [(clock() - MIN, 97)])
    engine.evaluate(clock(), [measured])
    resolved = alerts(db, patient_id=measured, rule="spo2_not_measuring")[0]
    assert (resolved["state"], resolved["outcome"]) == ("resolved", "auto_resolved")
    assert alerts(db, patient_id=silent)[0]["state"] == "open"


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
    [alert] = alerts(db)
    db.execute(
        "UPDATE alerts SET state = 'resolved', resolved_by = %s, resolved_at = %s, "
        "outcome = 'reached' WHERE id = %s",
        (cohort.gp_id, clock(), alert["id"]),
    )
    engine.evaluate(clock() + MIN, None)
    # Still in band, but only readings after the resolution confirm a new alert.
    spo2(db, engine, clock, cohort.patient, 93)
    assert [a["state"] for a in alerts(db)] == ["resolved"]
    spo2(db, engine, clock, cohort.patient, 93.5)
    assert [a["state"] for a in alerts(db)] == ["resolved", "open"]
