"""A home blood pressure cuff (Blood Pressure Service 0x1810).

Like an upper-arm cuff: it keeps every reading in memory, and when the central connects and
enables indications on Blood Pressure Measurement it sends the ones not yet delivered, oldest
first, then drops the link after a short quiet spell. While a reading is being taken it can send
the inflating cuff's pressure (Intermediate Cuff Pressure) to a subscribed central.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from bumble.gatt import Characteristic, Service
from bumble.link import LocalLink

from firmware_sim.devices.base import uuid16
from firmware_sim.devices.status_bits import status_bits
from firmware_sim.devices.storing import StoringDevice
from firmware_sim.physiology import SimulatedMeasurement
from gateway.gatt import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    CharacteristicUuid,
    IntermediateCuffPressure,
    Medfloat,
    PressureUnit,
    SpecialValue,
)
from gateway.gatt.blood_pressure import MEASUREMENT_FLAGS, PULSE_FLAGS
from telemon.device_kinds import DeviceKind

__all__ = ["SimulatedBloodPressureCuff"]

BLOOD_PRESSURE_SERVICE = 0x1810
BLOOD_PRESSURE_FEATURE = 0x2A49
# Body movement, cuff fit, irregular pulse, pulse rate range and position detection (BLS).
FEATURES = 0b1_1111
STATUS_FLAGS = MappingProxyType({**MEASUREMENT_FLAGS, **PULSE_FLAGS})
# The deflating cuff passes these pressures (mmHg above systolic, then steps down).
_INFLATE_ABOVE_SYSTOLIC = 30.0
_DEFLATION_STEP = 10.0

_Props = Characteristic.Properties


def _number(values: Any, metric: str) -> Medfloat:
    value = values.get(metric)
    return SpecialValue.NAN if value is None else float(value)


class SimulatedBloodPressureCuff(StoringDevice):
    kind = DeviceKind.BLOOD_PRESSURE
    default_idle_disconnect = 2.0  # cuffs switch their radio off soon after uploading

    def __init__(self, link: LocalLink, address: Any = None, *, user_id: int = 1, **kwargs: Any):
        self.user_id = user_id
        super().__init__(link, address, **kwargs)

    def _profile_services(self) -> Iterable[Service]:
        self.measurement = self._characteristic(
            CharacteristicUuid.BLOOD_PRESSURE_MEASUREMENT, _Props.INDICATE
        )
        self.intermediate_cuff_pressure = self._characteristic(
            CharacteristicUuid.INTERMEDIATE_CUFF_PRESSURE, _Props.NOTIFY
        )
        feature = self._characteristic(
            BLOOD_PRESSURE_FEATURE, _Props.READ, FEATURES.to_bytes(2, "little"), protected=False
        )
        return [
            Service(
                uuid16(BLOOD_PRESSURE_SERVICE),
                [self.measurement, self.intermediate_cuff_pressure, feature],
            )
        ]

    def encode(self, measurement: SimulatedMeasurement) -> bytes:
        values = measurement.values
        return BloodPressureMeasurement(
            systolic=_number(values, "systolic"),
            diastolic=_number(values, "diastolic"),
            mean_arterial_pressure=_number(values, "mean_arterial_pressure"),
            unit=PressureUnit.MMHG,
            timestamp=self.timestamp(measurement),
            pulse_rate=_number(values, "pulse_rate"),
            user_id=self.user_id,
            status=status_bits(measurement.flags, STATUS_FLAGS, BloodPressureStatus),
        ).encode()

    async def measure_live(self, measurement: SimulatedMeasurement) -> None:
        """Take ``measurement`` with the central watching: cuff pressures while the cuff
        deflates, then the result."""
        self._check_kind(measurement)
        systolic = measurement.values.get("systolic")
        if systolic is not None:
            pressure = float(systolic) + _INFLATE_ABOVE_SYSTOLIC
            floor = float(measurement.values.get("diastolic", systolic)) - _DEFLATION_STEP
            while pressure >= floor:
                cuff = IntermediateCuffPressure(pressure, user_id=self.user_id)
                await self.notify(self.intermediate_cuff_pressure, cuff.encode())
                pressure -= _DEFLATION_STEP
        await self.record(measurement)
