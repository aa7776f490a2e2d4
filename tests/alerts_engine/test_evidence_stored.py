"""The engine keeps each finding's evidence with its alert, in the real database."""

from __future__ import annotations

from datetime import datetime

import psycopg

from alerts.engine import ManualClock
from telemon.findings import Missing, Threshold, parse_evidence
from tests.alerts_engine.support import (
    HOUR,
    MIN,
    Cohort,
    MakeEngine,
    add_cohort,
    alerts,
    episodes,
    spo2,
)


def event_evidence(db: psycopg.Connection, alert_id: int) -> list[tuple[str, dict | None]]:
    rows = db.execute(
        "SELECT kind, details->'evidence' FROM alert_events WHERE alert_id = %s "
        "AND kind NOT LIKE 'notif%%' ORDER BY id",
        (alert_id,),
    ).fetchall()
    return [(kind, evidence) for kind, evidence in rows]


def spo2_finding(level: int, value: float, threshold: float, at: datetime, run: list[datetime]):
    return Threshold(
        rule="spo2_low",
        protocol="covid19_home_oximetry",
        level=level,
        at=at,
        metric="spo2",
        value=value,
        values={"spo2": value},
        op="<=",
        threshold=threshold,
        confirmed_by=len(run),
        confirm_span_s=int((run[-1] - run[0]).total_seconds()),
    )


def test_evidence_is_stored_on_open_and_replaced_on_worsen_and_downgrade(
    db: psycopg.Connection, cohort: Cohort, make_engine: MakeEngine, clock: ManualClock
) -> None:
    engine = make_engine()
    taken = []
    for value in (93, 93.5):
        spo2(db, engine, clock, cohort.patient, value)
        taken.append(clock() - MIN)

    [alert] = alerts(db)
    opened = spo2_finding(1, 93.5, 94, taken[-1], taken)
    assert alert["severity"] == 1
    assert parse_evidence(alert["details"]["evidence"]) == opened
    assert alert["details"]["rule_title"] == "Low oxygen saturation"

    spo2(db, engine, clock, cohort.patient, 91)
    taken.append(clock() - MIN)
    [alert] = alerts(db)
    # The amber readings before it are not at or below 92: the red finding rests on one.
    worse = spo2_finding(2, 91, 92, taken[-1], taken[-1:])
    assert alert["severity"] == 2
    assert parse_evidence(alert["details"]["evidence"]) == worse
    assert alert["details"]["rule_title"] == "Low oxygen saturation"  # the rest is kept

    spo2(db, engine, clock, cohort.patient, 94.5)  # in range, but within the clear margin
    [alert] = alerts(db)
    held = spo2_finding(1, 94.5, 94, clock() - MIN, [clock() - MIN])
    assert (alert["severity"], alert["state"]) == (1, "open")
    assert parse_evidence(alert["details"]["evidence"]) == held

    # An escalation is the episode's: it changes nothing the finding rests on.
    clock.advance(2 * HOUR)
    engine.evaluate(clock(), [cohort.patient])
    [alert] = alerts(db)
    assert episodes(db)[0]["state"] == "escalated"
    assert parse_evidence(alert["details"]["evidence"]) == held

    history = event_evidence(db, alert["id"])
    assert [kind for kind, _ in history] == ["opened", "worsened", "downgraded"]
    assert [e and parse_evidence(e) for _, e in history] == [opened, worse, held]


def test_a_never_measured_patient_opens_a_task_saying_so(
    db: psycopg.Connection, make_engine: MakeEngine, clock: ManualClock
) -> None:
    cohort = add_cohort(db, protocol="heart_failure")
    make_engine().evaluate(clock(), [cohort.patient])
    [alert] = alerts(db)
    assert (alert["rule"], alert["kind"]) == ("weight_not_measuring", "not_measuring")
    assert parse_evidence(alert["details"]["evidence"]) == Missing(
        rule="weight_not_measuring",
        protocol="heart_failure",
        level=2,
        at=clock(),
        metric="body_weight",
        hours=30 * 24,  # no reading since the enrolment started, 30 days ago
        op=">",
        threshold=72,
        expected_every_s=86400,
    )
