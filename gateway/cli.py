"""``telemon gateway ...``: provision this gateway, pair devices, run it.

Mounted by the main CLI as a sub-app (``app.add_typer(gateway_app, name="gateway")``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer

from gateway.ble.backend import BACKEND_ENV_VAR, TRANSPORT_ENV_VAR
from gateway.clock_check import DEFAULT_TIME_ZONE

if TYPE_CHECKING:
    from gateway.ble.backend import BleBackend

T = TypeVar("T")

STATE_DIR_ENV = "TELEMON_GATEWAY_STATE_DIR"
TZ_ENV = "TELEMON_GATEWAY_TZ"

gateway_app = typer.Typer(
    name="gateway",
    help="The home gateway: reads the patient's Bluetooth health devices, publishes to MQTT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def default_state_dir() -> Path:
    """$TELEMON_GATEWAY_STATE_DIR, else systemd's $STATE_DIRECTORY, else a per-user default."""
    if explicit := os.environ.get(STATE_DIR_ENV):
        return Path(explicit)
    if systemd := os.environ.get("STATE_DIRECTORY"):  # StateDirectory= in the unit
        return Path(systemd.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/telemon-gateway")
    return Path.home() / ".local" / "state" / "telemon-gateway"


StateDir = Annotated[
    Path | None,
    typer.Option(
        help=f"Where identity, pairing and queue live (default: ${STATE_DIR_ENV}, systemd's "
        "$STATE_DIRECTORY, /var/lib/telemon-gateway as root, else ~/.local/state/telemon-gateway)."
    ),
]
BleBackendName = Annotated[
    str | None,
    typer.Option(
        "--ble-backend",
        envvar=BACKEND_ENV_VAR,
        help="Bluetooth stack: 'bluez' (bleak's platform backend, the default) or 'bumble' "
        "(bumble's host stack: the simulated radio, or a controller it drives; needs the "
        "'bumble' extra).",
    ),
]
Transport = Annotated[
    str | None,
    typer.Option(
        envvar=TRANSPORT_ENV_VAR,
        help="Where the bumble backend's radio is, and implies --ble-backend bumble: 'local' "
        "(in-process simulated link) or a bumble transport spec such as usb:0 or "
        "tcp-client:127.0.0.1:9000.",
    ),
]


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


def _load_identity(directory: Path):
    from gateway.identity import GatewayIdentity

    try:
        return GatewayIdentity.load(directory)
    except FileNotFoundError:
        raise fail(
            f"no gateway identity in {directory}: run `telemon gateway provision` first"
        ) from None


def _backend(name: str | None, transport: str | None) -> BleBackend:
    from gateway.ble.backend import BackendUnavailable, choose_backend

    try:
        return choose_backend(name, transport)
    except BackendUnavailable as error:
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
            _releasing(backend, discover_health_devices(seconds, backend=backend.scanner))
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


async def _releasing(backend: BleBackend, coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return await coroutine
    finally:
        await backend.shutdown()


@gateway_app.command()
def run(
    ble_backend: BleBackendName = None,
    transport: Transport = None,
    tz: Annotated[
        str, typer.Option(envvar=TZ_ENV, help="Time zone of the devices' clocks.")
    ] = DEFAULT_TIME_ZONE,
    state_dir: StateDir = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Run the gateway until SIGINT or SIGTERM. An unreachable broker is retried, never fatal."""
    from gateway.runtime import GatewayRuntime

    directory = state_dir or default_state_dir()
    _load_identity(directory)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise fail(f"unknown time zone {tz!r}") from None
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    backend = _backend(ble_backend, transport)
    runtime = GatewayRuntime(directory, backend=backend, tz=tz)
    asyncio.run(_releasing(backend, _run_until_signalled(runtime)))


async def _run_until_signalled(runtime) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    await runtime.run(stop)


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
    """Run the sub-app on its own (``python -m gateway.cli``)."""
    gateway_app()


if __name__ == "__main__":
    main()
