"""Ingest benchmark: raw COPY rate versus end-to-end MQTT -> PostgreSQL rate, and latency.

    python bench/ingest.py --observations 500000

Creates a throwaway database on the server of --database-url, enrols --gateways homes (the
fleet's: demo care plans, each home with a worn oximeter), builds their messages with
bench/fleet.py's generator (--per-message observations each; a spot reading goes at once),
then:

1. raw COPY: the very rows the run will store, COPYed (binary) straight into ``observations``
   in one transaction: the store's limit on this machine;
2. end to end: the same messages published at QoS 1 to the real broker and ingested by
   --workers ``IngestService`` subprocesses (shared subscription); rate from the first publish
   to the last commit, and each message's latency from publish to the commit that made it
   durable.

The database and the workers' MQTT sessions are removed at the end.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg.types.json import set_json_dumps

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._fleet_setup import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    DEFAULT_MQTT_URL,
    committed_messages,
    create_database,
    drop_database,
    enrol,
    percentile,
    start_workers,
    stop_workers,
    wait_until_stored,
)
from bench._fleet_streams import IDENTIFIED  # noqa: E402
from bench.fleet import (  # noqa: E402
    Message,
    Pacing,
    Progress,
    Publisher,
    StatusLine,
    checked,
    fleet_cohort,
    fleet_messages,
    timeline,
)
from ingest.store import COPY_OBSERVATIONS, COPY_TYPES, RememberedJson  # noqa: E402
from telemon.metrics import METRICS  # noqa: E402


def raw_copy_rate(url: str, messages: list[Message], ids: dict[str, tuple[int, int]]) -> float:
    """Rows per second of one binary COPY of the same rows straight into ``observations``."""
    with psycopg.connect(url) as conn:
        devices = {
            (gateway_id, address): device_id
            for gateway_id, address, device_id in conn.execute(
                "SELECT gateway_id, address, id FROM devices"
            )
        }
    rows = []
    for message in messages:
        gateway_id, patient_id = ids[message.gateway_id]
        for item in message.items():
            rows.append(
                (
                    datetime.fromisoformat(item["measured_at"]),
                    patient_id,
                    METRICS[item["metric"]].id,
                    item["value"],
                    gateway_id,
                    item["seq"],
                    devices.get((gateway_id, item["device_id"])),
                    datetime.fromisoformat(item["received_at"]),
                    item.get("flags"),
                    item.get("context") or None,
                    item.get("time"),
                    bytes.fromhex(item["identifier"]) if "identifier" in item else None,
                )
            )
    with psycopg.connect(url) as conn:
        times = [r[0] for r in rows]
        conn.execute(
            "SELECT telemon_ensure_observation_partitions(%s, %s)", (min(times), max(times))
        )
        conn.commit()
        # The store's own COPY, types and JSON dumping: the baseline is the fastest this client
        # and server can go, so the ratio charges ingest only for what ingest adds.
        set_json_dumps(RememberedJson(), context=conn)
        started = time.perf_counter()
        with conn.cursor().copy(COPY_OBSERVATIONS) as copy:
            copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE observations")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE observations")
    return len(rows) / elapsed


def publish(args, messages: list[Message], ports: list[int], run: str) -> float:
    """Publish every message at QoS 1, keeping at most --window uncommitted; return start time."""
    gateway_ids = sorted({m.gateway_id for m in messages})
    pacing = Pacing()  # unpaced: the window alone holds publishing back
    # No in-flight limit in paho: the window bounds what is outstanding, and paho's own limit
    # rescans its queue on every PUBACK, which cost the publisher about a third of its CPU at one
    # reading per message (47 against 61-82 µs a message), CPU the workers measured here need.
    publisher = Publisher(args.mqtt_url, gateway_ids, connections=1, run=run, inflight=0)
    progress = Progress(StatusLine(publisher, pacing), stream=sys.stderr, only_on_tty=True)
    with publisher, progress:
        started = time.time()
        committed = 0
        for n, message in enumerate(messages):
            # The broker queues a limited number of messages per session; stay under it. Polled
            # every 50 ms, not faster: each poll costs the workers a /metrics page.
            while n - committed >= args.window:
                time.sleep(0.05)
                committed = committed_messages(ports)
            publisher.publish(message)
        publisher.wait_acked(60)
    return started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--observations", type=int, default=500_000)
    parser.add_argument("--per-message", type=int, default=500)
    parser.add_argument("--gateways", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="ingest processes (shared group)")
    parser.add_argument(
        "--identified",
        choices=IDENTIFIED,
        default="spot",
        help="readings with a stable identifier: the stamped spot readings (as a gateway "
        "sends), all of them (the most dedup can cost), or none",
    )
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--batch-ms", type=int, default=200)
    parser.add_argument(
        "--window", type=int, default=100, help="published but uncommitted messages, at most"
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="administrative URL; a throwaway database is created beside it",
    )
    parser.add_argument("--mqtt-url", default=DEFAULT_MQTT_URL)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:6]
    name, url = create_database(args.database_url)
    workers = []
    try:
        cohort = fleet_cohort(args.gateways, run)
        with psycopg.connect(url) as conn:
            ids = enrol(conn, cohort)
        start = timeline(
            cohort, args.observations, per_message=args.per_message, now=time.time()
        ).start
        messages = list(
            checked(
                fleet_messages(
                    cohort,
                    args.observations,
                    per_message=args.per_message,
                    start=start,
                    identified=args.identified,
                )
            )
        )
        total = sum(m.observations for m in messages)
        print(f"{total} observations in {len(messages)} messages from {args.gateways} gateways")

        raw = raw_copy_rate(url, messages, ids)
        print(f"raw COPY into observations:     {raw:>10,.0f} observations/s")

        workers = start_workers(
            args.workers,
            url=url,
            mqtt_url=args.mqtt_url,
            group=f"bench-{run}",
            run=run,
            batch_size=args.batch_size,
            batch_ms=args.batch_ms,
        )
        ports = [worker.metrics_port for worker in workers]
        started = publish(args, messages, ports, run)
        wait_until_stored(url, total, timeout=max(120, total / 2000))
        records, stored, duplicates, shares, cpu = [], 0, 0, [], 0.0
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
            worker.process.wait(60)
            result = worker.result()
            records += result["records"]
            stored += result["stored"]
            duplicates += result["duplicates"]
            shares.append(result["stored"])
            cpu += result["cpu_s"]
        elapsed = max(committed for _, committed, *_ in records) - started
        rate = total / elapsed
        latencies = [committed - sent for sent, committed, *_ in records]
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
        print(
            f"worker CPU (user + system):     {cpu / len(records) * 1e6:>10,.0f} µs per message, "
            f"{cpu / total * 1e6:,.1f} µs per observation"
        )
        print(
            f"stored {stored}, duplicates {duplicates}; "
            f"per worker {' / '.join(f'{n:,}' for n in shares)}"
        )
    finally:
        stop_workers(workers, args.mqtt_url)
        drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
