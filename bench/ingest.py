"""Ingest benchmark: raw COPY rate versus end-to-end MQTT -> PostgreSQL rate, and latency.

    python bench/ingest.py --observations 500000

Creates a throwaway database on the server of --database-url, enrols --gateways patients with a
gateway each, then:

1. raw COPY: the very rows the run will store, COPYed (binary) straight into ``observations``
   in one transaction: the store's limit on this machine;
2. end to end: the same observations as QoS 1 messages of --per-message observations, published
   to the real broker and ingested by --workers ``IngestService`` subprocesses (shared
   subscription); rate from the first publish to the last commit, and each message's latency
   from publish to the commit that made it durable.

The database and the workers' MQTT sessions are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.migrate import migrate  # noqa: E402
from telemon.metrics import METRICS  # noqa: E402
from telemon.mqtt import BrokerAddress, connect, new_client  # noqa: E402
from telemon.topics import Channel, topic  # noqa: E402

# Continuous monitoring streams: an oximeter at 1 Hz gives SpO2 and pulse every second.
STREAM = (("spo2", 96.0, 1.5), ("pulse_rate", 72.0, 6.0))


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    head: bytes  # up to the sent_at value, which is stamped at publish time
    tail: bytes
    observations: int


def build_messages(gateways: list[tuple[str, str]], total: int, per_message: int, seed: int = 7):
    """Round-robin over gateways, each sending its own stream; also the rows a raw COPY writes."""
    rng = random.Random(seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    per_gateway = math.ceil(total / len(gateways))
    streams = []
    for gateway, patient in gateways:
        items = []
        for i in range(per_gateway):
            metric, mean, sd = STREAM[i % len(STREAM)]
            at = start + timedelta(seconds=i // len(STREAM))
            items.append(
                {
                    "seq": i,
                    "device_id": "00:1A:7D:DA:71:13",
                    "patient_id": patient,
                    "metric": metric,
                    "value": round(min(100.0, rng.gauss(mean, sd)), 1),
                    "unit": METRICS[metric].unit,
                    "measured_at": at.isoformat().replace("+00:00", "Z"),
                    "received_at": (at + timedelta(seconds=2)).isoformat().replace("+00:00", "Z"),
                }
            )
        streams.append((gateway, items))
    messages: list[Message] = []
    remaining = total
    offset = 0
    while remaining > 0:
        for gateway, items in streams:
            chunk = items[offset : offset + min(per_message, remaining)]
            if not chunk or remaining <= 0:
                continue
            body = json.dumps(chunk, separators=(",", ":")).encode()
            messages.append(
                Message(
                    topic(gateway, Channel.OBS),
                    b'{"v":1,"gateway_id":"' + gateway.encode() + b'","sent_at":"',
                    b'","observations":' + body + b"}",
                    len(chunk),
                )
            )
            remaining -= len(chunk)
        offset += per_message
    return messages


def create_database(admin_url: str) -> tuple[str, str]:
    name = f"telemon_bench_{uuid.uuid4().hex[:10]}"
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


def enrol(conn: psycopg.Connection, count: int, run: str) -> list[tuple[str, str, int, int]]:
    gp = conn.execute(
        "INSERT INTO staff (username, display_name, role) VALUES ('dr.bench', 'Dr Bench', 'gp') "
        "RETURNING id"
    ).fetchone()[0]
    enrolled = []
    for i in range(count):
        code = f"P-{run}-{i:04d}"
        patient_id = conn.execute(
            "INSERT INTO patients (code, given_name, family_name, gp_id) "
            "VALUES (%s, 'Bench', 'Patient', %s) RETURNING id",
            (code, gp),
        ).fetchone()[0]
        gateway = f"gw-{run}-{i:04d}"
        gateway_id = conn.execute(
            "INSERT INTO gateways (code, patient_id) VALUES (%s, %s) RETURNING id",
            (gateway, patient_id),
        ).fetchone()[0]
        enrolled.append((gateway, code, gateway_id, patient_id))
    conn.commit()
    return enrolled


def raw_copy_rate(url: str, messages: list[Message], ids: dict[str, tuple[int, int]]) -> float:
    """Rows per second of one binary COPY of the same rows straight into ``observations``."""
    rows = []
    for message in messages:
        gateway = message.topic.split("/")[3]
        gateway_id, patient_id = ids[gateway]
        for item in json.loads(message.tail[len(b'","observations":') : -1]):
            rows.append(
                (
                    datetime.fromisoformat(item["measured_at"]),
                    patient_id,
                    METRICS[item["metric"]].id,
                    item["value"],
                    gateway_id,
                    item["seq"],
                    None,
                    datetime.fromisoformat(item["received_at"]),
                )
            )
    with psycopg.connect(url) as conn:
        times = [r[0] for r in rows]
        conn.execute(
            "SELECT telemon_ensure_observation_partitions(%s, %s)", (min(times), max(times))
        )
        conn.commit()
        started = time.perf_counter()
        with conn.cursor().copy(
            "COPY observations (measured_at, patient_id, metric_id, value, gateway_id, seq, "
            "device_id, received_at) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                ["timestamptz", "int8", "int2", "float8", "int8", "int8", "int8", "timestamptz"]
            )
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE observations")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE observations")
    return len(rows) / elapsed


def start_workers(args, url: str, group: str, run: str) -> list[tuple[subprocess.Popen, Path, str]]:
    workers = []
    for i in range(args.workers):
        status = Path(tempfile.mkstemp(prefix="telemon-bench-", suffix=".json")[1])
        status.write_text("{}")
        client_id = f"bench-{run}-{i}"
        env = {
            **os.environ,
            "TELEMON_DATABASE_URL": url,
            "TELEMON_MQTT_URL": args.mqtt_url,
            "TELEMON_INGEST_SHARED_GROUP": group,
            "TELEMON_INGEST_METRICS_PORT": "0",
            "TELEMON_INGEST_BATCH_SIZE": str(args.batch_size),
            "TELEMON_INGEST_BATCH_MS": str(args.batch_ms),
            "PYTHONPATH": str(ROOT),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "bench._ingest_worker", str(status), client_id],
            env=env,
            cwd=ROOT,
        )
        workers.append((process, status, client_id))
    deadline = time.monotonic() + 30
    for process, status, _ in workers:
        while "ready" not in json.loads(status.read_text() or "{}"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("an ingest worker did not start; see its output above")
            time.sleep(0.05)
    return workers


def committed_messages(ports: list[int]) -> int:
    total = 0
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                if line.startswith('telemon_ingest_messages_total{kind="obs"}'):
                    total += int(float(line.split()[-1]))
    return total


def publish(args, messages: list[Message], ports: list[int]) -> float:
    """Publish every message at QoS 1, keeping at most --window uncommitted; return start time."""
    address = BrokerAddress.parse(args.mqtt_url)
    client = new_client(address, f"bench-publisher-{uuid.uuid4().hex[:8]}")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    connect(client, address, clean_start=True, session_expiry_s=0)
    client.loop_start()
    started = time.time()
    infos = []
    committed = 0
    for n, message in enumerate(messages):
        # The broker queues a limited number of messages per session; stay under it.
        while n - committed >= args.window:
            time.sleep(0.01)
            committed = committed_messages(ports)
        sent_at = datetime.now(UTC).isoformat().replace("+00:00", "Z").encode()
        infos.append(client.publish(message.topic, message.head + sent_at + message.tail, qos=1))
    for info in infos:
        info.wait_for_publish(timeout=60)
    client.disconnect()
    client.loop_stop()
    return started


def wait_until_stored(url: str, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT count(*) FROM observations").fetchone()[0] < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"not every observation was stored within {timeout:g} s")
            time.sleep(0.2)


def forget_session(mqtt_url: str, client_id: str) -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--observations", type=int, default=500_000)
    parser.add_argument("--per-message", type=int, default=500)
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="ingest processes (shared group)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--batch-ms", type=int, default=200)
    parser.add_argument(
        "--window", type=int, default=100, help="published but uncommitted messages, at most"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "TELEMON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="administrative URL; a throwaway database is created beside it",
    )
    parser.add_argument(
        "--mqtt-url", default=os.environ.get("TELEMON_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
    )
    args = parser.parse_args()

    run = uuid.uuid4().hex[:6]
    name, url = create_database(args.database_url)
    workers = []
    try:
        with psycopg.connect(url) as conn:
            enrolled = enrol(conn, args.gateways, run)
        messages = build_messages(
            [(g, p) for g, p, _, _ in enrolled], args.observations, args.per_message
        )
        ids = {g: (gid, pid) for g, _, gid, pid in enrolled}
        total = sum(m.observations for m in messages)
        print(f"{total} observations in {len(messages)} messages from {args.gateways} gateways")

        raw = raw_copy_rate(url, messages, ids)
        print(f"raw COPY into observations:     {raw:>10,.0f} observations/s")

        workers = start_workers(args, url, f"bench-{run}", run)
        ports = [json.loads(status.read_text())["ready"] for _, status, _ in workers]
        started = publish(args, messages, ports)
        wait_until_stored(url, total, timeout=max(120, total / 2000))
        records, stored, duplicates = [], 0, 0
        for process, status, _ in workers:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
            result = json.loads(status.read_text())
            records += result["records"]
            stored += result["stored"]
            duplicates += result["duplicates"]
        elapsed = max(committed for _, committed, _ in records) - started
        rate = total / elapsed
        latencies = [committed - sent for sent, committed, _ in records]
        print(
            f"end to end (publish -> commit): {rate:>10,.0f} observations/s "
            f"with {args.workers} worker(s), batches of {args.batch_size} / {args.batch_ms} ms"
        )
        print(f"ratio end to end / raw COPY:    {rate / raw:>10.0%}")
        print(
            f"publish -> commit latency:      p50 {percentile(latencies, 0.5) * 1000:,.0f} ms, "
            f"p99 {percentile(latencies, 0.99) * 1000:,.0f} ms  ({len(latencies)} messages, "
            f"at most {args.window} uncommitted)"
        )
        print(f"stored {stored}, duplicates {duplicates}")
    finally:
        for process, status, client_id in workers:
            if process.poll() is None:
                process.kill()
                process.wait()
            status.unlink(missing_ok=True)
            forget_session(args.mqtt_url, client_id)
        drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
