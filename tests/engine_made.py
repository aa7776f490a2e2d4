"""Findings made by the real engine over the demo's scenarios, for tests of what people read.

The demo's cohort is seeded as `telemon demo` seeds it; each patient's readings come from the
same physiology model and seed the demo's simulated fleet uses, stored as ingest stores them
(without the BLE and MQTT legs, which other tests cover); then the real alerts engine runs over
those days hour by hour, as its ticks would, opening findings and episodes and queueing SMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from alerts.engine import Engine
from console.cohort import Cohort, demo_cohort, seed
from console.discharged import seed_discharged
from console.history import FLEET_SEED, Row, simulated_rows, store_rows
from telemon.config import Settings

DUTY_PHONE = "+390212345678"


@dataclass(frozen=True, slots=True)
class EngineMade:
    cohort: Cohort
    patient_ids: dict[str, int]  # by code
    readings: int


def replay_demo(
    database_url: str,
    settings: Settings,
    *,
    now: datetime,
    days: int = 5,
    patients: int = 12,
    discharged: bool = False,
) -> EngineMade:
    """``discharged``: with the demo's discharged patient too (``console.discharged``)."""
    cohort = demo_cohort(patients)
    enrolled_at = now - timedelta(days=days)
    with psycopg.connect(database_url) as conn:
        seed(conn, cohort, service_centre_phone=DUTY_PHONE, enrolled_at=enrolled_at)
        ids = dict(conn.execute("SELECT code, id FROM patients").fetchall())
        gateways = dict(conn.execute("SELECT patient_id, id FROM gateways").fetchall())
        rows: list[Row] = []
        for index, patient in enumerate(cohort.patients):
            rows += simulated_rows(
                patient,
                ids[patient.code],
                gateways[ids[patient.code]],
                start=enrolled_at,
                end=now,
                seed=FLEET_SEED + index,
                first_seq=len(rows) + 1,
            )
        store_rows(conn, rows, enrolled_at, now)
        if discharged:
            # As `telemon demo` adds it: monitoring that ended before these days.
            seed_discharged(
                conn,
                cohort,
                before=enrolled_at,
                service_centre_phone=DUTY_PHONE,
                public_url=settings.public_url,
            )
            ids = dict(conn.execute("SELECT code, id FROM patients").fetchall())
    with psycopg.connect(database_url, autocommit=True) as conn:
        engine = Engine(conn, settings)
        at = enrolled_at
        while at <= now:
            engine.evaluate(at)
            at += timedelta(hours=1)
    return EngineMade(cohort, ids, len(rows))
