"""Weight Scale Service: Weight Measurement (0x2A9D).

Layout per the Weight Scale Service (WSS) and the GATT Specification Supplement. Weight, BMI and
height are unsigned integers at a fixed resolution set by the unit system (flags bit 0), so this
profile has no SFLOAT; 0xFFFF in the weight field means "Measurement Unsuccessful"."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType

from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.errors import EncodeError
from gateway.gatt.fields import DATE_TIME, UINT8, UINT16
from gateway.gatt.layout import Field, Layout
from gateway.gatt.model import Decoded, ReadingsBuilder, format_number
from gateway.gatt.uuids import CharacteristicUuid


class WeightUnits(IntEnum):
    """Flags bit 0: SI (kg, m) or imperial (lb, in)."""

    SI = 0
    IMPERIAL = 1


@dataclass(frozen=True, slots=True)
class _Scale:
    weight_unit: str  # UCUM
    weight_steps: int  # raw steps per unit: 200 -> 0.005 kg resolution
    height_unit: str
    height_steps: int


SCALES: MappingProxyType[WeightUnits, _Scale] = MappingProxyType(
    {
        WeightUnits.SI: _Scale("kg", 200, "m", 1000),
        WeightUnits.IMPERIAL: _Scale("[lb_av]", 100, "[in_i]", 10),
    }
)
BMI_STEPS = 10  # 0.1 kg/m2 in either unit system
MEASUREMENT_UNSUCCESSFUL = 0xFFFF

UNITS_IMPERIAL = 1 << 0
TIMESTAMP = 1 << 1
USER_ID = 1 << 2
BMI_AND_HEIGHT = 1 << 3

UNKNOWN_USER = 0xFF

LAYOUT = Layout(
    CharacteristicUuid.WEIGHT_MEASUREMENT.label,
    (
        Field("weight", UINT16),
        Field("timestamp", DATE_TIME, TIMESTAMP),
        Field("user_id", UINT8, USER_ID),
        Field("bmi", UINT16, BMI_AND_HEIGHT),
        Field("height", UINT16, BMI_AND_HEIGHT),
    ),
    semantic_flags=UNITS_IMPERIAL,
)


@dataclass(frozen=True, slots=True)
class WeightMeasurement:
    """``weight`` in kg or lb per ``units``, None when the scale reported Measurement
    Unsuccessful; ``height`` in m or in; ``bmi`` in kg/m2. Encoding rounds to the resolution."""

    weight: float | None
    units: WeightUnits = WeightUnits.SI
    timestamp: GattDateTime | None = None
    user_id: int | None = None
    bmi: float | None = None
    height: float | None = None

    def encode(self) -> bytes:
        scale = SCALES[self.units]
        values = {
            "weight": MEASUREMENT_UNSUCCESSFUL
            if self.weight is None
            else _steps("weight", self.weight, scale.weight_steps, MEASUREMENT_UNSUCCESSFUL - 1),
            "timestamp": self.timestamp,
            "user_id": self.user_id,
            "bmi": None if self.bmi is None else _steps("bmi", self.bmi, BMI_STEPS),
            "height": None
            if self.height is None
            else _steps("height", self.height, scale.height_steps),
        }
        return LAYOUT.encode(values, UNITS_IMPERIAL * self.units)


def _steps(name: str, value: float, steps: int, highest: int = 0xFFFF) -> int:
    raw = round(value * steps)
    if not 0 <= raw <= highest:
        raise EncodeError(f"{name} {value!r} is outside 0..{highest / steps}")
    return raw


def decode_weight_measurement(payload: bytes) -> WeightMeasurement:
    wire = LAYOUT.decode(payload)
    units = WeightUnits(wire.flags & UNITS_IMPERIAL)
    scale = SCALES[units]
    values = wire.values
    raw_weight = values["weight"]
    return WeightMeasurement(
        weight=None if raw_weight == MEASUREMENT_UNSUCCESSFUL else raw_weight / scale.weight_steps,
        units=units,
        timestamp=values["timestamp"],
        user_id=values["user_id"],
        bmi=None if values["bmi"] is None else values["bmi"] / BMI_STEPS,
        height=None if values["height"] is None else values["height"] / scale.height_steps,
    )


def interpret_weight_measurement(measurement: WeightMeasurement) -> Decoded[WeightMeasurement]:
    scale = SCALES[measurement.units]
    context: dict[str, str] = {}
    if measurement.user_id is not None and measurement.user_id != UNKNOWN_USER:
        context["user_id"] = str(measurement.user_id)
    if measurement.bmi is not None and measurement.height is not None:
        context["bmi"] = format_number(measurement.bmi)
        context["height"] = format_number(measurement.height)
        context["height_unit"] = scale.height_unit
    builder = ReadingsBuilder(context=context)
    builder.timestamp("timestamp", measurement.timestamp)
    if measurement.weight is None:
        builder.skip("weight", "measurement unsuccessful (0xFFFF)")
    else:
        builder.add("body_weight", measurement.weight, scale.weight_unit)
    return builder.build(LAYOUT.characteristic, measurement)
