"""Blood Pressure Service: Blood Pressure Measurement (0x2A35), Intermediate Cuff Pressure (0x2A36).

Layout per the Blood Pressure Service (BLS) and the GATT Specification Supplement. Intermediate cuff
pressure is the inflating cuff shown on the device's display: it decodes (the simulated cuff sends
it) but yields no reading.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, IntFlag
from types import MappingProxyType

from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.errors import EncodeError
from gateway.gatt.fields import DATE_TIME, SFLOAT, UINT8, UINT16, bitfield
from gateway.gatt.ieee11073 import Medfloat, SpecialValue
from gateway.gatt.layout import Field, Layout, Wire
from gateway.gatt.model import Decoded, ReadingsBuilder, flag_names
from gateway.gatt.uuids import CharacteristicUuid


class PressureUnit(IntEnum):
    """Flags bit 0."""

    MMHG = 0
    KPA = 1

    @property
    def ucum(self) -> str:
        return "mm[Hg]" if self is PressureUnit.MMHG else "kPa"


class BloodPressureStatus(IntFlag):
    """Measurement Status (uint16). Bits 3-4 are the pulse rate range (0 within, 1 above, 2 below,
    3 reserved); bits 6-15 are RFU."""

    BODY_MOVEMENT = 1 << 0
    CUFF_TOO_LOOSE = 1 << 1
    IRREGULAR_PULSE = 1 << 2
    PULSE_RATE_ABOVE_RANGE = 1 << 3
    PULSE_RATE_BELOW_RANGE = 2 << 3
    IMPROPER_POSITION = 1 << 5


_PULSE_RANGE = (
    BloodPressureStatus.PULSE_RATE_ABOVE_RANGE | BloodPressureStatus.PULSE_RATE_BELOW_RANGE
)

# Status bits that qualify the whole measurement, and those that qualify the pulse rate only.
MEASUREMENT_FLAGS: MappingProxyType[int, str] = MappingProxyType(
    {
        BloodPressureStatus.BODY_MOVEMENT: "body_movement",
        BloodPressureStatus.CUFF_TOO_LOOSE: "cuff_too_loose",
        BloodPressureStatus.IRREGULAR_PULSE: "irregular_pulse",
        BloodPressureStatus.IMPROPER_POSITION: "improper_position",
    }
)
PULSE_FLAGS: MappingProxyType[int, str] = MappingProxyType(
    {
        BloodPressureStatus.PULSE_RATE_ABOVE_RANGE: "pulse_above_range",
        BloodPressureStatus.PULSE_RATE_BELOW_RANGE: "pulse_below_range",
    }
)

UNITS_KPA = 1 << 0
TIMESTAMP = 1 << 1
PULSE_RATE = 1 << 2
USER_ID = 1 << 3
MEASUREMENT_STATUS = 1 << 4

UNKNOWN_USER = 0xFF  # User ID 255 means 'unknown user' (BLS)


def _layout(characteristic: CharacteristicUuid) -> Layout:
    return Layout(
        characteristic.label,
        (
            Field("systolic", SFLOAT),
            Field("diastolic", SFLOAT),
            Field("mean_arterial_pressure", SFLOAT),
            Field("timestamp", DATE_TIME, TIMESTAMP),
            Field("pulse_rate", SFLOAT, PULSE_RATE),
            Field("user_id", UINT8, USER_ID),
            Field("status", bitfield(BloodPressureStatus, UINT16), MEASUREMENT_STATUS),
        ),
        semantic_flags=UNITS_KPA,
    )


MEASUREMENT_LAYOUT = _layout(CharacteristicUuid.BLOOD_PRESSURE_MEASUREMENT)
CUFF_LAYOUT = _layout(CharacteristicUuid.INTERMEDIATE_CUFF_PRESSURE)


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    systolic: Medfloat
    diastolic: Medfloat
    mean_arterial_pressure: Medfloat
    unit: PressureUnit = PressureUnit.MMHG
    timestamp: GattDateTime | None = None
    pulse_rate: Medfloat | None = None  # beats per minute, whatever the pressure unit
    user_id: int | None = None
    status: BloodPressureStatus | None = None

    def encode(self) -> bytes:
        _check_status(self.status)
        values = {field.name: getattr(self, field.name) for field in MEASUREMENT_LAYOUT.fields}
        return MEASUREMENT_LAYOUT.encode(values, UNITS_KPA * self.unit)


@dataclass(frozen=True, slots=True)
class IntermediateCuffPressure:
    cuff_pressure: Medfloat
    unit: PressureUnit = PressureUnit.MMHG
    timestamp: GattDateTime | None = None
    pulse_rate: Medfloat | None = None
    user_id: int | None = None
    status: BloodPressureStatus | None = None

    def encode(self) -> bytes:
        _check_status(self.status)
        values = {
            "systolic": self.cuff_pressure,
            # Unused in this characteristic; BLS has them sent as NaN.
            "diastolic": SpecialValue.NAN,
            "mean_arterial_pressure": SpecialValue.NAN,
            "timestamp": self.timestamp,
            "pulse_rate": self.pulse_rate,
            "user_id": self.user_id,
            "status": self.status,
        }
        return CUFF_LAYOUT.encode(values, UNITS_KPA * self.unit)


def _check_status(status: BloodPressureStatus | None) -> None:
    if status is not None and status & _PULSE_RANGE == _PULSE_RANGE:
        raise EncodeError("pulse rate range 3 is reserved")


def _checked(wire: Wire) -> Wire:
    status = wire.values["status"]
    if status is not None and status & _PULSE_RANGE == _PULSE_RANGE:
        raise wire.error("status", "pulse rate range detection value 3 is reserved")
    return wire


def decode_blood_pressure_measurement(payload: bytes) -> BloodPressureMeasurement:
    wire = _checked(MEASUREMENT_LAYOUT.decode(payload))
    return BloodPressureMeasurement(**wire.values, unit=PressureUnit(wire.flags & UNITS_KPA))


def decode_intermediate_cuff_pressure(payload: bytes) -> IntermediateCuffPressure:
    wire = _checked(CUFF_LAYOUT.decode(payload))
    values = dict(wire.values)
    cuff_pressure = values.pop("systolic")
    del values["diastolic"], values["mean_arterial_pressure"]
    return IntermediateCuffPressure(
        cuff_pressure, unit=PressureUnit(wire.flags & UNITS_KPA), **values
    )


def interpret_blood_pressure_measurement(
    measurement: BloodPressureMeasurement,
) -> Decoded[BloodPressureMeasurement]:
    context = {}
    if measurement.user_id is not None and measurement.user_id != UNKNOWN_USER:
        context["user_id"] = str(measurement.user_id)
    builder = ReadingsBuilder(
        flags=flag_names(measurement.status, MEASUREMENT_FLAGS), context=context
    )
    builder.timestamp("timestamp", measurement.timestamp)
    unit = measurement.unit.ucum
    builder.add("systolic", measurement.systolic, unit)
    builder.add("diastolic", measurement.diastolic, unit)
    builder.add("mean_arterial_pressure", measurement.mean_arterial_pressure, unit)
    builder.add(
        "pulse_rate",
        measurement.pulse_rate,
        "/min",
        flags=flag_names(measurement.status, PULSE_FLAGS),
        context={"pulse_source": "cuff"},
    )
    return builder.build(MEASUREMENT_LAYOUT.characteristic, measurement)


def interpret_intermediate_cuff_pressure(
    measurement: IntermediateCuffPressure,
) -> Decoded[IntermediateCuffPressure]:
    return Decoded(CUFF_LAYOUT.characteristic, measurement)
