"""Helpers for the alerts engine tests: a cohort, readings as ingest stores them, queries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import psycopg
from psycopg.rows import dict_row

from alerts.engine import Engine, ManualClock
from alerts.episodes import act
from alerts.protocol import load_protocols
from telemon.metrics import METRICS
from telemon.store.notify import notify_new_observations

GP_PHONE = "+393331112222"
DUTY_PHONE = "+390212345678"
SENDER_NUMBER = "+15005550006"
# Tuesday 10 March 2026, 10:00 in Rome: nobody's quiet hours.
MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
PROTOCOLS = load_protocols()
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)

MakeEngine = Callable[[], Engine]


@dataclass(frozen=True, slots=True)
class Cohort:
    gp_id: int
    centre_id: int
    patients: list[int]

    @property
    def patient(self) -> int:
        return self.patients[0]


def add_cohort(
    db: psycopg.Connection, n_patients: int = 1, protocol: str = "covid19_home_oximetry"
) -> Cohort:
    gp_id = db.execute(
        "INSERT INTO staff (username, display_name, role, phone) "
        "VALUES ('dr.bianchi', 'Dr. Bianchi', 'gp', %s) RETURNING id",
        (GP_PHONE,),
    ).fetchone()[0]
    centre_id = db.execute(
        "INSERT INTO care_teams (name, kind, duty_phone) "
        "VALUES ('Centrale operativa', 'service_centre', %s) RETURNING id",
        (DUTY_PHONE,),
    ).fetchone()[0]
    patients = []
    for i in range(n_patients):
        patient_id = db.execute(
            "INSERT INTO patients (code, given_name, family_name, gp_id, enrolled_at) "
            "VALUES (%s, 'Maria', 'Rossi', %s, %s) RETURNING id",
            (f"P-{i:04d}", gp_id, MORNING - timedelta(days=30)),
        ).fetchone()[0]
        db.execute(
            "INSERT INTO patient_protocols (patient_id, protocol, started_at) VALUES (%s, %s, %s)",
            (patient_id, protocol, MORNING - timedelta(days=30)),
        )
        patients.append(patient_id)
    return Cohort(gp_id, centre_id, patients)


Reading = tuple[datetime, float] | tuple[datetime, float, Sequence[str]]


def add_readings(
    db: psycopg.Connection,
    patient_id: int,
    metric: str,
    readings: Sequence[Reading],
    *,
    notify: bool = False,
) -> None:
    """Store readings as ingest does, optionally with its NOTIFY in the same transaction."""
    times = [r[0] for r in readings]
    with db.transaction():
        db.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (min(times), max(times)))
        seq = db.execute("SELECT count(*) FROM observations").fetchone()[0]
        for i, reading in enumerate(readings):
            flags = list(reading[2]) if len(reading) > 2 else None
            db.execute(
                "INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, "
                "seq, flags) VALUES (%s, %s, %s, %s, 1, %s, %s)",
                (reading[0], patient_id, METRICS[metric].id, reading[1], seq + i + 1, flags),
            )
        if notify:
            notify_new_observations(db, [patient_id])


def spo2(
    db: psycopg.Connection, engine: Engine, clock: ManualClock, patient: int, value: float
) -> None:
    """One new reading a minute ago, then an evaluation of that patient, as after a NOTIFY."""
    clock.advance(10 * MIN)
    add_readings(db, patient, "spo2", [(clock() - MIN, value)])
    engine.evaluate(clock(), [patient])


def set_quiet_hours(db: psycopg.Connection, staff_id: int, start: time, end: time) -> None:
    db.execute(
        "UPDATE staff SET quiet_hours_start = %s, quiet_hours_end = %s WHERE id = %s",
        (start, end, staff_id),
    )


def acknowledge(db: psycopg.Connection, episode_id: int, staff_id: int, clock: ManualClock) -> None:
    """What the dashboard does when a clinician takes charge of an episode."""
    with db.transaction():
        act(db, episode_id, "acknowledge", actor=staff_id, now=clock(), protocols=PROTOCOLS)


def episodes(db: psycopg.Connection, **where: object) -> list[dict]:
    clause = " AND ".join(f"{column} = %s" for column in where) or "true"
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT * FROM episodes WHERE {clause} ORDER BY id", tuple(where.values())
        ).fetchall()


def episode_events(db: psycopg.Connection, episode_id: int) -> list[str]:
    """The episode's own story: not the queueing, sending and delivery of its SMS."""
    rows = db.execute(
        "SELECT kind FROM episode_events WHERE episode_id = %s AND kind NOT LIKE 'notif%%' "
        "ORDER BY id",
        (episode_id,),
    ).fetchall()
    return [row[0] for row in rows]


def alerts(db: psycopg.Connection, **where: object) -> list[dict]:
    clause = " AND ".join(f"{column} = %s" for column in where) or "true"
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT * FROM alerts WHERE {clause} ORDER BY id", tuple(where.values())
        ).fetchall()


def notifications(db: psycopg.Connection) -> list[dict]:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM notifications ORDER BY id").fetchall()


def events(db: psycopg.Connection, alert_id: int) -> list[str]:
    rows = db.execute(
        # The finding's own story.
        "SELECT kind FROM alert_events WHERE alert_id = %s AND kind NOT LIKE 'notif%%' ORDER BY id",
        (alert_id,),
    ).fetchall()
    return [row[0] for row in rows]
