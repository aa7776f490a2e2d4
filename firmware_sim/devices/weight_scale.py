"""A bathroom scale (Weight Scale Service 0x181D).

It keeps its readings and indicates each Weight Measurement in SI units (0.005 kg steps) with its
time stamp once a central has enabled indications. A failed weighing is sent as 0xFFFF
"Measurement Unsuccessful".
"""

from __future__ import annotations

from collections.abc import Iterable

from bumble.gatt import Characteristic, Service

from firmware_sim.devices.base import uuid16
from firmware_sim.devices.storing import StoringDevice
from firmware_sim.physiology import SimulatedMeasurement
from gateway.gatt import CharacteristicUuid, WeightMeasurement, WeightUnits
from telemon.device_kinds import DeviceKind

__all__ = ["SimulatedWeightScale"]

WEIGHT_SCALE_SERVICE = 0x181D
WEIGHT_SCALE_FEATURE = 0x2A9E
# Time stamp supported (bit 0); weight resolution 0.1 kg (value 3 in bits 3-6), as the model's.
FEATURES = 1 | 3 << 3

_Props = Characteristic.Properties


class SimulatedWeightScale(StoringDevice):
    kind = DeviceKind.WEIGHT_SCALE

    def _profile_services(self) -> Iterable[Service]:
        self.measurement = self._characteristic(
            CharacteristicUuid.WEIGHT_MEASUREMENT, _Props.INDICATE
        )
        feature = self._characteristic(
            WEIGHT_SCALE_FEATURE, _Props.READ, FEATURES.to_bytes(4, "little"), protected=False
        )
        return [Service(uuid16(WEIGHT_SCALE_SERVICE), [feature, self.measurement])]

    def encode(self, measurement: SimulatedMeasurement) -> bytes:
        weight = measurement.values.get("body_weight")
        return WeightMeasurement(
            weight=None if weight is None else float(weight),
            units=WeightUnits.SI,
            timestamp=self.timestamp(measurement),
        ).encode()
