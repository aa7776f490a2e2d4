"""Time to render a period report's PDF: a demo patient's 90 days, made by the real engine.

    .venv/bin/python bench/report_pdf.py [--days 90] [--patients 4] [--runs 5]

Seeds the demo cohort in a fresh database (PostgreSQL from TELEMON_TEST_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/postgres), stores its simulated readings and runs the
alerts engine over them hour by hour (tests/engine_made.py), then renders the report of the
patient with the most readings as the PDF route does (dashboard.report: build, HTML, WeasyPrint)
and prints `period report pdf: p50 X ms, p99 Y ms` with the readings and pages.
"""

from __future__ import annotations

import argparse
import io
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
from dashboard import report
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
        started = time.perf_counter()
        made = replay_demo(
            url,
            Settings(public_url="http://bench", language="en"),
            now=now,
            days=args.days,
            patients=args.patients,
        )
        print(f"seeded {made.readings} readings in {time.perf_counter() - started:.0f} s")
        today = now.astimezone(LOCAL_TZ).date()
        period = report.Period(today - timedelta(days=args.days - 1), today)
        with psycopg.connect(url) as conn:
            patient_id, readings = conn.execute(
                "SELECT patient_id, count(*) FROM observations GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
            ).fetchone()
            timings, pages = [], 0
            for _ in range(args.runs):
                t0 = time.perf_counter()
                content = report.build(conn, patient_id, period, language="it")
                title = report.title(content, "it")
                pdf = report.pdf(report.body_html(content, "it"), "it", title)
                timings.append((time.perf_counter() - t0) * 1000)
            pages = len(PdfReader(io.BytesIO(pdf)).pages)
            episodes = len(content.episodes)
        timings.sort()
        p99 = timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]
        print(
            f"patient {patient_id}: {readings} readings, {episodes} episodes, {pages} pages, "
            f"{len(pdf)} bytes"
        )
        print(f"period report pdf: p50 {statistics.median(timings):.0f} ms, p99 {p99:.0f} ms")
    finally:
        drop_database(ADMIN_URL, name)


if __name__ == "__main__":
    main()
