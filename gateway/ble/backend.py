"""Choose the bleak backend: bumble when a radio is configured, else bleak's platform default."""

from __future__ import annotations

import os

from .client import BumbleClient
from .radio import IN_PROCESS, TRANSPORT_ENV_VAR, in_process_link
from .scanner import BumbleScanner

__all__ = ["select_backend"]


def select_backend(
    transport: str | None = None,
) -> tuple[type[BumbleScanner], type[BumbleClient]] | None:
    """The ``(scanner, client)`` backends to pass to bleak, or None for bleak's default.

    ``transport`` (else the ``TELEMON_BUMBLE_TRANSPORT`` environment variable) is
    ``"local"`` for the in-process link shared with simulated devices, or a bumble
    transport spec (``tcp-client:127.0.0.1:9000``, ``usb:0``, ``serial:/dev/ttyUSB0``)
    for a controller bumble drives directly. Unset, the gateway uses bleak's own
    backend: BlueZ on the Raspberry Pi.

        backends = select_backend()
        scanner_backend, client_backend = backends or (None, None)
        BleakScanner(backend=scanner_backend)
    """
    spec = transport if transport is not None else os.environ.get(TRANSPORT_ENV_VAR, "")
    spec = spec.strip()
    if not spec:
        return None
    radio = in_process_link() if spec == IN_PROCESS else spec
    return BumbleScanner.bound_to(radio), BumbleClient.bound_to(radio)
