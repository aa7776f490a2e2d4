"""The ``telemon`` command: one subcommand per service, plus ``demo`` and ``migrate``."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from telemon.config import Settings, get_settings
from telemon.database import DatabaseUnavailable, connect
from telemon.mqtt import BrokerAddress, BrokerUnavailable, probe

app = typer.Typer(
    name="telemon",
    help="Remote patient telemonitoring: home gateway, ingest, alerts and dashboard.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class ConfigurationError(RuntimeError):
    pass


def _require(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    if not value:
        raise ConfigurationError(
            f"TELEMON_{name.upper()} is not set. Set it in the environment or in .env "
            "(see .env.example), or run `telemon demo`, which starts embedded servers."
        )
    return value


@app.command()
def demo(
    patients: Annotated[int, typer.Option(min=1, max=500, help="Simulated patients.")] = 12,
    speed: Annotated[
        float, typer.Option(min=1.0, help="Simulated seconds per real second.")
    ] = 1440.0,
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
    from telemon.demo import DemoOptions, run_demo

    settings = get_settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    run_demo(settings, DemoOptions(patients=patients, speed=speed, duration=duration, port=port))


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema, then exit."""
    from ingest.migrate import migrate as apply

    settings = get_settings()
    with connect(_require(settings, "database_url")) as conn:
        report = apply(
            conn,
            retention=timedelta(days=settings.observation_retention_days),
            compress_after=timedelta(days=settings.compress_after_days),
        )
    applied = ", ".join(report.applied) or "nothing new"
    typer.echo(
        f"schema at version {report.current_version} ({report.backend} storage); applied: {applied}"
    )


@app.command()
def dashboard(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve the GP and service-centre dashboard."""
    import uvicorn

    from dashboard.app import create_app

    settings = get_settings()
    database_url = _require(settings, "database_url")
    connect(database_url).close()  # fail now, clearly, rather than on the first request
    uvicorn.run(
        create_app(database_url, mqtt_url=settings.mqtt_url),
        host=host or settings.dashboard_host,
        port=port or settings.dashboard_port,
        log_level="info",
    )


@app.command()
def ingest(
    client_id: Annotated[
        str | None,
        typer.Option(help="Stable MQTT client id of this worker (default: telemon-ingest-HOST)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Store the gateways' observations; run several to share the load."""
    from ingest.service import IngestService

    settings = get_settings()
    _check_servers(settings)
    _configure_logging(log_level)
    IngestService(settings, client_id=client_id).run_forever()


def _check_servers(settings: Settings) -> None:
    """Fail now, with a message a person can act on, rather than deep inside a service."""
    connect(_require(settings, "database_url")).close()
    probe(BrokerAddress.parse(_require(settings, "mqtt_url")))


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    try:
        app()
    except (DatabaseUnavailable, BrokerUnavailable, ConfigurationError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
