"""A demo patient's past readings, from the simulated homes' own physiology model.

The same model and seed the demo's simulated fleet gives each patient (``SimulatedFleet``:
patient n's model is seeded with ``FLEET_SEED + n``), stored as ingest stores readings, without
the radio and MQTT legs: for days the demo does not replay live (a patient discharged before
them, ``console.discharged``) and for the tests that replay the demo through the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import psycopg

from console.cohort import DemoPatient
from firmware_sim.home import PROTOCOL_CONDITIONS
from firmware_sim.physiology import PatientModel, PatientProfile
from firmware_sim.scenarios import get_scenario
from telemon.device_kinds import DeviceKind
from telemon.metrics import METRICS

FLEET_SEED = 1  # SimulatedFleet's default

Row = tuple[datetime, int, int, float, int, int, list[str] | None]


def simulated_rows(
    patient: DemoPatient,
    patient_id: int,
    gateway_id: int,
    *,
    start: datetime,
    end: datetime,
    seed: int,
    first_seq: int = 1,
) -> list[Row]:
    """The readings the patient's gateway delivered in [start, end): ``observations`` rows."""
    profile = PatientProfile(
        patient_id=patient.code,
        conditions=frozenset({PROTOCOL_CONDITIONS[patient.protocol]}),
        enrolled_at=start,
        devices=frozenset(DeviceKind(kind) for _, kind in patient.devices),
    )
    model = PatientModel(profile, get_scenario(patient.scenario), seed)
    rows: list[Row] = []
    for reading in model.measurements(start, end):
        if reading.delivered_at is None or reading.delivered_at > end:
            continue  # lost, or still in the device's memory
        for metric, value in reading.values.items():
            rows.append(
                (
                    reading.measured_at,
                    patient_id,
                    METRICS[metric].id,
                    value,
                    gateway_id,
                    first_seq + len(rows),
                    list(reading.flags) or None,
                )
            )
    return rows


def store_rows(
    conn: psycopg.Connection, rows: Iterable[Row], start: datetime, end: datetime
) -> None:
    """Store readings of [start, end] with one COPY, and refresh the hourly rollup the GP list,
    the long charts and the reports read, as ingest's housekeeping does after a write."""
    conn.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (start, end))
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY observations (measured_at, patient_id, metric_id, value, gateway_id, seq, "
            "flags) FROM STDIN"
        ) as copy,
    ):
        for row in rows:
            copy.write_row(row)
    conn.execute(
        "SELECT telemon_refresh_observation_hourly(%s, %s)", (start, end + timedelta(hours=1))
    )
