"""``telemon gateway ...``: provision this gateway, pair devices, run it.

Mounted by the main CLI as a sub-app (``app.add_typer(gateway_app, name="gateway")``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit, urlunsplit

import typer

from gateway.ble.backend import BACKEND_ENV_VAR, TRANSPORT_ENV_VAR
from gateway.run import (
    BACKEND_HELP,
    RUN_HELP,
    STATE_DIR_HELP,
    TRANSPORT_HELP,
    RunRefused,
    choose,
    default_state_dir,
    load_identity,
    releasing,
)
from gateway.run import main as run_gateway

if TYPE_CHECKING:
    from gateway.ble.backend import BleBackend
    from gateway.identity import GatewayIdentity

gateway_app = typer.Typer(
    name="gateway",
    help="The home gateway: reads the patient's Bluetooth health devices, publishes to MQTT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


StateDir = Annotated[Path | None, typer.Option(help=STATE_DIR_HELP)]
BleBackendName = Annotated[
    str | None, typer.Option("--ble-backend", envvar=BACKEND_ENV_VAR, help=BACKEND_HELP)
]
Transport = Annotated[str | None, typer.Option(envvar=TRANSPORT_ENV_VAR, help=TRANSPORT_HELP)]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """``mqtts://user:pw@host:8883`` -> (``mqtts://host:8883``, user, password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"{url!r} is not an mqtt:// or mqtts:// URL with a host")
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    bare = urlunsplit((parts.scheme, host, parts.path, "", ""))
    return bare, parts.username, parts.password


@gateway_app.command()
def provision(
    gateway_id: Annotated[str, typer.Option(help="This gateway's id (its MQTT user name).")],
    patient_id: Annotated[str, typer.Option(help="The patient this gateway serves.")],
    mqtt_url: Annotated[
        str,
        typer.Option(
            envvar="TELEMON_MQTT_URL",
            help="Broker URL, mqtts://host:8883 (a password in the URL is taken and stored "
            "separately).",
        ),
    ],
    password: Annotated[
        str | None, typer.Option(help="MQTT password (else --password-file, the URL, or prompt).")
    ] = None,
    password_file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="File holding the password.")
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="CA bundle for mqtts.")
    ] = None,
    system_id: Annotated[
        str | None,
        typer.Option(
            help="This gateway's EUI-64 system id, 00-1A-7D-FF-FE-DA-71-13 (default: derived "
            "from the Bluetooth adapter's address at the first start)."
        ),
    ] = None,
    state_dir: StateDir = None,
    force: Annotated[bool, typer.Option(help="Replace an existing identity.")] = False,
) -> None:
    """Write this gateway's identity (id, patient, broker, password) to the state directory."""
    from gateway.identity import IDENTITY_FILE, GatewayIdentity, Secret
    from telemon.checks import InvalidValue

    directory = state_dir or default_state_dir()
    try:
        url, user, url_password = split_credentials(mqtt_url)
    except ValueError as error:
        raise fail(str(error)) from None
    if user and user != gateway_id:
        raise fail(f"the URL logs in as {user!r}, but this gateway is {gateway_id!r}")
    if password_file is not None:
        password = password_file.read_text().strip()
    password = password or url_password
    if password is None:
        password = typer.prompt("MQTT password", hide_input=True, default="", show_default=False)
    if (directory / IDENTITY_FILE).exists() and not force:
        raise fail(f"{directory / IDENTITY_FILE} exists; pass --force to replace it")
    try:
        identity = GatewayIdentity(
            gateway_id=gateway_id,
            patient_id=patient_id,
            mqtt_url=url,
            mqtt_password=Secret(password) if password else None,
            mqtt_ca_file=ca_file.resolve() if ca_file else None,
            system_id=system_id.upper() if system_id else None,
        )
    except InvalidValue as error:
        field, reason = error.problems[0]
        raise fail(f"invalid {field}: {reason}") from None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    path = identity.save(directory)
    typer.echo(f"gateway {gateway_id} for patient {patient_id} provisioned: {path}")


def _load_identity(directory: Path) -> GatewayIdentity:
    try:
        return load_identity(directory)
    except RunRefused as error:
        raise fail(str(error)) from None


