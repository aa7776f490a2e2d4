"""``telemon gateway run``: the long-lived gateway process, its options parsed without typer.

typer (0.29) coerces every command-line option, its parents' included, through a pydantic
``TypeAdapter``, and pydantic would then take a sixth of the gateway's memory (issue 19: RSS
< 60 MiB on the Pi). The other gateway commands (provision, pair, status) are short-lived and
stay typer commands in :mod:`gateway.cli`; this one parses its five options with argparse, and
``console.cli.main`` hands ``telemon gateway run`` to :func:`main` before typer starts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.ble.backend import BACKEND_ENV_VAR, TRANSPORT_ENV_VAR
from gateway.clock_check import DEFAULT_TIME_ZONE

if TYPE_CHECKING:
    from gateway.ble.backend import BleBackend
    from gateway.identity import GatewayIdentity
    from gateway.runtime import GatewayRuntime

T = TypeVar("T")

STATE_DIR_ENV = "TELEMON_GATEWAY_STATE_DIR"
TZ_ENV = "TELEMON_GATEWAY_TZ"

# The options' help, shared with the typer commands of gateway.cli.
STATE_DIR_HELP = (
    f"Where identity, pairing and queue live (default: ${STATE_DIR_ENV}, systemd's "
    "$STATE_DIRECTORY, /var/lib/telemon-gateway as root, else ~/.local/state/telemon-gateway)."
)
BACKEND_HELP = (
    "Bluetooth stack: 'bluez' (bleak's platform backend, the default) or 'bumble' (bumble's "
    "host stack: the simulated radio, or a controller it drives; needs the 'bumble' extra)."
)
TRANSPORT_HELP = (
    "Where the bumble backend's radio is, and implies --ble-backend bumble: 'local' "
    "(in-process simulated link) or a bumble transport spec such as usb:0 or "
    "tcp-client:127.0.0.1:9000."
)
RUN_HELP = "Run the gateway until SIGINT or SIGTERM. An unreachable broker is retried, never fatal."


class RunRefused(Exception):
    """The gateway cannot start as configured; the message says why (exit status 2)."""


def default_state_dir() -> Path:
    """$TELEMON_GATEWAY_STATE_DIR, else systemd's $STATE_DIRECTORY, else a per-user default."""
    if explicit := os.environ.get(STATE_DIR_ENV):
        return Path(explicit)
    if systemd := os.environ.get("STATE_DIRECTORY"):  # StateDirectory= in the unit
        return Path(systemd.split(":")[0])
    if os.geteuid() == 0:
        return Path("/var/lib/telemon-gateway")
    return Path.home() / ".local" / "state" / "telemon-gateway"


def load_identity(directory: Path) -> GatewayIdentity:
    """The gateway's identity, or :class:`RunRefused` saying what to do about it."""
    from gateway.identity import GatewayIdentity
    from telemon.checks import InvalidValue

    try:
        return GatewayIdentity.load(directory)
    except FileNotFoundError:
        raise RunRefused(
            f"no gateway identity in {directory}: run `telemon gateway provision` first"
        ) from None
    except InvalidValue as error:
        raise RunRefused(f"{directory}: {error}") from None


def choose(name: str | None, transport: str | None) -> BleBackend:
    from gateway.ble.backend import BackendUnavailable, choose_backend

    try:
        return choose_backend(name, transport)
    except BackendUnavailable as error:
        raise RunRefused(str(error)) from None


async def releasing(backend: BleBackend, coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return await coroutine
    finally:
        await backend.shutdown()


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    options = argparse.ArgumentParser(prog="telemon gateway run", description=RUN_HELP)
    options.add_argument(
        "--ble-backend", default=env(BACKEND_ENV_VAR), help=f"{BACKEND_HELP} [${BACKEND_ENV_VAR}]"
    )
    options.add_argument(
        "--transport",
        default=env(TRANSPORT_ENV_VAR),
        help=f"{TRANSPORT_HELP} [${TRANSPORT_ENV_VAR}]",
    )
    options.add_argument(
        "--tz",
        default=env(TZ_ENV, DEFAULT_TIME_ZONE),
        help=f"Time zone of the devices' clocks [${TZ_ENV}; default {DEFAULT_TIME_ZONE}].",
    )
    options.add_argument("--state-dir", type=Path, help=STATE_DIR_HELP)
    options.add_argument(
        "--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR [default INFO]."
    )
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """``telemon gateway run [OPTIONS]``: 0 once stopped by a signal, 2 if refused to start."""
    args = parser().parse_args(argv)
    try:
        run(
            ble_backend=args.ble_backend,
            transport=args.transport,
            tz=args.tz,
            state_dir=args.state_dir,
            log_level=args.log_level,
        )
    except RunRefused as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def run(
    *,
    ble_backend: str | None,
    transport: str | None,
    tz: str,
    state_dir: Path | None,
    log_level: str,
) -> None:
    from gateway.runtime import GatewayRuntime

    directory = state_dir or default_state_dir()
    load_identity(directory)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise RunRefused(f"unknown time zone {tz!r}") from None
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    backend = choose(ble_backend, transport)
    runtime = GatewayRuntime(directory, backend=backend, tz=tz)
    asyncio.run(releasing(backend, _run_until_signalled(runtime)))


async def _run_until_signalled(runtime: GatewayRuntime) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)
    await runtime.run(stop)
