"""bench/dashboard.py at a tiny size: builds its cooperative, asks the app, prints its lines."""

from __future__ import annotations

import re

import psycopg

LINES = (
    "triage queue",
    "patient list",
    "patient page 30 days",
    "patient page 90 days",
    "period report pdf",
    "closing report pdf",
)
FIGURES = re.compile(r": p50 [0-9.]+ ms, p99 [0-9.]+ ms$")


def test_a_tiny_run_prints_the_six_lines_and_leaves_no_database(postgres_server_url, run_bench):
    def bench_databases() -> set[str]:
        with psycopg.connect(postgres_server_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE 'telemon_bench_%'"
            ).fetchall()
        return {name for (name,) in rows}

    before = bench_databases()
    out = run_bench(
        "dashboard.py",
        # Enough patients that some episode is still open at the end (the queue measured).
        *("--patients", "100", "--per-gp", "20", "--per-centre", "50"),
        *("--days", "14", "--engine-every", "24", "--runs", "3"),
        env={"TELEMON_BENCH_DATABASE_URL": postgres_server_url},
        timeout=300,
    )
    lines = out.splitlines()
    for label in LINES:
        printed = [line for line in lines if line.startswith(f"{label}: ")]
        assert len(printed) == 1, (label, out)
        assert FIGURES.search(printed[0]), printed[0]
    # The engine made episodes, and the GP's list and the nurse's queue were not empty.
    assert re.search(r"engine: \d+ full passes .* [1-9][0-9,]* episodes", out)
    assert re.search(r"queue holds [1-9]\d* episodes; \S+ has 20 patients", out)
    assert bench_databases() <= before