def _backend(name: str | None, transport: str | None) -> BleBackend:
    try:
        return choose(name, transport)
    except RunRefused as error:
        raise fail(str(error)) from None


@gateway_app.command()
def pair(
    seconds: Annotated[float, typer.Option(min=1.0, help="How long to scan.")] = 10.0,
    address: Annotated[
        str | None, typer.Option(help="Pair this address without asking (non-interactive).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for the device.")] = None,
    ble_backend: BleBackendName = None,
    transport: Transport = None,
    state_dir: StateDir = None,
) -> None:
    """Scan for health devices nearby and add one to this patient's pairing table.

    Put the device in pairing mode (or take a measurement) so that it advertises.
    """
    from gateway.devices import discover_health_devices
    from gateway.pairing import PairingTable
    from telemon.payload import PairedDevice

    directory = state_dir or default_state_dir()
    identity = _load_identity(directory)
    backend = _backend(ble_backend, transport)
    typer.echo(f"scanning for {seconds:g} s...")
    try:
        found = asyncio.run(
            releasing(backend, discover_health_devices(seconds, backend=backend.scanner))
        )
    except Exception as error:
        raise fail(f"cannot scan: {error}") from None
    if not found:
        raise fail("no health device is advertising nearby; take a measurement and retry", 1)
    for device in found:
        rssi = f"{device.rssi} dBm" if device.rssi is not None else "?"
        typer.echo(f"  {device.address}  {device.kind:<15} {rssi:>8}  {device.name or ''}")
    chosen = address or typer.prompt("address to pair")
    match = next((d for d in found if d.address.upper() == chosen.strip().upper()), None)
    if match is None:
        raise fail(f"{chosen} was not among the devices found")
    table = PairingTable.load(directory)
    paired = PairedDevice(
        address=match.address,
        kind=match.kind,
        patient_id=identity.patient_id,
        name=(name or match.name or None),
    )
    table.with_device(paired).save(directory)
    typer.echo(f"paired {paired.kind} {paired.address} with patient {paired.patient_id}")


@gateway_app.command(
    help=f"{RUN_HELP} Options: telemon gateway run --help.",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def run(context: typer.Context) -> None:
    # Listed here for the commands' help; ``telemon gateway run`` itself goes to gateway.run
    # straight from console.cli.main (and main below), without typer: see gateway.run.
    raise typer.Exit(run_gateway(context.args))


@gateway_app.command()
def status(state_dir: StateDir = None) -> None:
    """Show identity, paired devices, queue depth, glucose sync and rejected values."""
    from gateway.devices import RejectedLog, SyncStore
    from gateway.devices.rejected import REJECTED_FILE
    from gateway.outbox import Outbox
    from gateway.pairing import PairingTable
    from gateway.runtime import OUTBOX_FILE

    directory = state_dir or default_state_dir()
    identity = _load_identity(directory)
    table = PairingTable.load(directory)
    typer.echo(f"gateway {identity.gateway_id}, patient {identity.patient_id}")
    typer.echo(f"broker {identity.mqtt_url}")
    typer.echo(f"system id {identity.system_id or '(derived from the adapter at the next run)'}")
    typer.echo(f"pairing table revision {table.revision}: {len(table.devices)} device(s)")
    outbox = Outbox(directory / OUTBOX_FILE, identity.gateway_id)
    sync = SyncStore(outbox).snapshot()
    stats = outbox.stats()
    outbox.close()
    for device in table.devices:
        last = sync.get(device.address.upper())
        extra = f"  last glucose record {last}" if last is not None else ""
        typer.echo(f"  {device.address}  {device.kind:<15} {device.name or ''}{extra}")
    if stats.depth or stats.last_seq:
        typer.echo(
            f"outbox: {stats.depth} waiting, last seq {stats.last_seq}, evicted {stats.evicted}"
        )
    typer.echo(f"rejected values: {RejectedLog(directory / REJECTED_FILE).count()}")


def main() -> None:
    """Run the sub-app on its own (``python -m gateway.cli``); ``run`` without typer, as
    ``telemon gateway run`` (see gateway.run)."""
    if sys.argv[1:2] == ["run"]:
        raise SystemExit(run_gateway(sys.argv[2:]))
    gateway_app()


if __name__ == "__main__":
    main()
