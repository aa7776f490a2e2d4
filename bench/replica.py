"""What reading from a streaming replica costs a dashboard request, and how far it lags.

    python bench/replica.py [--requests 2000] [--seconds 20] [--rows-per-second 10000]

Starts a primary and its hot standby from the machine's PostgreSQL binaries
(bench/_replicated_postgres.py; as the ``postgres`` user when run as root), then prints:

* ``read connection, primary only:`` the baseline: a connection from the dashboard's primary
  pool and one query on it, as every request did before the replica;
* ``read connection, replica:`` the same through ``Databases.reading`` with a replica (its
  replay position checked at each lend: read-your-writes), interleaved with the baseline;
* ``after a write:`` how long a session that has just written reads the primary (the replica
  has not replayed the write yet) before the replica serves it again;
* ``lag under writes:`` readings-like rows inserted on the primary at ``--rows-per-second`` for
  ``--seconds``, the replica's lag as ``/status`` reports it sampled every 0.1 s.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._fleet_setup import percentile
from bench._replicated_postgres import ReplicatedPostgres
from dashboard.databases import Databases, ReplicaConnection

QUERY = "SELECT count(*) FROM pg_class"
BATCH_EVERY = 0.1  # seconds between the writer's batches


def timed_read(databases: Databases) -> float:
    start = time.perf_counter()
    with databases.reading(after=None) as conn:
        conn.execute(QUERY).fetchone()
    return (time.perf_counter() - start) * 1000


def read_cost(primary_only: Databases, replicated: Databases, requests: int) -> None:
    baseline, replica = [], []
    for _ in range(requests):
        baseline.append(timed_read(primary_only))
        replica.append(timed_read(replicated))
    for name, values in (("primary only", baseline), ("replica", replica)):
        print(
            f"read connection, {name}: p50 {percentile(values, 0.5):.3f} ms, "
            f"p99 {percentile(values, 0.99):.3f} ms"
        )
    print(
        f"  replica / primary only: p50 {percentile(replica, 0.5) / percentile(baseline, 0.5):.2f}x"
    )


def after_a_write(replicated: Databases, primary_url: str, runs: int = 50) -> None:
    """Milliseconds from a committed write until the replica serves the writer again."""
    waits = []
    with psycopg.connect(primary_url, autocommit=True) as primary:
        for i in range(runs):
            primary.execute("INSERT INTO bench_load (value) VALUES (%s)", (i,))
            row = primary.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            assert row is not None
            start = time.perf_counter()
            while True:
                with replicated.reading(after=row[0]) as conn:
                    if isinstance(conn, ReplicaConnection):
                        break
            waits.append((time.perf_counter() - start) * 1000)
    print(
        f"after a write: the writer reads the primary for p50 {percentile(waits, 0.5):.2f} ms, "
        f"p99 {percentile(waits, 0.99):.2f} ms, then the replica ({runs} writes)"
    )


def lag_under_writes(
    replicated: Databases, primary_url: str, rows_per_second: int, seconds: float
) -> None:
    stop = threading.Event()
    written = [0]

    def write() -> None:
        batch = max(1, int(rows_per_second * BATCH_EVERY))
        with psycopg.connect(primary_url, autocommit=True) as conn:
            next_at = time.monotonic()
            while not stop.is_set():
                with conn.cursor().copy("COPY bench_load (at, value) FROM STDIN") as copy:
                    now = datetime.now(UTC)
                    for i in range(batch):
                        copy.write_row((now, float(i)))
                written[0] += batch
                next_at += BATCH_EVERY
                time.sleep(max(0.0, next_at - time.monotonic()))

    writer = threading.Thread(target=write)
    writer.start()
    lag_seconds, lag_bytes = [], []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            lag = replicated.replica_lag()
            assert lag is not None and lag.reachable, lag
            lag_seconds.append((lag.lag_seconds or 0.0) * 1000)
            lag_bytes.append(float(lag.lag_bytes or 0))
            time.sleep(0.1)
    finally:
        stop.set()
        writer.join()
    print(
        f"lag under writes ({written[0] / seconds:,.0f} rows/s for {seconds:.0f} s, "
        f"{len(lag_seconds)} samples): p50 {percentile(lag_seconds, 0.5):.0f} ms / "
        f"{percentile(lag_bytes, 0.5):,.0f} bytes, p99 {percentile(lag_seconds, 0.99):.0f} ms / "
        f"{percentile(lag_bytes, 0.99):,.0f} bytes, max {max(lag_seconds):.0f} ms / "
        f"{max(lag_bytes):,.0f} bytes"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rows-per-second", type=int, default=10_000)
    args = parser.parse_args()

    servers = ReplicatedPostgres()
    try:
        servers.start()
        primary_url = servers.url(servers.primary_port)
        with psycopg.connect(primary_url, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bench_load (id bigserial PRIMARY KEY, "
                "at timestamptz NOT NULL DEFAULT now(), value float8 NOT NULL)"
            )
        servers.make_standby()
        replica_url = servers.url(servers.standby_port)
        primary_only = Databases(primary_url)
        replicated = Databases(primary_url, replica_url)
        for databases in (primary_only, replicated):
            databases.open()
            databases.primary.wait()
        assert replicated.replica is not None
        replicated.replica.wait()
        servers.wait_replayed("postgres")
        try:
            read_cost(primary_only, replicated, args.requests)
            after_a_write(replicated, primary_url)
            lag_under_writes(replicated, primary_url, args.rows_per_second, args.seconds)
        finally:
            primary_only.close()
            replicated.close()
    finally:
        servers.stop()


if __name__ == "__main__":
    main()
