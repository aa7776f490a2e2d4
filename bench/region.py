"""Region benchmark: two area brokers bridged to a central broker, a fleet, an area restarted.

    python bench/region.py --gateways 5000 --rate 10000 --duration 300

The topology of docs/scaling.md ("Brokers") from the shipped deploy/mosquitto/ files, as
tests/reliability/test_bridge.py runs them: three real Mosquitto processes on spare loopback
ports (areas north and south with area.conf and the bridge file ``make-passwd.sh bridge AREA``
writes, the centre with central.conf and the acl-central it builds), only listener, paths and
logging rewritten. ``--workers`` ingest workers (the real IngestService, bench/_ingest_worker.py,
one shared group) read the centre as user ``ingest`` and store into a throwaway database.

bench/fleet.py's homes, alternately in north and south, publish to their area broker, paced to
``--rate``. A fleet of thousands cannot have a paho client (a thread and a socket) per gateway,
so each area's gateways share ``--connections``/2 pooled connections (fleet.py, "Connections"),
logged in as one bench user ``fleet-AREA`` made with ``make-passwd.sh gateway`` and granted every
gateway's ``obs`` topic by a block appended to that area's acl copy: the per-gateway ACL is what
tests/deploy/test_mosquitto_acl.py checks, not this. As a gateway's outbox does, paho keeps
every QoS 1 message in memory until its PUBACK and sends it again (DUP) after a reconnect; the
pacing goes on while the area broker is away, so the messages of the outage wait there.

In the middle (``--restart-at``) area north is killed (SIGKILL, a crash; ``--restart term``: a
graceful stop) and started again after ``--outage`` seconds. Counted against what the gateways
produced (handed to their client): lost (never stored), duplicate rows (none can be: (gateway,
seq) is unique) and, apart, the duplicate deliveries ingest recognised and discarded; latency
from publish (the message's sent_at) to the commit that stored it, per message at its first
commit, overall and outside the restart window: from one second before the kill until north's
gateways are connected again and everything they had published by then is acknowledged.

Last line: ``region: N obs/s, p99 X ms, lost L, duplicated D`` (p99 outside the restart window).
Brokers, workers, database and files are removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._fleet_setup import (  # noqa: E402
    DEFAULT_DATABASE_URL,
    create_database,
    drop_database,
    enrol,
    percentile,
    start_workers,
    stop_workers,
)
from bench.fleet import (  # noqa: E402
    Message,
    Pacing,
    Progress,
    Publisher,
    checked,
    fleet_cohort,
    fleet_messages,
    primed,
    publish_paced,
    timeline,
)
from tests.brokers import (  # noqa: E402
    DeployedBroker,
    bridge_connections,
    deploy_copy,
    install_bridge,
    make_passwd,
)

AREAS = ("north", "south")
RESTARTED = "north"
# Stored observations stop growing for this long after the last PUBACK: the rest is lost.
SETTLE_S = 30.0
# Messages published this long before the kill may be caught in it (unacknowledged, resent).
WINDOW_BEFORE_S = 1.0

POOL_ACL = """
# bench/region.py: the fleet's pooled connections publish for every gateway of the area.
user fleet-{area}
topic write telemon/v1/gw/+/obs
"""


@dataclass
class Area:
    name: str
    broker: DeployedBroker
    url: str  # the fleet's login


class Region:
    """The brokers, in a directory of their own: centre first, then the areas' bridges."""

    def __init__(self, workdir: Path) -> None:
        centre_dir = deploy_copy(workdir / "centre")
        credentials = make_passwd(centre_dir, "server")
        ingest_password = credentials.split("MQTT_INGEST_PASSWORD=")[1].split()[0]
        self.centre = DeployedBroker(centre_dir, "central.conf")
        self.ingest_url = self.centre.login_url("ingest", ingest_password)
        self.areas: dict[str, Area] = {}
        for name in AREAS:
            area_dir = deploy_copy(workdir / name)
            install_bridge(centre_dir, area_dir, name, f"127.0.0.1:{self.centre.port}")
            login = make_passwd(area_dir, "gateway", f"fleet-{name}")
            password = login.split(f"fleet-{name}:")[1].split("@")[0]
            with (area_dir / "acl").open("a") as acl:
                acl.write(POOL_ACL.format(area=name))
            broker = DeployedBroker(area_dir, "area.conf")
            self.areas[name] = Area(name, broker, broker.login_url(f"fleet-{name}", password))

    def start_centre(self) -> None:
        self.centre.start()

    def start_areas(self) -> None:
        for area in self.areas.values():
            area.broker.start()
            self.wait_bridged(area.name, 1)

    def wait_bridged(self, area: str, connections: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while bridge_connections(self.centre, area) < connections:
            if time.monotonic() > deadline:
                raise SystemExit(f"the bridge of area {area} did not connect to the centre")
            time.sleep(0.1)

    def stop(self) -> None:
        for broker in (*(a.broker for a in self.areas.values()), self.centre):
            broker.stop()


class Fleet:
    """The homes' publishers, one per area; counts what each gateway produced."""

    def __init__(self, publishers: dict[str, Publisher], area_of: dict[str, str]) -> None:
        self.publishers = publishers
        self.area_of = area_of
        self.produced: Counter[str] = Counter()

    def publish(self, message: Message) -> float:
        self.produced[message.gateway_id] += message.observations
        return self.publishers[self.area_of[message.gateway_id]].publish(message)

    def unacknowledged(self, area: str) -> int:
        publisher = self.publishers[area]
        publisher.settle()
        return publisher.published_messages - publisher.acked_messages

    def status(self) -> str:
        parts = []
        for area, publisher in self.publishers.items():
            publisher.settle()
            parts.append(
                f"{area} published {publisher.published_observations:,} "
                f"acked {publisher.acked_observations:,}"
            )
        return " | ".join(parts)


@dataclass
class Restart:
    """When the area broker went and came back (monotonic and POSIX times), and what waited."""

    how: str
    killed: float = 0.0  # POSIX
    started: float = 0.0
    reconnected: float = 0.0
    flushed: float = 0.0  # everything published before the reconnection acknowledged
    held: int = 0  # unacknowledged messages in the area's gateways when it came back
    done: bool = False


def restart_area(
    region: Region, fleet: Fleet, pacing: Pacing, at: float, outage: float, restart: Restart
) -> None:
    while pacing.started == 0.0 or time.monotonic() < pacing.started + at:
        time.sleep(0.05)
    area = region.areas[RESTARTED]
    bridged = bridge_connections(region.centre, RESTARTED)
    restart.killed = time.time()
    if restart.how == "kill":
        area.broker.kill()
    else:
        area.broker.stop()
    time.sleep(outage)
    restart.held = fleet.unacknowledged(RESTARTED)
    area.broker.start()
    restart.started = time.time()
    publisher = fleet.publishers[RESTARTED]
    while not all(client.is_connected() for client in publisher.clients):
        time.sleep(0.05)
    restart.reconnected = time.time()
    publisher.settle()
    backlog = publisher.published_messages
    while publisher.acked_messages < backlog:
        time.sleep(0.05)
        publisher.settle()
    restart.flushed = time.time()
    region.wait_bridged(RESTARTED, bridged + 1)
    restart.done = True


def wait_stored(url: str, produced: int) -> int:
    """Stored observations once all are there, or once the count stops growing."""
    with psycopg.connect(url, autocommit=True) as conn:
        last, since = -1, time.monotonic()
        while True:
            stored = conn.execute("SELECT count(*) FROM observations").fetchone()[0]
            if stored >= produced:
                return stored
            if stored != last:
                last, since = stored, time.monotonic()
            elif time.monotonic() - since > SETTLE_S:
                return stored
            time.sleep(0.5)


def stored_by_gateway(url: str) -> dict[str, tuple[int, int]]:
    """Per gateway code: (rows, distinct seqs)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT g.code, count(*), count(DISTINCT o.seq) "
            "FROM observations o JOIN gateways g ON g.id = o.gateway_id GROUP BY g.code"
        ).fetchall()
    return {code: (n, distinct) for code, n, distinct in rows}


def first_commits(records: list[list]) -> list[tuple[float, float]]:
    """(sent, committed) per message at its first commit: a redelivery is not a new message."""
    first: dict[tuple[str, int], tuple[float, float]] = {}
    for sent, committed, _, gateway, first_seq in records:
        key = (gateway, first_seq)
        if key not in first or committed < first[key][1]:
            first[key] = (sent, committed)
    return list(first.values())


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--gateways", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=10_000, help="observations per second")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of publishing")
    parser.add_argument("--per-message", type=int, default=100, help="observations per batch")
    parser.add_argument(
        "--connections", type=int, default=32, help="MQTT connections of the fleet, both areas"
    )
    parser.add_argument("--workers", type=int, default=2, help="ingest processes (shared group)")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--batch-ms", type=int, default=200)
    parser.add_argument(
        "--restart-at", type=float, help="seconds into publishing; default: the middle"
    )
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the area is down")
    parser.add_argument(
        "--restart",
        choices=("kill", "term"),
        default="kill",
        help="kill: SIGKILL, a crash; term: SIGTERM, a graceful stop",
    )
    parser.add_argument(
        "--database-url",
        default=DEFAULT_DATABASE_URL,
        help="administrative URL; a throwaway database is created beside it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the brokers' directory")
    args = parser.parse_args()
    if shutil.which("mosquitto", path="/usr/sbin:/usr/bin") is None and not shutil.which(
        "mosquitto"
    ):
        raise SystemExit("needs the mosquitto broker (Debian package mosquitto)")

    run = uuid.uuid4().hex[:6]
    workdir = Path(tempfile.mkdtemp(prefix="telemon-region-"))
    region = Region(workdir)
    name, url = create_database(args.database_url)
    workers = []
    try:
        cohort = fleet_cohort(args.gateways, run)
        with psycopg.connect(url) as conn:
            enrol(conn, cohort)
        region.start_centre()
        workers = start_workers(
            args.workers,
            url=url,
            mqtt_url=region.ingest_url,
            group=f"region-{run}",
            run=run,
            batch_size=args.batch_size,
            batch_ms=args.batch_ms,
        )
        region.start_areas()

        total = round(args.rate * args.duration)
        plan = timeline(
            cohort, total, per_message=args.per_message, duration=args.duration, now=time.time()
        )
        messages = primed(
            checked(
                fleet_messages(
                    cohort,
                    total,
                    per_message=args.per_message,
                    start=plan.start,
                    first_seq=time.time_ns() // 1000,
                )
            )
        )
        area_of = {p.gateway_code: AREAS[n % len(AREAS)] for n, p in enumerate(cohort.patients)}
        per_area = max(1, args.connections // len(AREAS))
        publishers = {
            area.name: Publisher(
                area.url,
                [code for code, a in area_of.items() if a == area.name],
                connections=per_area,
                run=f"{run}-{area.name}",
            )
            for area in region.areas.values()
        }
        fleet = Fleet(publishers, area_of)
        pacing = Pacing()
        restart = Restart(args.restart)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        restart_at = args.duration / 2 if args.restart_at is None else args.restart_at
        restarter = threading.Thread(
            target=restart_area,
            args=(region, fleet, pacing, restart_at, args.outage, restart),
            name="restart",
            daemon=True,
        )
        with publishers["north"], publishers["south"]:
            print(
                f"region: {args.gateways:,} gateways in areas {' and '.join(AREAS)} "
                f"({publishers['north'].describe()} each), bridged to a central broker; "
                f"{args.workers} ingest workers; {args.per_message} observations per message, "
                f"{args.rate:,.0f} obs/s for {args.duration:g} s; area {RESTARTED} "
                f"{'killed (SIGKILL)' if args.restart == 'kill' else 'stopped (SIGTERM)'} "
                f"at {restart_at:g} s for {args.outage:g} s",
                flush=True,
            )
            restarter.start()
            with Progress(fleet.status):
                publish_paced(fleet, messages, args.rate, stop, pacing)
                restarter.join()
                for publisher in publishers.values():
                    publisher.wait_acked(60.0)
        produced = sum(fleet.produced.values())
        wait_stored(url, produced)
        records, duplicates = [], 0
        for worker in workers:
            worker.process.send_signal(signal.SIGTERM)
            worker.process.wait(60)
            result = worker.result()
            records += result["records"]
            duplicates += result["duplicates"]
        found = stored_by_gateway(url)
        lost = sum(max(0, n - found.get(code, (0, 0))[1]) for code, n in fleet.produced.items())
        stored = sum(distinct for _, distinct in found.values())
        duplicated = sum(rows - distinct for rows, distinct in found.values())
        latencies = first_commits(records)
        window = (restart.killed - WINDOW_BEFORE_S, restart.flushed)
        outside = [c - s for s, c in latencies if not window[0] <= s <= window[1]]
        overall = [c - s for s, c in latencies]
        elapsed = max(c for _, c in latencies) - min(s for s, _ in latencies)
        rate = stored / elapsed

        print(
            f"restart of {RESTARTED} ({restart.how}): "
            f"down {restart.started - restart.killed:.1f} s; "
            f"its gateways held {restart.held:,} unacknowledged messages, reconnected "
            f"{restart.reconnected - restart.started:.1f} s after the start, everything "
            f"acknowledged {restart.flushed - restart.started:.1f} s after it"
        )
        print(
            f"produced {produced:,} observations in "
            f"{sum(p.published_messages for p in publishers.values()):,} messages; stored "
            f"{stored:,}; lost {lost:,}; duplicate rows {duplicated:,}; duplicate deliveries "
            f"discarded by ingest {duplicates:,} observations"
        )
        print(
            f"publish -> commit: overall p50 {ms(percentile(overall, 0.5))}, p99 "
            f"{ms(percentile(overall, 0.99))}, max {ms(max(overall))} ({len(overall):,} "
            f"messages); outside the restart window ({window[1] - window[0]:.1f} s): p50 "
            f"{ms(percentile(outside, 0.5))}, p99 {ms(percentile(outside, 0.99))} "
            f"({len(outside):,} messages)"
        )
        print(
            f"region: {rate:,.0f} obs/s, p99 {percentile(outside, 0.99) * 1000:,.0f} ms, "
            f"lost {lost}, duplicated {duplicated}",
            flush=True,
        )
    finally:
        stop_workers(workers, region.ingest_url)
        region.stop()
        drop_database(args.database_url, name)
        if args.keep:
            print(f"brokers' files kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
