"""``telemon demo``: the whole platform in one process tree, on embedded defaults.

Servers that are configured (``TELEMON_DATABASE_URL``, ``TELEMON_MQTT_URL``) are used as they
are; the others are started embedded, with their data under ``data_dir`` so that a second run
continues the first.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from alerts.engine import AlertsService
from console.cohort import (
    DEMO_SERVICE_CENTRE_PHONE,
    Cohort,
    demo_cohort,
    refuse_real_staff,
    seed,
)
from console.discharged import discharged_patient, seed_discharged
from console.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from console.fleet import SimulatedFleet, load_resume_points
from dashboard.accounts import set_password
from dashboard.app import create_app
from dashboard.server import BackgroundServer
from firmware_sim.clock import CatchUpClock
from ingest.service import IngestService
from telemon.acl import INGEST_USER, SERVER_USER, SERVICE_USERS, gateway_id_problem
from telemon.background import BackgroundLoop
from telemon.config import Settings
from telemon.database import connect, one_row
from telemon.mqtt import BrokerAddress, probe
from telemon.store.migrate import migrate_database

# The demo's patients were enrolled six days ago and their last five days are replayed at
# ``speed``, so the scenarios' deteriorations show within a minute or two; then time runs at
# its real pace (see firmware_sim.clock.CatchUpClock).
ENROLLED_AGO = timedelta(days=6)
REPLAYED = timedelta(days=5)
DEMO_PASSWORD = "telemon-demo"
# The embedded database's services connect as production's do: as a member of telemon_app, no
# superuser and owner of nothing (docs/deployment.md, "Database roles").
DEMO_SERVICE_ROLE = "telemon_demo_service"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    patients: int = 12
    speed: float = 7200.0
    duration: float | None = None  # seconds of real time; None: until Ctrl-C
    port: int | None = None


@contextlib.contextmanager
def _logging_to(path: Path):
    """Every component's log in one file, so the console keeps the summary line readable.

    At 7200x a second of network latency is two simulated hours, so the simulated devices'
    clocks look wrong to their gateways and bumble reports links torn down mid-exchange at
    shutdown: worth keeping, not worth scrolling the demo's console.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # amqtt's session state machine logs every transition at INFO.
    logging.getLogger("transitions").setLevel(logging.WARNING)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
        handler.close()


def run_demo(
    settings: Settings, options: DemoOptions, *, say: Callable[[str], None] = print
) -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    with contextlib.ExitStack() as services:
        log_file = services.enter_context(_logging_to(settings.data_dir / "demo.log"))
        database_url = settings.database_url
        if database_url is None:
            pg = EmbeddedPostgres(settings.data_dir / "postgres")
            say(f"Starting embedded PostgreSQL in {pg.data_dir} ...")
            database_url = pg.start()
            services.callback(pg.stop)
        report = migrate_database(
            database_url,
            retention=timedelta(days=settings.observation_retention_days),
            compress_after=timedelta(days=settings.compress_after_days),
            backend_setting=settings.storage_backend,
        )
        applied = ", ".join(report.applied) or "nothing new"
        say(
            f"Schema at version {report.current_version} ({report.backend} storage: "
            f"{report.reason}); applied: {applied}"
        )
        port = options.port or _port_or_free(settings.dashboard_host, settings.dashboard_port)
        dashboard_url = f"http://{settings.dashboard_host}:{port}"
        centre_phone = settings.service_centre_phone or DEMO_SERVICE_CENTRE_PHONE
        with connect(database_url) as conn:
            cohort, enrolled_at = seed_demo_cohort(conn, options.patients, centre_phone)
            # Monitoring that ended before these patients' days: its closing report to read.
            discharged_id = seed_discharged(
                conn,
                cohort,
                before=min(enrolled_at.values()),
                service_centre_phone=centre_phone,
                public_url=dashboard_url,
            )
            if settings.database_url is None:
                database_url = service_role_url(conn, database_url)
        broker = _broker(settings, cohort, services, say)
        settings = settings.model_copy(
            update={
                "database_url": database_url,
                "mqtt_url": broker.server_url,
                "ingest_shared_group": broker.shared_group,
                "ingest_metrics_port": 0,
            }
        )
        fleet_dir = settings.data_dir / "gateways"
        clock = simulation_clock(fleet_dir, options.speed)

        ingest = IngestService(
            settings.model_copy(update={"mqtt_url": broker.ingest_url}),
            client_id="telemon-demo-ingest",
            metrics_host="127.0.0.1",
        )
        ingest.start()
        services.callback(ingest.stop)

        settings = settings.model_copy(update={"public_url": dashboard_url})

        # Escalation timers and missing-data rules follow simulated time, like the readings.
        engine = AlertsService(settings, clock=clock.now, tick=10.0, health_port=None)
        engine.start()
        services.callback(engine.stop)

        fleet = SimulatedFleet(
            cohort,
            mqtt_url=broker.gateway_url,
            gateway_passwords=broker.gateway_passwords,
            state_dir=fleet_dir,
            clock=clock,
            enrolled_at=enrolled_at,
        )
        simulation = BackgroundLoop(fleet.run, name="simulated-homes")
        simulation.start()
        services.callback(simulation.stop)

        dashboard = BackgroundServer(
            create_app(database_url, mqtt_url=broker.server_url, public_url=dashboard_url),
            settings.dashboard_host,
            port,
        )
        dashboard.start()
        services.callback(dashboard.stop)

        say("")
        say(f"  Dashboard: {dashboard.url}/")
        say(f"  Logins (password {DEMO_PASSWORD}):")
        for member in cohort.staff:
            say(f"    {member.username:<14} {member.role}")
        say(
            f"  {len(cohort.patients)} simulated patients; the last {REPLAYED.days} days replay at "
            f"{options.speed:g}x, then real time."
        )
        discharged = discharged_patient(cohort)
        say(
            f"  {discharged.given_name} {discharged.family_name} ({discharged.code}) was "
            f"discharged before them; {discharged.gp_username}'s closing report: "
            f"{dashboard.url}/patients/{discharged_id}/closing-report"
        )
        say(f"  Log: {log_file}")
        say("  Stop with Ctrl-C.")
        say("")
        _summarise_until(stop, database_url, options.duration)
    say("\nStopped cleanly.")


