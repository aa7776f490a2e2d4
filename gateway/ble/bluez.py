"""The production backend: bleak's own platform backend (BlueZ on the Raspberry Pi)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from bleak.backends.client import BaseBleakClient
from bleak.backends.scanner import BaseBleakScanner

from gateway.ble.backend import BackendUnavailable
from gateway.devices.recovery import AdapterControl, CommandAdapterControl, NoAdapterControl


def _platform_adapter() -> AdapterControl:
    # Only BlueZ has the commands; elsewhere the watchdog's scanner restart must do.
    return CommandAdapterControl() if sys.platform.startswith("linux") else NoAdapterControl()


@dataclass(frozen=True, slots=True)
class PlatformBackend:
    scanner: type[BaseBleakScanner] | None = None
    client: type[BaseBleakClient] | None = None
    adapter: AdapterControl = field(default_factory=_platform_adapter)

    async def shutdown(self) -> None:
        """bleak releases BlueZ's adapter itself."""


def platform_backend(transport: str | None = None) -> PlatformBackend:
    """The ``bluez`` entry point. BlueZ picks its adapter itself: a transport is refused."""
    if transport:
        raise BackendUnavailable(
            f"the bluez backend takes no transport (got {transport!r}); a transport is for the "
            "bumble backend (--ble-backend bumble)"
        )
    return PlatformBackend()
