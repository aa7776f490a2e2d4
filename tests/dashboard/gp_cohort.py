"""The GP list's cohort: the dashboard world's GP with five more patients, whose episodes the
real engine opens (amber, not measuring) and whose readings fall on known local days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
from psycopg.types.json import Jsonb

from telemon.metrics import METRICS
from tests.dashboard.conftest import SCENARIOS, World, add_readings, evaluate, refresh_rollup

ROME = ZoneInfo("Europe/Rome")


@dataclass(frozen=True)
class GpList:
    world: World
    amber: int  # an amber episode (the engine's, on the other GP scenario's readings)
    silent: int  # no reading for two days: the engine's "not measuring" task
    quiet: int  # nothing open
    hbp: int  # hypertension, readings on known days
    dm: int  # diabetes, readings on known days


def _patient(
    db: psycopg.Connection, world: World, code: str, name: str, protocol: str, enrolled: datetime
) -> int:
    given, family = name.split()
    patient = db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id, enrolled_at) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (code, given, family, world.staff["gp"], enrolled),
    ).fetchone()[0]
    db.execute(
        "INSERT INTO patient_protocols (patient_id, protocol, overrides, started_at) "
        "VALUES (%s, %s, %s, %s)",
        (patient, protocol, Jsonb({}), enrolled),
    )
    return patient


def noon(days_ago: int, now: datetime) -> datetime:
    """Local noon ``days_ago`` days before today (Europe/Rome), in UTC."""
    day = now.astimezone(ROME).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(12), ROME).astimezone(UTC)


def store(db: psycopg.Connection, patient: int, at: datetime, values: dict[str, float]) -> None:
    seq = db.execute("SELECT coalesce(max(seq), 0) FROM observations").fetchone()[0]
    for i, (metric, amount) in enumerate(values.items(), start=1):
        db.execute(
            "INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, "
            "seq) VALUES (%s, %s, %s, %s, 1, %s)",
            (at, patient, METRICS[metric].id, amount, seq + i),
        )


def seed_gp_list(world: World, db: psycopg.Connection) -> GpList:
    now = datetime.now(UTC)
    enrolled = now - timedelta(days=11)
    amber = _patient(db, world, "P-0011", "Carla Neri", "covid19_home_oximetry", enrolled)
    silent = _patient(db, world, "P-0012", "Bruno Gatti", "covid19_home_oximetry", enrolled)
    quiet = _patient(db, world, "P-0013", "Elena Villa", "covid19_home_oximetry", enrolled)
    hbp = _patient(db, world, "P-0014", "Marco Fontana", "hypertension", now - timedelta(days=40))
    # Diabetes since four days before today (local): five days asked for, today included.
    dm_start = datetime.combine(now.astimezone(ROME).date() - timedelta(days=4), time(0, 30), ROME)
    dm = _patient(db, world, "P-0015", "Sara Greco", "diabetes", dm_start.astimezone(UTC))
    # Quiet readings every 6 h for ten days; the silent patient's stop two days ago.
    for patient, last in ((amber, 24), (silent, 48), (quiet, 0)):
        for h in range(last, 240, 6):
            store(db, patient, now - timedelta(hours=h, minutes=5), {"spo2": 97, "pulse_rate": 80})
    refresh_rollup(db, now - timedelta(days=11), now)
    at = now - timedelta(minutes=30)
    for reading in SCENARIOS["other_gp"]:
        add_readings(db, amber, [reading], at)
        evaluate(db, at - timedelta(minutes=reading[1]), [amber])
    evaluate(db, now, [silent, quiet])
    # Hypertension: morning and evening on days 1, 2 and 3 ago, then days 10 and 20 ago.
    for days_ago in (1, 2, 3, 10, 20):
        for hours in (-4, 0):  # 08:00 and 12:00 local: one day either way
            store(
                db,
                hbp,
                noon(days_ago, now) + timedelta(hours=hours),
                {"systolic": 128, "diastolic": 80},
            )
    # Diabetes: glucose on days 1, 2 and 4 ago (its first day), twice on day 2.
    for days_ago, hours in ((1, 0), (2, 0), (2, 3), (4, 0)):
        store(db, dm, noon(days_ago, now) + timedelta(hours=hours), {"glucose": 110})
    refresh_rollup(db, now - timedelta(days=41), now)
    return GpList(world, amber, silent, quiet, hbp, dm)
