"""A home thermometer (Health Thermometer Service 0x1809).

It keeps its readings and indicates each Temperature Measurement, in Celsius with its time stamp
and the body site, once a central has enabled indications.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bumble.gatt import Characteristic, Service
from bumble.link import LocalLink

from firmware_sim.devices.base import uuid16
from firmware_sim.devices.storing import StoringDevice
from firmware_sim.physiology import SimulatedMeasurement
from gateway.gatt import (
    CharacteristicUuid,
    SpecialValue,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
)
from telemon.device_kinds import DeviceKind

__all__ = ["SimulatedThermometer"]

HEALTH_THERMOMETER_SERVICE = 0x1809

_Props = Characteristic.Properties


class SimulatedThermometer(StoringDevice):
    kind = DeviceKind.THERMOMETER

    def __init__(
        self,
        link: LocalLink,
        address: Any = None,
        *,
        temperature_type: TemperatureType = TemperatureType.EAR,
        **kwargs: Any,
    ):
        self.temperature_type = temperature_type
        super().__init__(link, address, **kwargs)

    def _profile_services(self) -> Iterable[Service]:
        self.measurement = self._characteristic(
            CharacteristicUuid.TEMPERATURE_MEASUREMENT, _Props.INDICATE
        )
        return [Service(uuid16(HEALTH_THERMOMETER_SERVICE), [self.measurement])]

    def encode(self, measurement: SimulatedMeasurement) -> bytes:
        value = measurement.values.get("body_temperature")
        return TemperatureMeasurement(
            temperature=SpecialValue.NAN if value is None else float(value),
            unit=TemperatureUnit.CELSIUS,
            timestamp=self.timestamp(measurement),
            temperature_type=self.temperature_type,
        ).encode()
