"""A bleak backend running on bumble's Bluetooth host stack.

Why: CI and developer machines have no Bluetooth hardware, and feeding the gateway
hand-made Python objects in place of devices would prove nothing about how it
handles real ones. With this backend the gateway's unchanged bleak code
(``BleakScanner(backend=...)``, ``BleakClient(device, backend=...)``) scans, connects
and exchanges ATT packets through bumble's real host stack and link-layer controller
with simulated peripherals (bumble GATT servers sending the bytes real devices send),
all inside one process on a bumble `LocalLink`. The same backend can drive a real
HCI controller through a bumble transport spec.

In production on the Raspberry Pi nothing here is used: `select_backend()` returns
None unless ``TELEMON_BUMBLE_TRANSPORT`` is set, and bleak falls back to BlueZ.
"""

from .backend import select_backend
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
    "BumbleClient",
    "BumbleDeviceDetails",
    "BumbleScanner",
    "close_all_centrals",
    "create_link_device",
    "get_central",
    "in_process_link",
    "select_backend",
    "set_default_radio",
]
