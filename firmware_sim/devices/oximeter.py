"""A fingertip pulse oximeter (Pulse Oximeter Service 0x1822).

Spot checks: the PLX Spot-Check Measurement is indicated, and kept until confirmed while the
device is in range; the default cheap fingertip unit has no memory, so whatever is undelivered
when it goes out of range is lost (as the patient model says: ``stores_readings=False``).
Made with ``memory=N`` it is one that stores (PLX Features bit 2, "Measurement Storage for
Spot-check measurements"): a spot check taken while no central is connected goes into memory,
marked "Data from Measurement Storage", and the central reads (counts, deletes) it through the
Record Access Control Point; PLX Spot-Check Measurement carries the records, the RACP's response
ends the transfer.

Continuous wear: PLX Continuous Measurement is notified once a second of simulated time. With
the finger out (``set_worn(False)``) each frame carries NaN for SpO2 and pulse rate and the
"sensor unconnected to user" status bit, as PLXS has devices report no valid value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from bumble import att
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.link import LocalLink

from firmware_sim.clock import SimClock
from firmware_sim.devices.base import uuid16
from firmware_sim.devices.glucose_records import RacpRefusal
from firmware_sim.devices.plx_records import SUPPORTED_OP_CODES, PlxRecordStore, parse_plx_request
from firmware_sim.devices.status_bits import status_bits
from firmware_sim.devices.storing import StoringDevice
from firmware_sim.physiology import SimulatedMeasurement
from gateway.gatt import (
    CharacteristicUuid,
    Medfloat,
    PlxContinuousMeasurement,
    PlxDeviceSensorStatus,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PlxSupportedFeatures,
    RacpMessage,
    RacpOpCode,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    SpecialValue,
)
from gateway.gatt.plx import DEVICE_SENSOR_STATUS_FLAGS, MEASUREMENT_STATUS_FLAGS
from telemon.device_kinds import DeviceKind

__all__ = ["CONTINUOUS_SESSION", "FINGER_OUT_FLAGS", "SimulatedOximeter"]

PULSE_OXIMETER_SERVICE = 0x1822
PLX_FEATURES = CharacteristicUuid.PLX_FEATURES
CONTINUOUS_SESSION = "continuous"  # the model's session name for worn samples
CONTINUOUS_PERIOD = timedelta(seconds=1)
FINGER_OUT_FLAGS = ("sensor_unconnected_to_user",)

# PLX Features: time stamps on spot checks, and every status bit the codecs know (which makes
# the two support fields present, bits 0 and 1).
FEATURES = PlxFeatures(
    PlxSupportedFeatures.SPOT_CHECK_TIMESTAMP,
    PlxMeasurementStatus(sum(MEASUREMENT_STATUS_FLAGS)),
    PlxDeviceSensorStatus(sum(DEVICE_SENSOR_STATUS_FLAGS)),
)
FEATURES_VALUE = FEATURES.encode()
STORING_FEATURES = PlxFeatures(
    FEATURES.supported | PlxSupportedFeatures.SPOT_CHECK_STORAGE,
    FEATURES.measurement_status_support,
    FEATURES.device_sensor_status_support,
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

    def __init__(
        self,
        link: LocalLink,
        address: Any = None,
        *,
        memory: int = 0,
        racp_op_codes: frozenset[RacpOpCode] = SUPPORTED_OP_CODES,
        record_interval: float = 0.0,
        **kwargs: Any,
    ) -> None:
        self.memory = PlxRecordStore(memory) if memory else None
        """Spot checks stored while no central was connected (None: the unit has no memory)."""
        self.racp_op_codes = racp_op_codes  # a unit may refuse to delete (Op Code not supported)
        self.record_interval = record_interval
        self.racp_requests: list[bytes] = []  # what centrals wrote to the RACP, in order
        self._procedure: asyncio.Task[None] | None = None
        super().__init__(link, address, **kwargs)
        self._worn = False
        self._stream: asyncio.Task[None] | None = None

    def _profile_services(self) -> Iterable[Service]:
        self.measurement = self._characteristic(
            CharacteristicUuid.PLX_SPOT_CHECK_MEASUREMENT, _Props.INDICATE
        )
        self.continuous = self._characteristic(
            CharacteristicUuid.PLX_CONTINUOUS_MEASUREMENT, _Props.NOTIFY
        )
        value = (STORING_FEATURES if self.memory is not None else FEATURES).encode()
        features = self._characteristic(PLX_FEATURES, _Props.READ, value, protected=False)
        characteristics = [self.measurement, self.continuous, features]
        if self.memory is not None:
            # PLXS: the RACP exists exactly when spot checks are stored.
            self.racp = self._characteristic(
                CharacteristicUuid.RECORD_ACCESS_CONTROL_POINT,
                _Props.WRITE | _Props.INDICATE,
                CharacteristicValue(write=self._on_racp_write),
            )
            characteristics.append(self.racp)
        return [Service(uuid16(PULSE_OXIMETER_SERVICE), characteristics)]

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
        elif self.memory is not None and not self.connected:
            self.memory.add(self.encode(measurement))
        elif self.in_range:
            self._stored.add(self.encode(measurement))
        if measurement.session != CONTINUOUS_SESSION:
            self._took_reading()

    def set_in_range(self, in_range: bool) -> asyncio.Task[None]:
        if not in_range:
            if self.memory is not None:
                for payload in self._stored.pending():
                    self.memory.add(payload)
            self._stored.clear()  # without memory, what the gateway did not get is gone
        return super().set_in_range(in_range)

    # --- Record Access Control Point ------------------------------------------------------------

    def _on_racp_write(self, _connection: Connection, value: bytes) -> None:
        # The records travel as indications of the spot check; the response as one of the RACP.
        if not (
            self.subscribed(self.racp, indicate=True)
            and self.subscribed(self.measurement, indicate=True)
        ):
            raise att.ATT_Error(att.ErrorCode.CCCD_IMPROPERLY_CONFIGURED)
        payload = bytes(value)
        self.racp_requests.append(payload)
        if self._procedure is not None and not self._procedure.done():
            if payload[:1] != bytes([RacpOpCode.ABORT_OPERATION]):
                raise att.ATT_Error(att.ErrorCode.PROCEDURE_ALREADY_IN_PROGRESS)
            self._procedure.cancel()
        self._touch()
        self._procedure = self.spawn(self._carry_out(payload))

    async def _carry_out(self, payload: bytes) -> None:
        try:
            request = parse_plx_request(payload, self.racp_op_codes)
            response = await _PROCEDURES[request.op_code](self, request)
        except RacpRefusal as refusal:
            response = RacpResponse(refusal.op_code, refusal.value)
        if self._procedure is asyncio.current_task():
            self._procedure = None
        await self.indicate(self.racp, response.encode())

    async def _report(self, request: RacpRequest) -> RacpMessage:
        assert self.memory is not None  # the RACP exists only with a memory
        records = self.memory.all()
        if not records:
            raise RacpRefusal(request.op_code, RacpResponseValue.NO_RECORDS_FOUND)
        for record in records:
            if not await self.indicate(self.measurement, record):
                raise RacpRefusal(request.op_code, RacpResponseValue.PROCEDURE_NOT_COMPLETED)
            await asyncio.sleep(self.record_interval)
        return RacpResponse(request.op_code, RacpResponseValue.SUCCESS)

    async def _delete(self, request: RacpRequest) -> RacpMessage:
        assert self.memory is not None
        if not len(self.memory):
            raise RacpRefusal(request.op_code, RacpResponseValue.NO_RECORDS_FOUND)
        self.memory.clear()
        return RacpResponse(request.op_code, RacpResponseValue.SUCCESS)

    async def _count(self, request: RacpRequest) -> RacpMessage:
        assert self.memory is not None
        return RacpRecordCount(len(self.memory))

    async def _abort(self, request: RacpRequest) -> RacpMessage:
        return RacpResponse(request.op_code, RacpResponseValue.SUCCESS)

    def _on_disconnected(self) -> None:
        if self._procedure is not None:
            self._procedure.cancel()

    def _busy(self) -> bool:
        return super()._busy() or (self._procedure is not None and not self._procedure.done())

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


_PROCEDURES: MappingProxyType[
    RacpOpCode, Callable[[SimulatedOximeter, RacpRequest], Awaitable[RacpMessage]]
] = MappingProxyType(
    {
        RacpOpCode.REPORT_STORED_RECORDS: SimulatedOximeter._report,
        RacpOpCode.DELETE_STORED_RECORDS: SimulatedOximeter._delete,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS: SimulatedOximeter._count,
        RacpOpCode.ABORT_OPERATION: SimulatedOximeter._abort,
    }
)
