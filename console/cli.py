"""The ``telemon`` command: one subcommand per service, plus ``demo`` and ``migrate``.

Each command imports what it runs when it runs: ``telemon --help`` and ``telemon gateway ...``
work in a gateway-only install (``pip install "telemon[gateway]"``), which has none of the
servers' packages (no psycopg, no pydantic-settings for ``telemon.config``).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec

import typer

if TYPE_CHECKING:
    from telemon.config import Settings
    from telemon.store.migrate import MigrationReport

app = typer.Typer(
    name="telemon",
    help="Remote patient telemonitoring: home gateway, ingest, alerts and dashboard.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class ConfigurationError(RuntimeError):
    pass


P = ParamSpec("P")

# Options shared by the commands that run simulated patients.
Patients = Annotated[int, typer.Option(min=1, max=500, help="Simulated patients.")]
Speed = Annotated[
    float,
    typer.Option(min=1.0, help="Simulated seconds per real second while replaying the last days."),
]


def _expected_failures() -> tuple[type[Exception], ...]:
    """What a command explains in one line; imported only once a command has failed."""
    from console.cohort import DemoRefused
    from telemon.config import SettingFileError
    from telemon.database import DatabaseUnavailable
    from telemon.mqtt import BrokerUnavailable
    from telemon.store.backend import BackendUnusable

    return (
        DatabaseUnavailable,
        BrokerUnavailable,
        ConfigurationError,
        BackendUnusable,
        SettingFileError,
        DemoRefused,
    )


def explained(function: Callable[P, None]) -> Callable[P, None]:
    """The command with its expected failures printed as one clear line, exit status 2."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            function(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, _expected_failures()):
                raise
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None

    return wrapper


def command(function: Callable[P, None]) -> Callable[P, None]:
    """Register a command whose expected failures print one clear line and exit 2."""
    return app.command()(explained(function))


def _load_settings() -> Settings:
    """The settings, or one line per refused value naming its variable."""
    from pydantic import ValidationError

    from telemon.config import Settings

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"TELEMON_{'_'.join(str(part) for part in error['loc']).upper()}: "
            f"{error['msg'].removeprefix('Value error, ')}"
            for error in exc.errors()
        )
        raise ConfigurationError(f"invalid settings: {problems}") from None


def _require(settings: Settings, name: str) -> str:
    value: str | None = getattr(settings, name)
    if not value:
        raise ConfigurationError(
            f"TELEMON_{name.upper()} is not set. Set it in the environment or in .env "
            "(see .env.example), or run `telemon demo`, which starts embedded servers."
        )
    return value


@command
def demo(
    patients: Patients = 12,
    speed: Speed = 7200.0,
    duration: Annotated[
        float | None, typer.Option(min=1.0, help="Stop after this many real seconds.")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Dashboard port (default: 8000 or free).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where embedded servers keep their data.")
    ] = None,
) -> None:
    """Run the whole platform locally on embedded defaults and print the dashboard URL."""
    from console.demo import DemoOptions, run_demo

    settings = _load_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    run_demo(settings, DemoOptions(patients=patients, speed=speed, duration=duration, port=port))


