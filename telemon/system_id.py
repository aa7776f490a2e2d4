"""IEEE EUI-64 system ids: the gateway's (its PHG identity) and each device's (issue 19).

The HL7 PHD IG identifies a PHD and a PHG by its IEEE 11073 System-Id, an EUI-64, written as
eight upper-case hex bytes joined by dashes ("FE-ED-AB-EE-DE-AD-BE-EF"). That is the form on the
wire (the ``status`` message), in the store and in FHIR.

A Bluetooth device that has one exposes it as Device Information's System ID (0x2A23). A
gateway derives its own from its adapter's 48-bit Bluetooth address as IEEE maps an EUI-48 into
the EUI-64 space, and as the Device Information Service does it too: the 24-bit OUI, FF-FE,
then the 24 bits the company assigned.
"""

from __future__ import annotations

import re
from typing import Final

SYSTEM_ID_PATTERN: Final = r"^[0-9A-F]{2}(-[0-9A-F]{2}){7}$"
# The PHD IG's value for a device that has no system id (most BLE health devices).
NO_SYSTEM_ID: Final = "00-00-00-00-00-00-00-00"
# What IEEE inserts between an EUI-48's OUI and its extension to make it an EUI-64.
EUI48_IN_EUI64: Final = b"\xff\xfe"
_EUI48 = re.compile(r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$")


def format_system_id(raw: bytes) -> str:
    """Eight bytes, most significant (the OUI's first) first, as the IG writes them."""
    if len(raw) != 8:
        raise ValueError(f"a system id is 8 bytes, got {len(raw)}")
    return "-".join(f"{b:02X}" for b in raw)


def from_eui48(address: str) -> str:
    """The EUI-64 of a 48-bit address ("00:1A:7D:DA:71:13" -> "00-1A-7D-FF-FE-DA-71-13")."""
    if not _EUI48.match(address):
        raise ValueError(f"{address!r} is not a 48-bit address (six hex bytes)")
    raw = bytes.fromhex(address.replace(":", "").replace("-", ""))
    return format_system_id(raw[:3] + EUI48_IN_EUI64 + raw[3:])


def is_known(system_id: str | None) -> bool:
    """Whether ``system_id`` names a device: all zeros is the IG's 'none'."""
    return system_id is not None and system_id != NO_SYSTEM_ID
