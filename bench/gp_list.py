"""Server time of the GP's list at a glance and of the patient page's long charts.

    python bench/gp_list.py --gps 50 --patients-per-gp 200 --days 90

Creates its own database from TELEMON_BENCH_DATABASE_URL (default: the local server), fills it
with generate_series (SpO2 and pulse every 6 h, blood pressure twice a day: the cohort's four
protocols in turn), refreshes the hourly rollup as ingest's housekeeping does, and drops it at
the end (``--keep`` keeps it). Times the queries the routes run, without HTTP:

* ``patient list:`` one GP's list (dashboard.glance.patient_list, what /patients renders);
* ``patient page 30 days:`` / ``patient page 90 days:`` every chart's series of one patient.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._fleet_setup import create_database, drop_database, percentile
from dashboard import clinical, glance
from dashboard.authz import Principal
from telemon.metrics import METRICS

PROTOCOLS = ("covid19_home_oximetry", "hypertension", "copd", "heart_failure")


def seed(conn: psycopg.Connection, gps: int, per_gp: int, days: int, now: datetime) -> list[int]:
    gp_ids = [
        conn.execute(
            "INSERT INTO staff (username, display_name, role) VALUES (%s, %s, 'gp') RETURNING id",
            (f"gp{i}", f"GP {i}"),
        ).fetchone()[0]
        for i in range(gps)
    ]
    enrolled = now - timedelta(days=days)
    conn.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id, enrolled_at) "
        "SELECT 'P-' || n, 'Given' || n, 'Family' || n, (%s::bigint[])[1 + n %% %s], %s "
        "FROM generate_series(0, %s - 1) n",
        (gp_ids, gps, enrolled, gps * per_gp),
    )
    conn.execute(
        "INSERT INTO patient_protocols (patient_id, protocol, overrides, started_at) "
        "SELECT id, (%s::text[])[1 + id %% 4], %s, %s FROM patients",
        (list(PROTOCOLS), Jsonb({}), enrolled),
    )
    conn.execute("SELECT telemon_ensure_observation_partitions(%s, %s)", (enrolled, now))
    metrics = [METRICS[m].id for m in ("spo2", "pulse_rate", "systolic", "diastolic")]
    conn.execute(
        """
        INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, seq)
        SELECT %(now)s - make_interval(hours => h) - make_interval(mins => (p %% 60)::int),
               p, m, 60 + (p + h) %% 40, 1, p::bigint * 100000 + h * 10 + m
        FROM generate_series(1, %(hours)s, 6) h, generate_series(1, %(patients)s) p,
             unnest(%(metrics)s::smallint[]) m
        """,
        {"now": now, "hours": days * 24, "patients": gps * per_gp, "metrics": metrics},
    )
    conn.execute("SELECT telemon_refresh_observation_hourly(%s, %s)", (enrolled, now))
    # As autovacuum leaves a table at rest: statistics, and the visibility map that lets the
    # rollup's probes be index-only scans.
    conn.execute("VACUUM ANALYZE")
    return gp_ids


def timed(runs: int, call: object) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return out


def report(label: str, ms: list[float]) -> None:
    print(f"{label}: p50 {percentile(ms, 0.5):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gps", type=int, default=50)
    parser.add_argument("--patients-per-gp", type=int, default=200)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    admin = os.environ.get(
        "TELEMON_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name, url = create_database(admin)
    try:
        now = datetime.now(UTC)
        with psycopg.connect(url, autocommit=True) as conn:
            start = time.perf_counter()
            gp_ids = seed(conn, args.gps, args.patients_per_gp, args.days, now)
            rows = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
            print(
                f"seeded {args.gps * args.patients_per_gp} patients, {rows} observations "
                f"in {time.perf_counter() - start:.0f} s"
            )
            gp = Principal(gp_ids[0], "gp0", "GP 0", "gp", "en", "", "127.0.0.1")
            listed = glance.patient_list(conn, gp, now=now)
            print(f"the GP's list holds {len(listed)} patients")
            report("patient list", timed(args.runs, lambda: glance.patient_list(conn, gp, now=now)))
            patient = listed[0].id
            for days in (30, 90):

                def page(days: int = days) -> None:
                    for key in clinical.charted_metrics(conn, patient, now=now):
                        clinical.series(conn, patient, key, days, now=now)

                report(f"patient page {days} days", timed(args.runs, page))
    finally:
        if not args.keep:
            drop_database(admin, name)


if __name__ == "__main__":
    main()