@command
def migrate(
    migrations_dir: Annotated[
        Path | None,
        typer.Option(
            help="Apply the migrations in this directory instead of the installed ones "
            "(to try a new migration on a copy of the database).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Create or upgrade the database schema, say which storage backend and why, then exit."""
    from telemon.store.migrate import PACKAGED_MIGRATIONS, MigrationError, migrate_database

    settings = _load_settings()
    try:
        report = migrate_database(
            _require(settings, "database_url"),
            retention=timedelta(days=settings.observation_retention_days),
            compress_after=timedelta(days=settings.compress_after_days),
            backend_setting=settings.storage_backend,
            source=migrations_dir or PACKAGED_MIGRATIONS,
        )
    except MigrationError as exc:
        raise ConfigurationError(str(exc)) from None
    for line in migration_summary(report):
        typer.echo(line)


def migration_summary(report: MigrationReport) -> list[str]:
    """What ``telemon migrate`` prints: backend and why, schema, policies, extension, server."""
    applied = ", ".join(report.applied) or "nothing new"
    lines = [
        f"storage backend: {report.backend}; reason: {report.reason}",
        f"schema at version {report.current_version} ({report.backend} storage); "
        f"applied: {applied}",
        "storage policies: " + ("; ".join(report.policy_changes) or "unchanged"),
    ]
    if report.extension_update is not None:
        update = report.extension_update
        lines.append(
            f"timescaledb extension: {update.old_version} -> {update.new_version}"
            if update.changed
            else f"timescaledb extension: {update.new_version} (up to date)"
        )
    lines += [f"server {message}" for message in report.server_messages]
    return lines


@command
def dashboard(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the GP and service-centre dashboard."""
    import uvicorn

    from dashboard.app import create_app
    from dashboard.server import uvicorn_config
    from telemon.database import connect

    settings = _load_settings()
    database_url = _require(settings, "database_url")
    connect(database_url).close()  # fail now, clearly, rather than on the first request
    config = uvicorn_config(
        create_app(database_url, mqtt_url=settings.mqtt_url),
        host or settings.dashboard_host,
        port or settings.dashboard_port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level="info",
    )
    uvicorn.Server(config).run()


@command
def ingest(
    client_id: Annotated[
        str | None,
        typer.Option(help="Stable MQTT client id of this worker (default: telemon-ingest-HOST)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Store the gateways' observations; run several to share the load."""
    from ingest.service import IngestService

    settings = _load_settings()
    _check_servers(settings)
    _configure_logging(log_level)
    IngestService(settings, client_id=client_id).run_forever()


alerts_app = typer.Typer(
    invoke_without_command=True,
    help="Evaluate every patient's care protocol, keep the alerts and send their SMS.",
)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
@explained
def alerts(
    ctx: typer.Context,
    tick: Annotated[
        float, typer.Option(min=1.0, help="Seconds between passes over every patient.")
    ] = 60.0,
    health_port: Annotated[int, typer.Option(help="Port of GET /healthz.")] = 9465,
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate everyone once, print a summary, exit.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Evaluate every patient's care protocol, keep the alerts and send their SMS."""
    if ctx.invoked_subcommand is not None:
        return
    from alerts.engine import AlertsService, Engine, system_clock
    from telemon.database import connect, one_row

    settings = _load_settings()
    _configure_logging(log_level)
    with connect(_require(settings, "database_url"), autocommit=True) as conn:
        if one_row(conn.execute("SELECT to_regclass('alert_rule_state') IS NULL"))[0]:
            raise ConfigurationError(
                "the database schema is not up to date: run `telemon migrate` first"
            )
        if once:
            report = Engine(conn, settings).evaluate(system_clock())
            done = report.applied
            typer.echo(
                f"{report.patients} patients, {report.readings} readings: "
                f"load {report.load_seconds:.3f} s, compute {report.compute_seconds:.3f} s, "
                f"apply {report.apply_seconds:.3f} s; findings opened {done.opened}, "
                f"worsened {done.worsened}, resolved {done.resolved}; episodes opened "
                f"{done.episode.opened}, escalated {done.episode.escalated}, "
                f"resolved {done.episode.resolved}; notifications {done.notifications}"
            )
            return
    AlertsService(settings, tick=tick, health_port=health_port).run_forever()


@alerts_app.command()
@explained
def replay(
    protocol: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The candidate protocol (TOML).")
    ],
    start: Annotated[
        datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day (UTC).")
    ],
    end: Annotated[
        datetime, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day, included (UTC).")
    ],
    patients: Annotated[
        list[str] | None,
        typer.Option(help="Patient codes, repeated or comma-separated (default: everyone)."),
    ] = None,
    every: Annotated[str, typer.Option(help="Time between evaluations, e.g. 10m, 30m.")] = "30m",
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list the patient-weeks where both agree.")
    ] = False,
) -> None:
    """What a changed protocol would have opened, beside the current one.

    Both are replayed over the stored readings and compared per patient and week. Nothing is
    written and nobody is texted.
    """
    from alerts.protocol import parse_duration
    from alerts.replay_command import ReplayError, ReplayRequest, run_replay
    from telemon.database import connect

    settings = _load_settings()
    codes = [c.strip() for item in patients or () for c in item.split(",") if c.strip()]
    request = ReplayRequest(
        candidate=protocol,
        start=start.replace(tzinfo=UTC),
        end=end.replace(tzinfo=UTC) + timedelta(days=1),
        patient_codes=tuple(codes),
        every=timedelta(seconds=parse_duration(every)),
        show_all=show_all,
    )
    with connect(_require(settings, "database_url")) as conn:
        try:
            for line in run_replay(conn, request):
                typer.echo(line)
        except ReplayError as exc:
            raise ConfigurationError(str(exc)) from None


@command
def sim(
    patients: Patients = 12,
    speed: Speed = 7200.0,
    state_dir: Annotated[
        Path | None, typer.Option(help="Where the simulated gateways keep their state.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "WARNING",
) -> None:
    """Simulated patients at home, with their devices and the real gateway software."""
    import asyncio
    import signal

    from console.cohort import DEMO_SERVICE_CENTRE_PHONE, demo_cohort
    from console.demo import seed_demo_cohort, simulation_clock
    from console.fleet import SimulatedFleet
    from console.sim_login import FleetLoginError, fleet_login
    from telemon.database import connect
    from telemon.mqtt import BrokerAddress

    settings = _load_settings()
    _check_servers(settings)
    _configure_logging(log_level)
    mqtt_url = _require(settings, "mqtt_url")
    # Checked before seeding: a login that cannot publish would leave demo people and no data.
    try:
        login = fleet_login(mqtt_url, [p.gateway_code for p in demo_cohort(patients).patients])
    except FleetLoginError as exc:
        raise ConfigurationError(str(exc)) from None
    with connect(_require(settings, "database_url")) as conn:
        cohort, enrolled_at = seed_demo_cohort(
            conn, patients, settings.service_centre_phone or DEMO_SERVICE_CENTRE_PHONE
        )
    fleet_dir = state_dir or settings.data_dir / "gateways"
    fleet = SimulatedFleet(
        cohort,
        mqtt_url=login.broker_url,
        gateway_passwords=login.gateway_passwords,
        state_dir=fleet_dir,
        clock=simulation_clock(fleet_dir, speed),
        enrolled_at=enrolled_at,
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await fleet.run(stop)

    # The broker's address without the gateway's password, which the URL carries.
    broker = BrokerAddress.parse(mqtt_url)
    typer.echo(f"{len(cohort.patients)} simulated patients publishing to {broker}")
    asyncio.run(run())


audit_app = typer.Typer(
    no_args_is_help=True,
    help="The audit log of every access to patients' data: its hash chain and its retention.",
)
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
@explained
def audit_verify() -> None:
    """Recompute the audit log's hash chain; exit 1 and name the first broken row if any."""
    from telemon.database import connect
    from telemon.store.audit_chain import verify

    settings = _load_settings()
    with connect(_require(settings, "database_url"), autocommit=True) as conn:
        try:
            result = verify(conn)
        except LookupError as exc:
            raise ConfigurationError(str(exc)) from None
    span = f" ({result.first_seq}..{result.last_seq})" if result.checked else ""
    typer.echo(
        f"{result.checked} rows checked{span}; head at row {result.head_seq}, "
        f"hash {result.head_hash.hex()}; rows up to {result.pruned_seq} removed by retention"
    )
    if result.broken is None:
        typer.echo("chain intact")
        return
    where = f" (id {result.broken.row_id})" if result.broken.row_id is not None else ""
    typer.secho(
        f"BROKEN at row {result.broken.seq}{where}: {result.broken.reason}",
        fg=typer.colors.RED,
        err=True,
    )
    raise typer.Exit(1)


@audit_app.command("prune")
@explained
def audit_prune() -> None:
    """Apply the audit log's own retention now (TELEMON_AUDIT_RETENTION_MONTHS, at least 24);
    the ingest service's housekeeping applies it hourly."""
    from telemon.database import connect
    from telemon.store.audit_chain import apply_retention

    settings = _load_settings()
    with connect(_require(settings, "database_url"), autocommit=True) as conn:
        removed = apply_retention(conn, settings.audit_retention_months)
    typer.echo(f"{removed} audit rows older than {settings.audit_retention_months} months removed")


def _check_servers(settings: Settings) -> None:
    """Fail now, with a message a person can act on, rather than deep inside a service."""
    from telemon.database import connect
    from telemon.mqtt import BrokerAddress, probe

    connect(_require(settings, "database_url")).close()
    probe(BrokerAddress.parse(_require(settings, "mqtt_url")))


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def _mount_gateway() -> None:
    from gateway.cli import gateway_app

    app.add_typer(gateway_app, name="gateway", help="The home gateway.")


_mount_gateway()


def main() -> None:
    if sys.argv[1:3] == ["gateway", "run"]:
        # The long-lived gateway process starts without typer, which would load pydantic for
        # its options: a sixth of the gateway's memory (gateway.run).
        from gateway.run import main as run_gateway

        raise SystemExit(run_gateway(sys.argv[3:]))
    app()
