"""The kinds of home device telemon knows: one vocabulary for the gateway, the simulator, the
dashboard and the store.

The values are the wire names: they travel in MQTT payloads (``device_kind``, ``kind``) and are
stored in ``devices.kind``, so a value never changes once released.
"""

from __future__ import annotations

from enum import StrEnum


class DeviceKind(StrEnum):
    # In this order wherever devices are listed (the simulator's readings, the kits).
    PULSE_OXIMETER = "pulse_oximeter"
    BLOOD_PRESSURE = "blood_pressure"
    GLUCOMETER = "glucometer"
    THERMOMETER = "thermometer"
    WEIGHT_SCALE = "weight_scale"
