"""Clinical rules at their boundaries in the real database: the confirm timeout and the grace
before a new patient is "not measuring"."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from alerts.engine import ManualClock
from telemon.findings import Threshold, parse_evidence
from telemon.reasons import describe
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
    # Red: the GP and the duty phone hear of it, unconfirmed or not, and read that it is.
    assert sorted(n["to_address"] for n in notifications(db)) == sorted([GP_PHONE, DUTY_PHONE])
    assert unconfirmed_state(db, cohort.patient) is True
    evidence = parse_evidence(alert["details"]["evidence"])
    assert isinstance(evidence, Threshold)
    assert (evidence.unconfirmed, evidence.confirm_timeout_s) == (True, 1800)
    assert describe(evidence, "it") == (
        "SpO2 90 % (≤ 92 %), non confermata (nessuna seconda misura entro 30 min)"
    )
    assert all("non confermata" in n["body"] for n in notifications(db))

    # The next reading, in band, confirms it: the flag goes, nothing is sent again.
    spo2(db, make_engine(), clock, cohort.patient, 91)
    [alert] = alerts(db)
    assert alert["details"]["unconfirmed"] is False and alert["state"] == "open"
    assert not parse_evidence(alert["details"]["evidence"]).unconfirmed
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


def enrol_now(db: psycopg.Connection, cohort: Cohort, clock: ManualClock) -> int:
    """A second patient of the cohort's GP, enrolled in the COVID protocol at ``clock()``."""
    patient_id = db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id, enrolled_at) "
        "VALUES ('P-NEW', 'Luca', 'Verdi', %s, %s) RETURNING id",
        (cohort.gp_id, clock()),
    ).fetchone()[0]
    db.execute(
        "INSERT INTO patient_protocols (patient_id, protocol, started_at) "
        "VALUES (%s, 'covid19_home_oximetry', %s)",
        (patient_id, clock()),
    )
    return patient_id


def test_a_patient_enrolled_a_minute_ago_is_not_measuring_only_once_a_reading_was_due(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    patient = enrol_now(db, cohort, clock)
    engine = make_engine()
    clock.advance(MIN)
    engine.evaluate(clock(), None)
    assert alerts(db, patient_id=patient) == []
    # CO@h: a reading every 8 h, 4 h of grace; amber once two sessions are missing (20 h).
    clock.advance(timedelta(hours=20) - MIN)
    engine.evaluate(clock(), None)
    assert alerts(db, patient_id=patient) == []
    clock.advance(MIN)
    engine.evaluate(clock(), None)
    [task] = alerts(db, patient_id=patient)
    assert (task["kind"], task["rule"], task["severity"]) == (
        "not_measuring",
        "spo2_not_measuring",
        1,
    )
    assert task["trigger_value"] == 20 + 1 / 60  # hours since the enrolment started
    # The patient of thirty days ago, who never measured, is red as before.
    [old] = alerts(db, patient_id=cohort.patient)
    assert old["severity"] == 2


def test_a_first_reading_in_time_leaves_no_task(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    patient = enrol_now(db, cohort, clock)
    engine = make_engine()
    clock.advance(timedelta(hours=5))
    add_readings(db, patient, "spo2", [(clock(), 97)])
    clock.advance(timedelta(hours=10))
    engine.evaluate(clock(), None)
    assert alerts(db, patient_id=patient) == []
