"""Clinical rules at their boundaries in the real database: the confirm timeout and the grace
before a new patient is "not measuring"."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from alerts.engine import ManualClock
from tests.alerts_engine.support import (
    DUTY_PHONE,
    GP_PHONE,
    MIN,
    Cohort,
    MakeEngine,
    add_readings,
    alerts,
    events,
    notifications,
    spo2,
)


def unconfirmed_state(db: psycopg.Connection, patient: int) -> bool | None:
    row = db.execute(
        "SELECT unconfirmed FROM alert_rule_state WHERE patient_id = %s AND rule = 'spo2_low'",
        (patient,),
    ).fetchone()
    return None if row is None else row[0]


def test_a_red_reading_never_repeated_opens_unconfirmed_at_the_tick_after_the_timeout(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    spo2(db, make_engine(), clock, cohort.patient, 90)  # measured a minute ago
    for _ in range(28):  # the service's tick, every minute, each from a restarted engine
        clock.advance(MIN)
        make_engine().evaluate(clock(), None)
    assert alerts(db) == []
    clock.advance(MIN)  # 30 minutes since the reading
    make_engine().evaluate(clock(), None)

    [alert] = alerts(db)
    assert (alert["rule"], alert["severity"], alert["state"]) == ("spo2_low", 2, "open")
    assert alert["trigger_value"] == 90 and alert["details"]["unconfirmed"] is True
    assert events(db, alert["id"]) == ["opened"]
    # Red: the GP and the duty phone hear of it, unconfirmed or not.
    assert sorted(n["to_address"] for n in notifications(db)) == sorted([GP_PHONE, DUTY_PHONE])
    assert unconfirmed_state(db, cohort.patient) is True

    # The next reading, in band, confirms it: the flag goes, nothing is sent again.
    spo2(db, make_engine(), clock, cohort.patient, 91)
    [alert] = alerts(db)
    assert "unconfirmed" not in alert["details"] and alert["state"] == "open"
    assert events(db, alert["id"]) == ["opened", "confirmed"]
    assert len(notifications(db)) == 2
    assert unconfirmed_state(db, cohort.patient) is False


def test_an_unconfirmed_finding_resolves_on_a_reading_out_of_band(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    add_readings(db, cohort.patient, "spo2", [(clock() - 31 * MIN, 91)])
    engine.evaluate(clock(), None)
    [alert] = alerts(db)
    assert alert["details"]["unconfirmed"] is True

    # 95 would hold a confirmed alert at amber (clear margin 1); an unconfirmed one resolves.
    spo2(db, engine, clock, cohort.patient, 95)
    [alert] = alerts(db)
    assert (alert["state"], alert["outcome"]) == ("resolved", "auto_resolved")
    assert events(db, alert["id"]) == ["opened", "auto_resolved"]
    assert unconfirmed_state(db, cohort.patient) is False


def test_a_second_reading_within_the_timeout_opens_a_confirmed_alert(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    spo2(db, engine, clock, cohort.patient, 90)
    spo2(db, engine, clock, cohort.patient, 90)  # ten minutes later
    clock.advance(timedelta(hours=1))
    engine.evaluate(clock(), None)
    [alert] = alerts(db)
    assert "unconfirmed" not in alert["details"]
    assert events(db, alert["id"])[0] == "opened" and "confirmed" not in events(db, alert["id"])
