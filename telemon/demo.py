"""``telemon demo``: the whole platform in one process tree, on embedded defaults.

Servers that are configured (``TELEMON_DATABASE_URL``, ``TELEMON_MQTT_URL``) are used as they
are; the others are started embedded, with their data under ``data_dir`` so that a second run
continues the first.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from dashboard.app import create_app
from dashboard.server import BackgroundServer
from ingest.migrate import migrate
from ingest.service import IngestService
from telemon.cohort import demo_cohort, seed
from telemon.config import Settings
from telemon.database import connect
from telemon.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from telemon.mqtt import BrokerAddress, probe


@dataclass(frozen=True, slots=True)
class DemoOptions:
    patients: int = 12
    speed: float = 1440.0
    duration: float | None = None  # seconds of real time; None: until Ctrl-C
    port: int | None = None


def run_demo(
    settings: Settings, options: DemoOptions, *, say: Callable[[str], None] = print
) -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    with contextlib.ExitStack() as services:
        database_url = settings.database_url
        if database_url is None:
            pg = EmbeddedPostgres(settings.data_dir / "postgres")
            say(f"Starting embedded PostgreSQL in {pg.data_dir} ...")
            database_url = pg.start()
            services.callback(pg.stop)
        mqtt_url = settings.mqtt_url
        shared_group = settings.ingest_shared_group
        if mqtt_url is None:
            broker = EmbeddedBroker()
            mqtt_url = broker.start()
            services.callback(broker.stop)
            shared_group = None  # the embedded broker has no shared subscriptions
            say(f"Started embedded MQTT broker at {mqtt_url}")
        else:
            probe(BrokerAddress.parse(mqtt_url))
        settings = settings.model_copy(
            update={
                "database_url": database_url,
                "mqtt_url": mqtt_url,
                "ingest_shared_group": shared_group,
                "ingest_metrics_port": 0,
            }
        )

        with connect(database_url) as conn:
            report = migrate(
                conn,
                retention=timedelta(days=settings.observation_retention_days),
                compress_after=timedelta(days=settings.compress_after_days),
            )
            applied = ", ".join(report.applied) or "nothing new"
            say(
                f"Schema at version {report.current_version} ({report.backend} storage); "
                f"applied: {applied}"
            )
            seed(
                conn,
                demo_cohort(options.patients),
                service_centre_phone=settings.service_centre_phone or "+393330000000",
            )

        ingest = IngestService(settings, client_id="telemon-demo-ingest", metrics_host="127.0.0.1")
        ingest.start()
        services.callback(ingest.stop)

        port = options.port or _port_or_free(settings.dashboard_host, settings.dashboard_port)
        dashboard = BackgroundServer(
            create_app(database_url, mqtt_url=mqtt_url), settings.dashboard_host, port
        )
        dashboard.start()
        services.callback(dashboard.stop)

        say("")
        say(f"  Dashboard: {dashboard.url}/")
        say("  Stop with Ctrl-C.")
        say("")
        _summarise_until(stop, database_url, options.duration)
    say("\nStopped cleanly.")


def _summarise_until(stop: threading.Event, database_url: str, duration: float | None) -> None:
    deadline = None if duration is None else time.monotonic() + duration
    interactive = sys.stdout.isatty()
    with connect(database_url, autocommit=True) as conn:
        while not stop.is_set():
            stored, open_alerts, sms = conn.execute(
                "SELECT (SELECT count(*) FROM observations),"
                " (SELECT count(*) FROM alerts WHERE state <> 'resolved'),"
                " (SELECT count(*) FROM notifications WHERE status IN ('sent', 'delivered'))"
            ).fetchone()
            line = f"readings stored {stored:>8}   alerts open {open_alerts:>4}   SMS sent {sms:>4}"
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
