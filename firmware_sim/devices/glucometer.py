"""A blood glucose meter (Glucose Service 0x1808).

Every reading goes into the meter's memory with the next sequence number. Nothing is pushed:
the central asks through the Record Access Control Point, and the meter notifies the matching
Glucose Measurements (each followed by its Measurement Context, which says which meal the
reading was taken before) and then indicates the RACP response. Records stay in memory across
connections; only a request sends them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from types import MappingProxyType
from typing import Any

from bumble import att
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.link import LocalLink

from firmware_sim.devices.base import SimulatedDevice, uuid16
from firmware_sim.devices.glucose_records import (
    GlucoseRecord,
    GlucoseRecordStore,
    RacpRefusal,
    parse_request,
)
from firmware_sim.devices.status_bits import status_bits
from firmware_sim.physiology import SimulatedMeasurement
from gateway.gatt import (
    CharacteristicUuid,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseSensorStatus,
    GlucoseType,
    GlucoseUnit,
    Meal,
    RacpMessage,
    RacpOpCode,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    SampleLocation,
)
from gateway.gatt.glucose import SENSOR_STATUS_FLAGS
from telemon.device_kinds import DeviceKind

__all__ = ["SimulatedGlucometer"]

GLUCOSE_SERVICE = 0x1808
GLUCOSE_FEATURE = 0x2A51
# Low battery, sensor malfunction, sample size, strip insertion, strip type, result high/low,
# temperature high/low, read interrupt, general fault and time fault detection (GLS bits 0-9).
FEATURES = 0x03FF
MG_PER_DL_PER_KG_PER_L = 100_000  # 1 mg/dL = 1e-5 kg/L

# The patient model names sessions after their place in the day; meters ask the patient.
MEAL_BY_SESSION_PREFIX: tuple[tuple[str, Meal], ...] = (
    ("before_", Meal.PREPRANDIAL),
    ("after_", Meal.POSTPRANDIAL),
    ("fasting", Meal.FASTING),
    ("bedtime", Meal.BEDTIME),
    ("symptom_check", Meal.CASUAL),
)

_Props = Characteristic.Properties


def meal_for(session: str) -> Meal | None:
    return next(
        (meal for prefix, meal in MEAL_BY_SESSION_PREFIX if session.startswith(prefix)), None
    )


class SimulatedGlucometer(SimulatedDevice):
    kind = DeviceKind.GLUCOMETER

    def __init__(
        self,
        link: LocalLink,
        address: Any = None,
        *,
        record_interval: float = 0.0,
        first_sequence_number: int = 0,
        glucose_type: GlucoseType = GlucoseType.CAPILLARY_PLASMA,
        sample_location: SampleLocation = SampleLocation.FINGER,
        **kwargs: Any,
    ) -> None:
        self.store = GlucoseRecordStore(first_sequence_number=first_sequence_number)
        self.record_interval = record_interval
        """Seconds between reported records (a real meter paces them by connection events)."""
        self.glucose_type = glucose_type
        self.sample_location = sample_location
        self._procedure: asyncio.Task[None] | None = None
        super().__init__(link, address, **kwargs)

    def _profile_services(self) -> Iterable[Service]:
        self.measurement = self._characteristic(
            CharacteristicUuid.GLUCOSE_MEASUREMENT, _Props.NOTIFY
        )
        self.context = self._characteristic(
            CharacteristicUuid.GLUCOSE_MEASUREMENT_CONTEXT, _Props.NOTIFY
        )
        self.racp = self._characteristic(
            CharacteristicUuid.RECORD_ACCESS_CONTROL_POINT,
            _Props.WRITE | _Props.INDICATE,
            CharacteristicValue(write=self._on_racp_write),
        )
        feature = self._characteristic(
            GLUCOSE_FEATURE, _Props.READ, FEATURES.to_bytes(2, "little"), protected=False
        )
        return [
            Service(uuid16(GLUCOSE_SERVICE), [self.measurement, self.context, feature, self.racp])
        ]

    # --- taking readings ------------------------------------------------------------------------

    async def record(self, measurement: SimulatedMeasurement) -> None:
        self._check_kind(measurement)
        self.store.add(self.to_record(measurement, self.store.take_sequence_number()))
        self._took_reading()

    def to_record(self, measurement: SimulatedMeasurement, sequence_number: int) -> GlucoseRecord:
        glucose = measurement.values.get("glucose")
        meal = meal_for(measurement.session)
        status = status_bits(measurement.flags, SENSOR_STATUS_FLAGS, GlucoseSensorStatus)
        present = glucose is not None  # a strip error leaves no concentration to report
        record = GlucoseMeasurement(
            sequence_number=sequence_number,
            base_time=self.timestamp(measurement),
            concentration=None if glucose is None else float(glucose) / MG_PER_DL_PER_KG_PER_L,
            unit=GlucoseUnit.KG_PER_L,
            glucose_type=self.glucose_type if present else None,
            sample_location=self.sample_location if present else None,
            sensor_status=status or None,
            context_follows=meal is not None,
        )
        context = None if meal is None else GlucoseMeasurementContext(sequence_number, meal=meal)
        return GlucoseRecord(record, context)

    # --- Record Access Control Point ------------------------------------------------------------

    def _on_racp_write(self, _connection: Connection, value: bytes) -> None:
        # GLS: without indications on RACP and notifications on the measurement, the meter
        # would have no way to answer.
        if not (
            self.subscribed(self.racp, indicate=True)
            and self.subscribed(self.measurement, indicate=False)
        ):
            raise att.ATT_Error(att.ErrorCode.CCCD_IMPROPERLY_CONFIGURED)
        payload = bytes(value)
        if self._procedure is not None and not self._procedure.done():
            if payload[:1] != bytes([RacpOpCode.ABORT_OPERATION]):
                raise att.ATT_Error(att.ErrorCode.PROCEDURE_ALREADY_IN_PROGRESS)
            # Aborted: the records stop and the report gets no response of its own.
            self._procedure.cancel()
        self._touch()
        self._procedure = self.spawn(self._carry_out(payload))

    async def _carry_out(self, payload: bytes) -> None:
        try:
            request = parse_request(payload)
            response = await _PROCEDURES[RacpOpCode(request.op_code)](self, request)
        except RacpRefusal as refusal:
            response = RacpResponse(refusal.op_code, refusal.value)
        # The procedure is over once its response goes out: a collector may write the next
        # request as soon as it sees the response, before our stack has its confirmation.
        if self._procedure is asyncio.current_task():
            self._procedure = None
        await self.indicate(self.racp, response.encode())

    async def _report(self, request: RacpRequest) -> RacpMessage:
        records = self.store.select(request)
        if not records:
            raise RacpRefusal(request.op_code, RacpResponseValue.NO_RECORDS_FOUND)
        for record in records:
            await self.notify(self.measurement, record.measurement.encode())
            if record.context is not None:
                await self.notify(self.context, record.context.encode())
            await asyncio.sleep(self.record_interval)
        return RacpResponse(request.op_code, RacpResponseValue.SUCCESS)

    async def _count(self, request: RacpRequest) -> RacpMessage:
        return RacpRecordCount(len(self.store.select(request)))

    async def _abort(self, request: RacpRequest) -> RacpMessage:
        # Any procedure in progress was cancelled when the request arrived.
        return RacpResponse(request.op_code, RacpResponseValue.SUCCESS)

    def _on_disconnected(self) -> None:
        if self._procedure is not None:
            self._procedure.cancel()

    def _busy(self) -> bool:
        return self._procedure is not None and not self._procedure.done()


_PROCEDURES: MappingProxyType[
    RacpOpCode, Callable[[SimulatedGlucometer, RacpRequest], Awaitable[RacpMessage]]
] = MappingProxyType(
    {
        RacpOpCode.REPORT_STORED_RECORDS: SimulatedGlucometer._report,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS: SimulatedGlucometer._count,
        RacpOpCode.ABORT_OPERATION: SimulatedGlucometer._abort,
    }
)
