"""The dashboard bench's cooperative: people, 90 days of readings, and what the engine made of them.

GPs with ``per_gp`` patients each, service centres of ``per_centre`` patients with nurses of their
own, one protocol per patient in bench/alerts.py's mix and at its rates (about 11 readings a
patient-day: 10 M over 90 days for 10,000 patients). One patient in eight deteriorates once, on
a day spread over the period: the protocol's vitals drift over two days and come back two days
later. The readings are generated inside the database (bulk, indexes built once), the hourly
rollup refreshed as ingest's housekeeping does, then the real alerts engine runs over the period
pass by pass, with a nurse who resolves what has been open a day, as a service centre would.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from alerts.engine import Engine
from alerts.episodes import act
from alerts.lifecycle import TransitionNotAllowed
from alerts.notify import Sender
from alerts.protocol import load_protocols
from bench.alerts import MIX, PER_DAY, TYPICAL
from dashboard.accounts import hash_password
from telemon.config import Settings
from telemon.metrics import METRICS

PASSWORD = "bench-dashboard-password"
SETTINGS = Settings(public_url="http://bench", language="en")
DETERIORATING_EVERY = 8  # one patient in eight
# How far a deterioration takes each vital at its worst (clinically: desaturation, tachycardia,
# fever, hypertensive crisis, fluid gain, hypoglycaemia).
DRIFT = {
    "spo2": -7.0,
    "pulse_rate": 22.0,
    "body_temperature": 1.4,
    "respiratory_rate": 8.0,
    "systolic": 48.0,
    "diastolic": 28.0,
    "body_weight": 3.2,
    "glucose": -100.0,
}
NURSE_RESOLVES_AFTER = timedelta(hours=24)
# bench/alerts.py's typical values, with saturation and home blood pressure where treated
# patients at home keep them: its 95.5 % and 135/82 open a finding for most patients each week.
USUAL = TYPICAL | {"spo2": (97.0, 1.5), "systolic": (128.0, 12.0), "diastolic": (78.0, 8.0)}


@dataclass(frozen=True, slots=True)
class People:
    gp_usernames: list[str]
    nurse_usernames: list[str]


def enrol(
    conn: psycopg.Connection, *, patients: int, per_gp: int, per_centre: int, start: datetime
) -> People:
    """Staff (one password hash for all), centres, patients and their protocols."""
    password = hash_password(PASSWORD)
    gps = max(1, math.ceil(patients / per_gp))
    centres = max(1, math.ceil(patients / per_centre))
    gp_ids = [
        conn.execute(
            "INSERT INTO staff (username, display_name, role, phone, password_hash) "
            "VALUES (%s, %s, 'gp', %s, %s) RETURNING id",
            (f"dr.bench{g:03d}", f"Dr Bench {g}", f"+39333{g:07d}", password),
        ).fetchone()[0]
        for g in range(gps)
    ]
    centre_ids, nurses = [], []
    for c in range(centres):
        centre = conn.execute(
            "INSERT INTO care_teams (name, kind, duty_phone) "
            "VALUES (%s, 'service_centre', '+390212345678') RETURNING id",
            (f"Centrale {c}",),
        ).fetchone()[0]
        centre_ids.append(centre)
        for n in range(2):
            username = f"nurse.bench{c:02d}{n}"
            nurse = conn.execute(
                "INSERT INTO staff (username, display_name, role, phone, password_hash) "
                "VALUES (%s, %s, 'nurse', '+393330009000', %s) RETURNING id",
                (username, f"Inf. Bench {c}.{n}", password),
            ).fetchone()[0]
            conn.execute("INSERT INTO care_team_members VALUES (%s, %s)", (centre, nurse))
            nurses.append(username)
    # Patient n: GP n // per_gp, centre n // per_centre, so each GP's list is whole.
    conn.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id, care_team_id, enrolled_at) "
        "SELECT 'B' || n, 'Anna', 'Verdi' || n, (%(gps)s::bigint[])[1 + n / %(per_gp)s], "
        "(%(centres)s::bigint[])[1 + n / %(per_centre)s], %(start)s "
        "FROM generate_series(0, %(patients)s - 1) n",
        {
            "gps": gp_ids,
            "per_gp": per_gp,
            "centres": centre_ids,
            "per_centre": per_centre,
            "start": start,
            "patients": patients,
        },
    )
    # Protocols interleaved by patient, in the mix's proportions: every GP has each of them.
    keys = [key for key, share in MIX.items() for _ in range(round(share * 20))]
    conn.execute(
        "INSERT INTO patient_protocols (patient_id, protocol, started_at) "
        "SELECT id, (%s::text[])[1 + id %% %s], %s FROM patients",
        (keys, len(keys), start),
    )
    return People(
        [f"dr.bench{g:03d}" for g in range(gps)],
        nurses,
    )


def store_readings(conn: psycopg.Connection, *, start: datetime, now: datetime) -> int:
    """Every patient's readings from ``start`` to ``now``; returns how many were stored."""
    protocols = load_protocols()
    conn.execute(
        "CREATE TEMP TABLE bench_needs (protocol text, metric_id smallint, per_day int, "
        "mean float8, spread float8, drift float8)"
    )
    for key, protocol in protocols.items():
        for metric in sorted({m for rule in protocol.rules for m in rule.metrics}):
            mean, spread = USUAL.get(metric, (0.0, 1.0))
            conn.execute(
                "INSERT INTO bench_needs VALUES (%s, %s, %s, %s, %s, %s)",
                (key, METRICS[metric].id, PER_DAY.get(metric, 3), mean, spread, DRIFT[metric]),
            )
    conn.execute(
        "SELECT telemon_ensure_observation_partitions(%s, %s)",
        (start - timedelta(days=7), now + timedelta(days=1)),
    )
    # Bulk load without the indexes, then build them once (as bench/alerts.py does).
    conn.execute("ALTER TABLE observations DROP CONSTRAINT observations_once")
    conn.execute("DROP INDEX observations_patient_metric_time")
    days = (now - start).days
    # Each patient has a personal baseline and varies around it by 0.6 of the population's
    # spread (bench/alerts.py's full spread opens an episode every week for most patients);
    # 3 % of readings carry an unreliable flag; a
    # deteriorating patient's vitals ramp to DRIFT over two days from their onset, hold two
    # days and are back on the fifth.
    conn.execute(
        """
        INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, seq,
                                  flags)
        SELECT m.t, m.patient_id, m.metric_id,
               round((m.mean + m.spread * (0.6 * m.base + 0.6 * sqrt(-2 * ln(1 - random()))
                      * cos(2 * pi() * random()))
                      + m.drift * CASE WHEN m.onset IS NULL OR m.t < m.onset
                                         OR m.t > m.onset + interval '4 days' THEN 0
                                       ELSE least(1, extract(epoch FROM m.t - m.onset) / 172800)
                                  END)::numeric, 1)::float8,
               m.patient_id, m.k * 32 + m.metric_id,
               CASE WHEN random() < 0.03 THEN ARRAY['sensor_displaced'] END
        FROM (
            SELECT pp.patient_id, n.metric_id, n.mean, n.spread, n.drift, k,
                   (hashint8(pp.patient_id * 16 + n.metric_id) %% 1000) / 577.0 AS base,
                   CASE WHEN pp.patient_id %% %(every)s = 3 THEN
                     %(start)s + (1 + abs(hashint8(pp.patient_id)) %% %(spread)s)
                       * interval '1 day' END AS onset,
                   %(start)s + (k / n.per_day) * interval '1 day'
                     + (7 + (k %% n.per_day) * 13.0 / n.per_day) * interval '1 hour'
                     + random() * interval '50 minutes' AS t
            FROM patient_protocols pp
            JOIN bench_needs n ON n.protocol = pp.protocol
            CROSS JOIN LATERAL generate_series(0, %(days)s * n.per_day - 1) k
        ) m
        WHERE m.t <= %(now)s
        """,
        {
            "start": start,
            "days": days,
            "now": now,
            "every": DETERIORATING_EVERY,
            "spread": max(1, days - 2),
        },
    )
    conn.execute(
        "CREATE INDEX observations_patient_metric_time "
        "ON observations (patient_id, metric_id, measured_at DESC)"
    )
    conn.execute(
        "ALTER TABLE observations ADD CONSTRAINT observations_once "
        "UNIQUE (gateway_id, seq, measured_at)"
    )
    conn.execute("SELECT telemon_refresh_observation_hourly(%s, %s)", (start, now))
    # As autovacuum leaves a table at rest: statistics, and the visibility map that lets the
    # rollup's probes be index-only scans.
    conn.execute("VACUUM ANALYZE")
    return conn.execute("SELECT count(*) FROM observations").fetchone()[0]


