"""A fingertip pulse oximeter (Pulse Oximeter Service 0x1822).

Spot checks: the PLX Spot-Check Measurement is indicated, and kept until confirmed while the
device is in range; being a cheap fingertip unit it has no memory, so whatever is undelivered
when it goes out of range is lost (as the patient model says: ``stores_readings=False``).

Continuous wear: PLX Continuous Measurement is notified once a second of simulated time. With
the finger out (``set_worn(False)``) each frame carries NaN for SpO2 and pulse rate and the
"sensor unconnected to user" status bit, as PLXS has devices report no valid value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from bumble.gatt import Characteristic, Service

from firmware_sim.clock import SimClock
from firmware_sim.devices.base import uuid16
from firmware_sim.devices.status_bits import status_bits
from firmware_sim.devices.storing import StoringDevice
from firmware_sim.physiology import SimulatedMeasurement
from gateway.gatt import (
    CharacteristicUuid,
    Medfloat,
    PlxContinuousMeasurement,
    PlxDeviceSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    SpecialValue,
)
from gateway.gatt.plx import DEVICE_SENSOR_STATUS_FLAGS, MEASUREMENT_STATUS_FLAGS
from telemon.device_kinds import DeviceKind

__all__ = ["CONTINUOUS_SESSION", "FINGER_OUT_FLAGS", "SimulatedOximeter"]

PULSE_OXIMETER_SERVICE = 0x1822
PLX_FEATURES = 0x2A60
CONTINUOUS_SESSION = "continuous"  # the model's session name for worn samples
CONTINUOUS_PERIOD = timedelta(seconds=1)
FINGER_OUT_FLAGS = ("sensor_unconnected_to_user",)

# PLX Features: Measurement Status and Device and Sensor Status support fields present (bits 0,
# 1), time stamp for spot checks (bit 3); then which status bits the device can report.
_SUPPORTED_FEATURES = 0b1011
_MEASUREMENT_STATUS_SUPPORT = sum(MEASUREMENT_STATUS_FLAGS)
_DEVICE_SENSOR_STATUS_SUPPORT = sum(DEVICE_SENSOR_STATUS_FLAGS)
FEATURES_VALUE = (
    _SUPPORTED_FEATURES.to_bytes(2, "little")
    + _MEASUREMENT_STATUS_SUPPORT.to_bytes(2, "little")
    + _DEVICE_SENSOR_STATUS_SUPPORT.to_bytes(3, "little")
)

_Props = Characteristic.Properties

Sampler = Callable[[datetime], SimulatedMeasurement]


def _number(measurement: SimulatedMeasurement, metric: str) -> Medfloat:
    value = measurement.values.get(metric)
    return SpecialValue.NAN if value is None else float(value)


def _statuses(
    flags: tuple[str, ...],
) -> tuple[PlxMeasurementStatus | None, PlxDeviceSensorStatus | None]:
    # Optional fields: present only when there is something to say, as most oximeters do.
    measurement = status_bits(flags, MEASUREMENT_STATUS_FLAGS, PlxMeasurementStatus)
    sensor = status_bits(flags, DEVICE_SENSOR_STATUS_FLAGS, PlxDeviceSensorStatus)
    return measurement or None, sensor or None


class SimulatedOximeter(StoringDevice):
    kind = DeviceKind.PULSE_OXIMETER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._worn = False
        self._stream: asyncio.Task[None] | None = None

    def _profile_services(self) -> Iterable[Service]:
        self.measurement = self._characteristic(
            CharacteristicUuid.PLX_SPOT_CHECK_MEASUREMENT, _Props.INDICATE
        )
        self.continuous = self._characteristic(
            CharacteristicUuid.PLX_CONTINUOUS_MEASUREMENT, _Props.NOTIFY
        )
        features = self._characteristic(PLX_FEATURES, _Props.READ, FEATURES_VALUE, protected=False)
        return [
            Service(uuid16(PULSE_OXIMETER_SERVICE), [self.measurement, self.continuous, features])
        ]

    # --- spot checks --------------------------------------------------------------------------

    def encode(self, measurement: SimulatedMeasurement) -> bytes:
        measurement_status, sensor_status = _statuses(measurement.flags)
        return PlxSpotCheckMeasurement(
            spo2=_number(measurement, "spo2"),
            pulse_rate=_number(measurement, "pulse_rate"),
            timestamp=self.timestamp(measurement),
            measurement_status=measurement_status,
            device_sensor_status=sensor_status,
        ).encode()

    async def record(self, measurement: SimulatedMeasurement) -> None:
        """A spot check is stored until indicated; a continuous sample is notified at once."""
        self._check_kind(measurement)
        if measurement.session == CONTINUOUS_SESSION:
            await self.notify(self.continuous, self.encode_continuous(measurement))
        elif self.in_range:
            self._stored.add(self.encode(measurement))

    def set_in_range(self, in_range: bool) -> asyncio.Task[None]:
        if not in_range:
            self._stored.clear()  # no memory: what the gateway did not get is gone
        return super().set_in_range(in_range)

    # --- continuous wear ----------------------------------------------------------------------

    @property
    def worn(self) -> bool:
        return self._worn

    def set_worn(self, worn: bool) -> None:
        """Finger in (True) or out (False) of the probe."""
        self._worn = worn

    def encode_continuous(self, measurement: SimulatedMeasurement) -> bytes:
        measurement_status, sensor_status = _statuses(measurement.flags)
        return PlxContinuousMeasurement(
            spo2=_number(measurement, "spo2"),
            pulse_rate=_number(measurement, "pulse_rate"),
            measurement_status=measurement_status,
            device_sensor_status=sensor_status,
        ).encode()

    def finger_out_frame(self) -> bytes:
        _, sensor_status = _statuses(FINGER_OUT_FLAGS)
        return PlxContinuousMeasurement(
            spo2=SpecialValue.NAN, pulse_rate=SpecialValue.NAN, device_sensor_status=sensor_status
        ).encode()

    def start_continuous(self, sample: Sampler, clock: SimClock) -> None:
        """Notify a PLX Continuous frame every simulated second from now on: ``sample(t)``
        (``PatientModel.reading_at(PULSE_OXIMETER, t, 'continuous')``) while worn, a finger-out
        frame while not."""
        self.stop_continuous()
        self._stream = self.spawn(self._run_continuous(sample, clock))

    def stop_continuous(self) -> None:
        if self._stream is not None:
            self._stream.cancel()
            self._stream = None

    async def _run_continuous(self, sample: Sampler, clock: SimClock) -> None:
        due = clock.now()
        while True:
            frame = self.encode_continuous(sample(due)) if self._worn else self.finger_out_frame()
            await self.notify(self.continuous, frame)
            due += CONTINUOUS_PERIOD
            await clock.sleep_until(due)
