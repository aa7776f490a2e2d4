"""A bleak backend running on bumble's Bluetooth host stack.

Why: CI and developer machines have no Bluetooth hardware, and feeding the gateway
hand-made Python objects in place of devices would prove nothing about how it
handles real ones. With this backend the gateway's unchanged bleak code
(``BleakScanner(backend=...)``, ``BleakClient(device, backend=...)``) scans, connects
and exchanges ATT packets through bumble's real host stack and link-layer controller
with simulated peripherals (bumble GATT servers sending the bytes real devices send),
all inside one process on a bumble `LocalLink`. The same backend can drive a real
HCI controller through a bumble transport spec.

The gateway never imports this package: it loads the backend by name, ``bumble``, through
the ``telemon.ble_backends`` entry point (`select_backend`), when configured to
(``telemon gateway run --ble-backend bumble``, or a ``--transport``); on the Raspberry Pi it
uses ``bluez`` and bumble need not be installed.
"""

from .backend import BumbleAdapterControl, BumbleBackend, bumble_backend, select_backend
from .client import BumbleClient
from .radio import (
    IN_PROCESS,
    TRANSPORT_ENV_VAR,
    close_all_centrals,
    create_link_device,
    get_central,
    in_process_link,
    set_default_radio,
)
from .scanner import BumbleDeviceDetails, BumbleScanner

__all__ = [
    "IN_PROCESS",
    "TRANSPORT_ENV_VAR",
    "BumbleAdapterControl",
    "BumbleBackend",
    "BumbleClient",
    "BumbleDeviceDetails",
    "BumbleScanner",
    "bumble_backend",
    "close_all_centrals",
    "create_link_device",
    "get_central",
    "in_process_link",
    "select_backend",
    "set_default_radio",
]