@dataclass(slots=True)
class EngineRun:
    passes: int = 0
    resolved_by_nurse: int = 0
    seconds: float = 0.0


def run_engine(
    conn: psycopg.Connection, *, start: datetime, now: datetime, every: timedelta
) -> EngineRun:
    """The real engine, a full pass every ``every`` from ``start`` to ``now``; after each pass
    a nurse resolves the episodes open for a day, through the dashboard's own call."""
    protocols = load_protocols()
    engine = Engine(conn, SETTINGS, protocols)
    nurse = conn.execute("SELECT min(id) FROM staff WHERE role = 'nurse'").fetchone()[0]
    run = EngineRun()
    began = time.perf_counter()
    at = start + every
    while at <= now:
        engine.evaluate(at)
        run.passes += 1
        stale = conn.execute(
            "SELECT id FROM episodes WHERE state <> 'resolved' AND opened_at < %s",
            (at - NURSE_RESOLVES_AFTER,),
        ).fetchall()
        for (episode_id,) in stale:
            try:
                with conn.transaction():
                    act(conn, episode_id, "resolve", actor=nurse, now=at, protocols=protocols)
                run.resolved_by_nurse += 1
            except TransitionNotAllowed:
                pass  # resolved by the engine meanwhile, or not the nurse's to resolve
        at += every
    # The SMS the engine queued go to the outbox (no Twilio here), as the sender moves them.
    Sender(conn, None, public_url=SETTINGS.public_url).run_once()
    conn.execute("VACUUM ANALYZE")
    run.seconds = time.perf_counter() - began
    return run
