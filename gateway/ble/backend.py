"""What the gateway needs of a BLE backend, and finding one by name through its entry point.

Imports no Bluetooth stack itself: ``telemon gateway --help`` reads its names from here.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bleak.backends.client import BaseBleakClient
    from bleak.backends.scanner import BaseBleakScanner

    from gateway.devices.recovery import AdapterControl

ENTRY_POINT_GROUP = "telemon.ble_backends"
DEFAULT_BACKEND = "bluez"
BACKEND_ENV_VAR = "TELEMON_BLE_BACKEND"
TRANSPORT_ENV_VAR = "TELEMON_BUMBLE_TRANSPORT"
# A transport given without a backend name has always meant bumble's (BlueZ takes none).
TRANSPORT_BACKEND = "bumble"


class BleBackend(Protocol):
    """A Bluetooth stack as the gateway uses it."""

    @property
    def scanner(self) -> type[BaseBleakScanner] | None:
        """``BleakScanner(backend=...)``; None is bleak's platform default."""
        ...

    @property
    def client(self) -> type[BaseBleakClient] | None:
        """``BleakClient(device, backend=...)``; None is bleak's platform default."""
        ...

    @property
    def adapter(self) -> AdapterControl:
        """How the watchdog power-cycles this radio."""
        ...

    async def shutdown(self) -> None:
        """Release the radio when the gateway stops, so no task of the stack outlives it."""
        ...


BackendFactory = Callable[[str | None], BleBackend]
"""An entry point's target: the backend for a transport (where its radio is; None: its default)."""


class BackendUnavailable(RuntimeError):
    """The configured backend is unknown, or its packages are not installed."""


def backend_names() -> list[str]:
    return sorted(point.name for point in entry_points(group=ENTRY_POINT_GROUP))


def load_backend(name: str, transport: str | None = None) -> BleBackend:
    """The backend registered as ``name``, for ``transport``.

    A backend whose packages are missing names the extra that installs them, which is named
    after the backend (``pip install "telemon[bumble]"``).
    """
    points = {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}
    point = points.get(name)
    if point is None:
        known = ", ".join(sorted(points)) or "none: is telemon installed (pip install -e .)?"
        raise BackendUnavailable(f"no BLE backend named {name!r} (known: {known})")
    try:
        factory: BackendFactory = point.load()
    except ImportError as error:
        raise BackendUnavailable(
            f"the {name!r} BLE backend needs {error.name or 'a package'}, which is not installed:"
            f' pip install "telemon[{name}]"'
        ) from error
    return factory(transport)


def choose_backend(name: str | None, transport: str | None) -> BleBackend:
    """The backend named, else the one a transport implies, else bleak's platform default."""
    chosen = name or (TRANSPORT_BACKEND if transport else DEFAULT_BACKEND)
    return load_backend(chosen, transport)
