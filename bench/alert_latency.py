"""Publish -> SMS latency under load: red-alert probes while a fleet publishes in the background.

    python bench/alert_latency.py --background-rate 10000 --probes 50

Creates a throwaway database beside --database-url and enrols --background-gateways homes (the
demo cohort's mix of care plans, GPs and service-centre duty phone) and --probes patients on
the COVID-19 home oximetry protocol, each with a GP of their own. Starts --workers ingest
workers, the alerts engine as deployed (``telemon alerts``, its defaults) with the
real twilio client pointed at the tests' fake Twilio server (run in this process), and
``bench/fleet.py`` publishing normal readings at --background-rate.

The protocol's spo2_low rule confirms on two consecutive readings in band. Each probe patient
therefore sends a first SpO2 of 88 % before the background starts, and the run waits until the
engine has counted it; the timed probe is the second, which opens a red alert and its two SMS
(GP and service centre). Probes go every --interval seconds. Each latency runs from the probe's
publish to the fake Twilio receiving the SMS request, both on this process's clock.

The database, the processes and their MQTT sessions are removed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._fleet_mqtt import Publisher  # noqa: E402
from bench._fleet_probes import (  # noqa: E402
    Notified,
    TimedFakeTwilio,
    counted,
    notifications,
    probe_cohort,
    probe_message,
)
from bench._fleet_setup import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    DEFAULT_MQTT_URL,
    SERVICE_CENTRE_PHONE,
    create_database,
    drop_database,
    enrol,
    percentile,
    start_workers,
    stop_workers,
)
from bench._fleet_streams import fleet_cohort  # noqa: E402
from bench.fleet import checked  # noqa: E402

PRIMING_SEQ, PROBE_SEQ = 0, len(("spo2", "pulse_rate"))  # the probe's SpO2 follows the primer's
READY_TIMEOUT = 30.0


def start_engine(url: str, name: str, twilio: TimedFakeTwilio) -> subprocess.Popen:
    """``telemon alerts`` on the throwaway database, returned once it LISTENs."""
    env = {
        **os.environ,
        **twilio.environment(SERVICE_CENTRE_PHONE),
        "TELEMON_DATABASE_URL": url,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "console", "alerts", "--health-port", "0"]
    engine = subprocess.Popen([*command, "--log-level", "WARNING"], env=env, cwd=ROOT)
    deadline = time.monotonic() + READY_TIMEOUT
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND query LIKE 'LISTEN %%'",
            (name,),
        ).fetchone()[0]:
            if engine.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the alerts engine did not start; see its output above")
            time.sleep(0.1)
    return engine


def wait_primed(url: str, patient_ids: list[int]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    with psycopg.connect(url, autocommit=True) as conn:
        while counted(conn, patient_ids) < len(patient_ids):
            if time.monotonic() > deadline:
                raise SystemExit("the engine did not count every probe's first reading in time")
            time.sleep(0.1)


def start_fleet(args: argparse.Namespace, run: str) -> subprocess.Popen:
    """bench/fleet.py in a process of its own, returned once it publishes."""
    duration = args.warmup + args.probes * args.interval + args.settle
    options = {
        "--gateways": args.background_gateways,
        "--rate": args.background_rate,
        "--duration": duration,
        "--per-message": args.per_message,
        "--mqtt-url": args.mqtt_url,
        "--prefix": run,
        "--first-seq": 0,
    }
    command = [sys.executable, str(ROOT / "bench" / "fleet.py")]
    command += [str(part) for option in options.items() for part in option]
    fleet = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert fleet.stdout is not None
    first = fleet.stdout.readline()  # "fleet: ..." once connected, or nothing if it failed
    if not first:
        raise SystemExit("the background fleet did not start; see its output above")
    print(f"background {first.strip()}", flush=True)
    return fleet


def stop(process: subprocess.Popen | None, timeout: float = 15.0) -> str:
    """SIGTERM, then SIGKILL after ``timeout``; returns what it printed, if piped."""
    if process is None:
        return ""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


def report(latencies: dict[str, list[float]], expected: int) -> None:
    for label, values in latencies.items():
        if not values:
            print(f"{label:<36}none")
            continue
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(f"{label:<36}p50 {p50:>6,.0f} ms, p99 {p99:>6,.0f} ms  ({len(values)} of {expected})")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--background-rate", type=float, default=10_000, help="obs/s")
    parser.add_argument(
        "--background-gateways", type=int, default=5000, help="homes; 5,000 are 10,000 obs/s"
    )
    parser.add_argument("--per-message", type=int, default=100)
    parser.add_argument("--probes", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between probes")
    parser.add_argument("--warmup", type=float, default=5.0, help="background before probes")
    parser.add_argument("--settle", type=float, default=30.0, help="wait for the last SMS")
    parser.add_argument("--workers", type=int, default=2, help="ingest processes")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--batch-ms", type=int, default=200)
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="administrative URL; a throwaway database is created beside it",
    )
    parser.add_argument("--mqtt-url", default=DEFAULT_MQTT_URL)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:6]
    name, url = create_database(args.database_url)
    workers, engine, fleet, background = [], None, None, ""
    try:
        with TimedFakeTwilio.running() as twilio:
            probes = probe_cohort(args.probes, run)
            with psycopg.connect(url) as conn:
                enrol(conn, fleet_cohort(args.background_gateways, run))
                probe_ids = [pid for _, pid in enrol(conn, probes).values()]
            workers = start_workers(
                args.workers,
                url=url,
                mqtt_url=args.mqtt_url,
                group=f"bench-{run}",
                run=run,
                batch_size=args.batch_size,
                batch_ms=args.batch_ms,
            )
            engine = start_engine(url, name, twilio)
            codes = [p.gateway_code for p in probes.patients]
            sent: dict[str, float] = {}
            with Publisher(args.mqtt_url, codes, connections=1, run=run) as publisher:
                primers = [probe_message(p, PRIMING_SEQ, time.time()) for p in probes.patients]
                for primer in checked(primers):
                    publisher.publish(primer)
                wait_primed(url, probe_ids)
                fleet = start_fleet(args, run)
                time.sleep(args.warmup)
                due = time.monotonic()
                for patient in probes.patients:
                    time.sleep(max(0.0, due - time.monotonic()))
                    probe = probe_message(patient, PROBE_SEQ, time.time())
                    sent[patient.code] = publisher.publish(probe)
                    due += args.interval
                expected = 2 * len(probes.patients)
                deadline = time.monotonic() + args.settle
                while len(twilio.sms_arrivals()) < expected and time.monotonic() < deadline:
                    time.sleep(0.1)
            background = stop(fleet)
            fleet = None
            with psycopg.connect(url, autocommit=True) as conn:
                stored = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
                dead = conn.execute(
                    "SELECT reason, count(*), min(gateway_code) FROM dead_letters GROUP BY 1"
                ).fetchall()
                notified = notifications(conn, [p.code for p in probes.patients], PROBE_SEQ)
            arrivals = twilio.sms_arrivals()
    finally:
        stop(fleet)
        stop(engine)
        stop_workers(workers, args.mqtt_url)
        drop_database(args.database_url, name)

    print(f"background: {background.strip().splitlines()[-1] if background else 'no output'}")
    # Every ingest subscribes to every gateway's topic: another run's traffic shows up here.
    refused = ", ".join(f"{n:,} {reason} (e.g. {code})" for reason, n, code in dead) or "none"
    print(f"stored {stored:,} observations; dead letters: {refused}")
    summarise(notified, sent, arrivals, len(probes.patients))


def summarise(
    notified: list[Notified],
    sent: dict[str, float],
    arrivals: dict[tuple[str, str], float],
    probes: int,
) -> None:
    seen = {n.patient_code for n in notified}
    print(f"probes {probes}, red alerts opened with SMS rows {len(seen)}")
    stages: dict[str, list[float]] = {
        "publish -> stored": [],
        "publish -> SMS row written": [],  # in the transaction that opens the alert
        "publish -> SMS at Twilio, GP": [],
        "publish -> SMS at Twilio, centre": [],
    }
    for n in notified:
        start = sent[n.patient_code]
        if n.recipient_kind == "gp":
            if n.stored_at is not None:
                stages["publish -> stored"].append(n.stored_at - start)
            stages["publish -> SMS row written"].append(n.created_at - start)
        arrived = arrivals.get((n.to, n.body))
        if arrived is not None:
            kind = "GP" if n.recipient_kind == "gp" else "centre"
            stages[f"publish -> SMS at Twilio, {kind}"].append(arrived - start)
    report(stages, probes)
    received = sum(1 for n in notified if (n.to, n.body) in arrivals)
    print(f"SMS expected {2 * probes}, received {received}, missing {2 * probes - received}")


if __name__ == "__main__":
    main()
