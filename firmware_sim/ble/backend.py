"""The ``bumble`` BLE backend the gateway loads by name (entry point ``telemon.ble_backends``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bumble import hci

from .client import BumbleClient
from .radio import (
    IN_PROCESS,
    TRANSPORT_ENV_VAR,
    Radio,
    close_all_centrals,
    close_central,
    get_central,
    in_process_link,
    set_keystore,
)
from .scanner import BumbleScanner

__all__ = ["BumbleAdapterControl", "BumbleBackend", "bumble_backend", "select_backend"]

KEYSTORE_ENV_VAR = "TELEMON_BUMBLE_KEYSTORE"
"""A JSON file for the central's bonds (bumble's key store); unset: bonds live in memory."""


class BumbleAdapterControl:
    """Reset a bumble radio: power its central down; the next scan or connect powers it up."""

    def __init__(self, radio: Radio) -> None:
        self.radio = radio

    async def reset(self) -> bool:
        await close_central(self.radio)
        return True

    async def address(self) -> str:
        """A controller's public address (a USB dongle has one), else the static random address
        the central uses: stable while its key store keeps it."""
        device = (await get_central(self.radio)).device
        chosen = device.public_address
        if chosen == hci.Address.ANY:
            chosen = device.static_address
        return str(chosen.to_string(with_type_qualifier=False))


@dataclass(frozen=True, slots=True)
class BumbleBackend:
    """bleak on bumble's host stack, every scanner and client bound to one radio."""

    scanner: type[BumbleScanner]
    client: type[BumbleClient]
    adapter: BumbleAdapterControl

    async def shutdown(self) -> None:
        await close_all_centrals()


def bumble_backend(radio: Radio, *, keystore: Path | None = None) -> BumbleBackend:
    """The backend on ``radio``: an in-process `LocalLink` or a bumble transport spec.

    ``keystore``: the file the central keeps its bonds in, and so the address it made them with,
    across restarts (what BlueZ keeps under /var/lib/bluetooth on a Pi).
    """
    set_keystore(radio, keystore)
    return BumbleBackend(
        BumbleScanner.bound_to(radio), BumbleClient.bound_to(radio), BumbleAdapterControl(radio)
    )


def select_backend(transport: str | None = None) -> BumbleBackend:
    """The ``bumble`` entry point: the backend for ``transport``.

    ``transport`` (else the ``TELEMON_BUMBLE_TRANSPORT`` environment variable, else
    ``"local"``) is ``"local"`` for the in-process link shared with simulated devices, or a
    bumble transport spec (``tcp-client:127.0.0.1:9000``, ``usb:0``, ``serial:/dev/ttyUSB0``)
    for a controller bumble drives directly. ``TELEMON_BUMBLE_KEYSTORE`` names the bond file.
    """
    spec = (transport or os.environ.get(TRANSPORT_ENV_VAR, "")).strip() or IN_PROCESS
    keystore = os.environ.get(KEYSTORE_ENV_VAR, "").strip()
    return bumble_backend(
        in_process_link() if spec == IN_PROCESS else spec,
        keystore=Path(keystore) if keystore else None,
    )
