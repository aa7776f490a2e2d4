"""The alert-quality store: people as the dashboard enrols them, readings as ingest writes them.

One GP per ~30 patients (each with a phone), a service centre with a duty phone and a nurse,
each patient with a gateway and a protocol started at enrolment. The cohort's readings are
generated once, in time order, as the rows ingest COPYs into ``observations``; the replay
writes them step by step, so that the engine sees each one as it would have arrived.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg

from bench._quality_cohort import BenchPatient
from ingest.store import COPY_OBSERVATIONS, COPY_TYPES
from telemon.metrics import METRICS
from telemon.store.migrate import migrate

PATIENTS_PER_GP = 30
DUTY_PHONE = "+390212345678"
# The tables the engine, the sender and the nurse write: emptied between two runs.
ALERT_TABLES = (
    "alert_rule_state",
    "alert_events",
    "episode_events",
    "notifications",
    "alerts",
    "episodes",
)


@dataclass(frozen=True, slots=True)
class People:
    patient_ids: dict[str, int]  # by patient code
    gateway_ids: dict[str, int]  # by patient code
    nurse_id: int


@dataclass(frozen=True, slots=True)
class Readings:
    """Every stored row in time order, and per row the epoch second and the patient."""

    rows: list[tuple[object, ...]]  # in ingest's COPY_OBSERVATIONS column order
    t: np.ndarray  # float64 epoch seconds of measured_at
    patient: np.ndarray  # int64 patient ids

    def __len__(self) -> int:
        return len(self.rows)


def enrol(url: str, cohort: Sequence[BenchPatient], start: datetime, end: datetime) -> People:
    """Migrate the database and insert the people; partitions cover [start, end]."""
    with psycopg.connect(url) as conn:
        migrate(conn)
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        centre = conn.execute(
            "INSERT INTO care_teams (name, kind, duty_phone) "
            "VALUES ('Centrale servizi', 'service_centre', %s) RETURNING id",
            (DUTY_PHONE,),
        ).fetchone()[0]
        nurse = conn.execute(
            "INSERT INTO staff (username, display_name, role, phone) "
            "VALUES ('nurse.bench', 'Inf. Bench', 'nurse', '+393330009000') RETURNING id"
        ).fetchone()[0]
        conn.execute("INSERT INTO care_team_members VALUES (%s, %s)", (centre, nurse))
        gps = [
            conn.execute(
                "INSERT INTO staff (username, display_name, role, phone) "
                "VALUES (%s, %s, 'gp', %s) RETURNING id",
                (f"dr.bench{g:03d}", f"Dr Bench {g}", f"+39333{g:07d}"),
            ).fetchone()[0]
            for g in range(max(1, math.ceil(len(cohort) / PATIENTS_PER_GP)))
        ]
        ids: dict[str, int] = {}
        gateways: dict[str, int] = {}
        for n, patient in enumerate(cohort):
            pid = conn.execute(
                "INSERT INTO patients (code, given_name, family_name, gp_id, care_team_id, "
                "enrolled_at) VALUES (%s, 'Anna', 'Verdi', %s, %s, %s) RETURNING id",
                (patient.code, gps[n % len(gps)], centre, patient.enrolled_at),
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO patient_protocols (patient_id, protocol, started_at) "
                "VALUES (%s, %s, %s)",
                (pid, patient.protocol, patient.enrolled_at),
            )
            gateways[patient.code] = conn.execute(
                "INSERT INTO gateways (code, patient_id) VALUES (%s, %s) RETURNING id",
                (f"gw-{patient.code}", pid),
            ).fetchone()[0]
            ids[patient.code] = pid
        conn.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (start, end))
    return People(ids, gateways, nurse)


def generate(
    cohort: Sequence[BenchPatient], people: People, start: datetime, end: datetime
) -> Readings:
    """Every reading the cohort's devices take in [start, end), as ingest's rows, in time order.

    All devices are in range in these scenarios, so a reading arrives when it is taken.
    """
    stamped: list[tuple[float, int, tuple[object, ...]]] = []
    for patient in cohort:
        pid = people.patient_ids[patient.code]
        gateway = people.gateway_ids[patient.code]
        seq = 0
        for m in patient.model.measurements(start, end):
            flags = list(m.flags) or None
            t = m.measured_at.timestamp()
            for metric, value in m.values.items():
                seq += 1
                row = (
                    m.measured_at,
                    pid,
                    METRICS[metric].id,
                    value,
                    gateway,
                    seq,
                    None,
                    m.delivered_at,
                    flags,
                    None,
                    None,  # time_correction: the replay's stamps are the cohort's own
                    None,  # identifier: each replayed reading is stored once, by construction
                )
                stamped.append((t, pid, row))
    stamped.sort(key=lambda s: (s[0], s[1]))
    return Readings(
        rows=[s[2] for s in stamped],
        t=np.array([s[0] for s in stamped], dtype=np.float64),
        patient=np.array([s[1] for s in stamped], dtype=np.int64),
    )


def store_rows(conn: psycopg.Connection, rows: Sequence[tuple[object, ...]]) -> None:
    """COPY rows into ``observations`` as ingest does, in one transaction."""
    with conn.transaction(), conn.cursor() as cur, cur.copy(COPY_OBSERVATIONS) as copy:
        copy.set_types(COPY_TYPES)
        for row in rows:
            copy.write_row(row)


def reset(conn: psycopg.Connection) -> None:
    """Forget every reading and everything the engine, the sender and people did."""
    tables = ", ".join(("observations", *ALERT_TABLES))
    conn.execute(f"TRUNCATE {tables} RESTART IDENTITY")