@dataclass(frozen=True, slots=True)
class DemoBroker:
    """How each of the demo's components reaches the broker."""

    ingest_url: str
    server_url: str  # the alerts engine and the dashboard (compose.yaml's "server" user)
    gateway_url: str  # without a login: each gateway logs in as itself
    gateway_passwords: Mapping[str, str]
    shared_group: str | None


def _broker(
    settings: Settings, cohort: Cohort, services: contextlib.ExitStack, say: Callable[[str], None]
) -> DemoBroker:
    """The configured broker as it is, or an embedded one that only this run's components can use.

    The embedded broker listens on loopback, knows one login per component with a password made
    for this run (a simulated gateway keeps its own in its identity file, mode 0600, as a real
    one does), and enforces the shipped Mosquitto's ACL.
    """
    if settings.mqtt_url is not None:
        probe(BrokerAddress.parse(settings.mqtt_url))
        url = settings.mqtt_url
        return DemoBroker(url, url, url, {}, settings.ingest_shared_group)
    gateway_ids = [patient.gateway_code for patient in cohort.patients]
    broker = EmbeddedBroker(logins=run_logins(gateway_ids))
    broker.start()
    services.callback(broker.stop)
    say(
        f"Started embedded MQTT broker at {broker.url}; it requires a login: "
        f"per-run passwords for ingest, server and each of {len(gateway_ids)} gateways"
    )
    return DemoBroker(
        ingest_url=broker.url_for(INGEST_USER),
        server_url=broker.url_for(SERVER_USER),
        gateway_url=broker.url,
        gateway_passwords={gw: broker.logins[gw] for gw in gateway_ids},
        shared_group=None,  # the embedded broker has no shared subscriptions
    )


def run_logins(gateway_ids: list[str]) -> dict[str, str]:
    """A new random password for each service user and gateway, for one run of the demo."""
    for gateway_id in gateway_ids:
        if (problem := gateway_id_problem(gateway_id)) is not None:
            raise ValueError(problem)
    return {user: secrets.token_urlsafe(24) for user in (*SERVICE_USERS, *gateway_ids)}


def seed_demo_cohort(
    conn: psycopg.Connection, patients: int, service_centre_phone: str
) -> tuple[Cohort, dict[str, datetime]]:
    """The demo's people, with demo passwords; returns them and each patient's enrolment.

    Refuses (DemoRefused) a database that has staff of its own, before writing anything.
    """
    cohort = demo_cohort(patients)
    refuse_real_staff(conn, cohort)
    seed(
        conn,
        cohort,
        service_centre_phone=service_centre_phone,
        enrolled_at=datetime.now(UTC) - ENROLLED_AGO,
    )
    without_password = {
        row[0] for row in conn.execute("SELECT username FROM staff WHERE password_hash IS NULL")
    }
    for member in cohort.staff:
        if member.username in without_password:
            set_password(conn, member.username, DEMO_PASSWORD)
    enrolled_at: dict[str, datetime] = dict(
        conn.execute(
            "SELECT code, enrolled_at FROM patients WHERE code = ANY(%s)",
            ([p.code for p in cohort.patients],),
        ).fetchall()
    )
    return cohort, enrolled_at


def service_role_url(conn: psycopg.Connection, database_url: str) -> str:
    """``database_url`` as the demo's service role, made on first use; the embedded server
    trusts local logins, so it needs no password."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DEMO_SERVICE_ROLE,))
    if exists.fetchone() is None:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE telemon_app").format(
                sql.Identifier(DEMO_SERVICE_ROLE)
            )
        )
    parts = urlsplit(database_url)
    server = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{DEMO_SERVICE_ROLE}@{server}"))


def simulation_clock(fleet_dir: Path, speed: float) -> CatchUpClock:
    """Replay from where the last run stopped, or from the last days on a first run."""
    resume = load_resume_points(fleet_dir)
    return CatchUpClock(min(resume.values(), default=datetime.now(UTC) - REPLAYED), speed=speed)


def _summarise_until(stop: threading.Event, database_url: str, duration: float | None) -> None:
    deadline = None if duration is None else time.monotonic() + duration
    interactive = sys.stdout.isatty()
    with connect(database_url, autocommit=True) as conn:
        while not stop.is_set():
            stored, episodes, sms = one_row(
                conn.execute(
                    "SELECT (SELECT count(*) FROM observations),"
                    " (SELECT count(*) FROM episodes WHERE state <> 'resolved'),"
                    " (SELECT count(*) FROM notifications"
                    "   WHERE status IN ('sent', 'delivered', 'outboxed'))"
                )
            )
            line = f"readings stored {stored:>8}   episodes open {episodes:>4}   SMS sent {sms:>4}"
            print(f"\r{line}", end="", flush=True) if interactive else print(line, flush=True)
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(1.0 if interactive else 5.0)


def _port_or_free(host: str, port: int) -> int:
    import socket

    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return free_port(host)
    return port
