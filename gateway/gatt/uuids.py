"""Characteristic UUIDs: the assigned numbers this package understands, and UUID spelling."""

from __future__ import annotations

import re
from enum import IntEnum

# A SIG 16-bit UUID is shorthand for this 128-bit form (Core Spec Vol 3 Part B §2.5.1).
_SIG_BASE = re.compile(r"^0000([0-9a-f]{4})-0000-1000-8000-00805f9b34fb$")
_SHORT = re.compile(r"^(?:0x)?([0-9a-f]{4})$")


class CharacteristicUuid(IntEnum):
    """Assigned numbers of the characteristics decoded here (Bluetooth Assigned Numbers)."""

    LOCAL_TIME_INFORMATION = 0x2A0F
    TEMPERATURE_MEASUREMENT = 0x2A1C
    TEMPERATURE_TYPE = 0x2A1D
    INTERMEDIATE_TEMPERATURE = 0x2A1E
    GLUCOSE_MEASUREMENT = 0x2A18
    BATTERY_LEVEL = 0x2A19
    SYSTEM_ID = 0x2A23
    MODEL_NUMBER_STRING = 0x2A24
    SERIAL_NUMBER_STRING = 0x2A25
    FIRMWARE_REVISION_STRING = 0x2A26
    HARDWARE_REVISION_STRING = 0x2A27
    SOFTWARE_REVISION_STRING = 0x2A28
    MANUFACTURER_NAME_STRING = 0x2A29
    GLUCOSE_MEASUREMENT_CONTEXT = 0x2A34
    BLOOD_PRESSURE_MEASUREMENT = 0x2A35
    INTERMEDIATE_CUFF_PRESSURE = 0x2A36
    RECORD_ACCESS_CONTROL_POINT = 0x2A52
    PLX_SPOT_CHECK_MEASUREMENT = 0x2A5E
    PLX_CONTINUOUS_MEASUREMENT = 0x2A5F
    PLX_FEATURES = 0x2A60
    WEIGHT_MEASUREMENT = 0x2A9D

    @property
    def label(self) -> str:
        """The name used in error messages and in :class:`~gateway.gatt.Decoded`."""
        return self.name.lower()

    @property
    def full(self) -> str:
        """The 128-bit form, as bleak reports ``BleakGATTCharacteristic.uuid``."""
        return full_uuid(self.value)


def full_uuid(short: int) -> str:
    return f"0000{short:04x}-0000-1000-8000-00805f9b34fb"


def short_uuid(uuid: str) -> int | None:
    """The 16-bit number behind ``uuid`` ('2a35', '0x2A35', or the SIG base form), else None."""
    text = uuid.strip().lower()
    match = _SHORT.match(text) or _SIG_BASE.match(text)
    return int(match.group(1), 16) if match else None
