"""Time a discharge's closing report: a demo patient monitored for 90 days, made by the real
engine, discharged today (dashboard.period_reports.close: build over the span, closing section,
HTML, WeasyPrint PDF, FHIR Bundle with every reading, the frozen row).

    .venv/bin/python bench/closing_report.py [--days 90] [--patients 4] [--runs 5]

Each run is rolled back, so every run closes the same patient. Prints
`closing report: p50 X ms, p99 Y ms` with the readings, pages and the Bundle's size.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._fleet_setup import create_database, drop_database
from dashboard import period_reports
from dashboard.authz import Principal
from dashboard.web import LOCAL_TZ
from telemon.config import Settings
from tests.engine_made import replay_demo

ADMIN_URL = os.environ.get(
    "TELEMON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--patients", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    name, url = create_database(ADMIN_URL)
    try:
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        made = replay_demo(
            url,
            Settings(public_url="http://bench", language="en"),
            now=now,
            days=args.days,
            patients=args.patients,
        )
        print(f"seeded {made.readings} readings")
        today = now.astimezone(LOCAL_TZ).date()
        with psycopg.connect(url) as conn:
            patient_id, readings = conn.execute(
                "SELECT patient_id, count(*) FROM observations GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
            ).fetchone()
            # Monitored from the first day of the replay.
            conn.execute(
                "UPDATE patients SET enrolled_at = %s WHERE id = %s",
                (now - timedelta(days=args.days - 1), patient_id),
            )
            conn.commit()
            staff = conn.execute("SELECT id, username, display_name FROM staff LIMIT 1").fetchone()
            user = Principal(staff[0], staff[1], staff[2], "admin", "en", "-", None)
            timings = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                period_reports.close(
                    conn,
                    user,
                    patient_id,
                    reason="bench",
                    discharged_on=today,
                    discharged_at=datetime.now(UTC),
                    public_url="http://bench",
                )
                timings.append((time.perf_counter() - t0) * 1000)
                pdf, bundle = conn.execute(
                    "SELECT pdf, fhir_bundle::text FROM period_reports WHERE kind = 'closing'"
                ).fetchone()
                conn.rollback()
        timings.sort()
        p99 = timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]
        pages = len(PdfReader(io.BytesIO(bytes(pdf))).pages)
        entries = len(json.loads(bundle)["entry"])
        print(
            f"patient {patient_id}: {readings} readings over {args.days} days, {pages} pages, "
            f"{len(bytes(pdf))} bytes of PDF, {entries} Bundle entries ({len(bundle)} bytes)"
        )
        print(f"closing report: p50 {statistics.median(timings):.0f} ms, p99 {p99:.0f} ms")
    finally:
        drop_database(ADMIN_URL, name)


if __name__ == "__main__":
    main()
