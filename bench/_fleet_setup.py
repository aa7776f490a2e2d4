"""What the fleet benchmarks share: a throwaway database, an enrolled cohort, ingest workers.

Used by bench/ingest.py, bench/fleet.py and bench/alert_latency.py. Every worker and database
made here is the caller's to remove: :func:`stop_workers` and :func:`drop_database`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from console.cohort import DEMO_SERVICE_CENTRE_PHONE, Cohort, seed  # noqa: E402
from telemon.mqtt import BrokerAddress, connect, new_client  # noqa: E402
from telemon.store.migrate import migrate  # noqa: E402

DEFAULT_DATABASE_URL = os.environ.get(
    "TELEMON_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DEFAULT_MQTT_URL = os.environ.get("TELEMON_BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
SERVICE_CENTRE_PHONE = DEMO_SERVICE_CENTRE_PHONE


def create_database(admin_url: str, prefix: str = "telemon_bench") -> tuple[str, str]:
    """A new, migrated database beside ``admin_url``'s: its name and URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    with psycopg.connect(url) as conn:
        migrate(conn)
    return name, url


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def enrol(
    conn: psycopg.Connection, cohort: Cohort, *, service_centre_phone: str = SERVICE_CENTRE_PHONE
) -> dict[str, tuple[int, int]]:
    """Seed ``cohort`` as the demo does (GPs, duty phone, protocols, gateways, devices).

    Returns each gateway code's (gateway id, patient id).
    """
    seed(conn, cohort, service_centre_phone=service_centre_phone)
    rows = conn.execute(
        "SELECT code, id, patient_id FROM gateways WHERE code = ANY(%s)",
        ([p.gateway_code for p in cohort.patients],),
    ).fetchall()
    conn.commit()
    return {code: (gateway_id, patient_id) for code, gateway_id, patient_id in rows}


@dataclass(frozen=True, slots=True)
class Worker:
    """A ``bench._ingest_worker`` process: the real IngestService in its own interpreter."""

    process: subprocess.Popen
    status: Path
    client_id: str

    @property
    def metrics_port(self) -> int:
        return json.loads(self.status.read_text())["ready"]

    def result(self) -> dict:
        return json.loads(self.status.read_text())


def start_workers(
    count: int,
    *,
    url: str,
    mqtt_url: str,
    group: str,
    run: str,
    batch_size: int,
    batch_ms: int,
) -> list[Worker]:
    """``count`` ingest workers in one shared-subscription group, returned once subscribed."""
    workers = []
    for i in range(count):
        status = Path(tempfile.mkstemp(prefix="telemon-bench-", suffix=".json")[1])
        status.write_text("{}")
        client_id = f"bench-{run}-{i}"
        env = {
            **os.environ,
            "TELEMON_DATABASE_URL": url,
            "TELEMON_MQTT_URL": mqtt_url,
            "TELEMON_INGEST_SHARED_GROUP": group,
            "TELEMON_INGEST_METRICS_PORT": "0",
            "TELEMON_INGEST_BATCH_SIZE": str(batch_size),
            "TELEMON_INGEST_BATCH_MS": str(batch_ms),
            "PYTHONPATH": str(ROOT),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "bench._ingest_worker", str(status), client_id],
            env=env,
            cwd=ROOT,
        )
        workers.append(Worker(process, status, client_id))
    deadline = time.monotonic() + 30
    for worker in workers:
        while "ready" not in json.loads(worker.status.read_text() or "{}"):
            if worker.process.poll() is not None or time.monotonic() > deadline:
                stop_workers(workers, mqtt_url)
                raise SystemExit("an ingest worker did not start; see its output above")
            time.sleep(0.05)
    return workers


def stop_workers(workers: list[Worker], mqtt_url: str) -> None:
    """Kill what still runs, remove the status files and the workers' MQTT sessions."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.process.wait()
        worker.status.unlink(missing_ok=True)
        forget_session(mqtt_url, worker.client_id)


def committed_messages(ports: list[int]) -> int:
    """Observation messages the workers have committed, from their metrics endpoints."""
    total = 0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith('telemon_ingest_messages_total{kind="obs"}'):
                    total += int(float(line.split()[-1]))
    return total


def wait_until_stored(url: str, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM observations").fetchone()[0] < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"not every observation was stored within {timeout:g} s")
            time.sleep(0.2)


def forget_session(mqtt_url: str, client_id: str) -> None:
    """Connect as ``client_id`` with a clean start and no expiry: the broker drops its session."""
    address = BrokerAddress.parse(mqtt_url)
    client = new_client(address, client_id)
    connect(client, address, clean_start=True, session_expiry_s=0)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
