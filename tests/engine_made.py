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
from firmware_sim.home import PROTOCOL_CONDITIONS
from firmware_sim.physiology import PatientModel, PatientProfile
from firmware_sim.scenarios import get_scenario
from telemon.config import Settings
from telemon.device_kinds import DeviceKind
from telemon.metrics import METRICS

DUTY_PHONE = "+390212345678"
FLEET_SEED = 1  # SimulatedFleet's default: patient n's model is seeded with FLEET_SEED + n


@dataclass(frozen=True, slots=True)
class EngineMade:
    cohort: Cohort
    patient_ids: dict[str, int]  # by code
    readings: int


def replay_demo(
    database_url: str, settings: Settings, *, now: datetime, days: int = 5, patients: int = 12
) -> EngineMade:
    cohort = demo_cohort(patients)
    enrolled_at = now - timedelta(days=days)
    with psycopg.connect(database_url) as conn:
        seed(conn, cohort, service_centre_phone=DUTY_PHONE, enrolled_at=enrolled_at)
        ids = dict(conn.execute("SELECT code, id FROM patients").fetchall())
        gateways = dict(conn.execute("SELECT patient_id, id FROM gateways").fetchall())
        conn.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (enrolled_at, now))
        rows = []
        for index, patient in enumerate(cohort.patients):
            profile = PatientProfile(
                patient_id=patient.code,
                conditions=frozenset({PROTOCOL_CONDITIONS[patient.protocol]}),
                enrolled_at=enrolled_at,
                devices=frozenset(DeviceKind(kind) for _, kind in patient.devices),
            )
            model = PatientModel(profile, get_scenario(patient.scenario), FLEET_SEED + index)
            for reading in model.measurements(enrolled_at, now):
                if reading.delivered_at is None or reading.delivered_at > now:
                    continue  # lost, or still in the device's memory
                for metric, value in reading.values.items():
                    rows.append(
                        (
                            reading.measured_at,
                            ids[patient.code],
                            METRICS[metric].id,
                            value,
                            gateways[ids[patient.code]],
                            len(rows) + 1,
                            list(reading.flags) or None,
                        )
                    )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY observations (measured_at, patient_id, metric_id, value, gateway_id, seq, "
                "flags) FROM STDIN"
            ) as copy,
        ):
            for row in rows:
                copy.write_row(row)
        # The hourly rollup the GP list and the long charts read, as ingest's housekeeping
        # refreshes it after a write (the replay stores without ingest's queue).
        conn.execute(
            "SELECT telemon_refresh_observation_hourly(%s, %s)",
            (enrolled_at, now + timedelta(hours=1)),
        )
    with psycopg.connect(database_url, autocommit=True) as conn:
        engine = Engine(conn, settings)
        at = enrolled_at
        while at <= now:
            engine.evaluate(at)
            at += timedelta(hours=1)
    return EngineMade(cohort, ids, len(rows))
