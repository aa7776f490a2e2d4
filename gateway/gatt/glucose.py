"""Glucose Service: Glucose Measurement (0x2A18) and Glucose Measurement Context (0x2A34).

Layouts per the Glucose Service (GLS v1.0.1: Glucose Measurement, Glucose Measurement Context) and
the GATT Specification Supplement. A context record describes the measurement with the same
sequence number; it yields no reading, and :meth:`GlucoseMeasurementContext.as_context` gives the
strings the gateway merges into that measurement's reading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import IntEnum, IntFlag
from types import MappingProxyType
from typing import TypeVar

from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.errors import EncodeError, InvalidField
from gateway.gatt.fields import (
    DATE_TIME,
    SFLOAT,
    SINT16,
    UINT8,
    UINT16,
    Codec,
    bitfield,
    enum_member,
    enumeration,
)
from gateway.gatt.ieee11073 import Medfloat
from gateway.gatt.layout import Field, Layout, Wire
from gateway.gatt.model import Decoded, ReadingsBuilder, flag_names, format_number
from gateway.gatt.uuids import CharacteristicUuid

E = TypeVar("E", bound=IntEnum)


class GlucoseUnit(IntEnum):
    """Flags bit 2 of the measurement: the concentration is a mass or a molar concentration."""

    KG_PER_L = 0
    MOL_PER_L = 1

    @property
    def ucum(self) -> str:
        return "kg/L" if self is GlucoseUnit.KG_PER_L else "mol/L"


class GlucoseType(IntEnum):
    """Low nibble of the Type-Sample Location field; 0 and 11-15 are RFU."""

    CAPILLARY_WHOLE_BLOOD = 1
    CAPILLARY_PLASMA = 2
    VENOUS_WHOLE_BLOOD = 3
    VENOUS_PLASMA = 4
    ARTERIAL_WHOLE_BLOOD = 5
    ARTERIAL_PLASMA = 6
    UNDETERMINED_WHOLE_BLOOD = 7
    UNDETERMINED_PLASMA = 8
    INTERSTITIAL_FLUID = 9
    CONTROL_SOLUTION = 10


class SampleLocation(IntEnum):
    """High nibble of the Type-Sample Location field; 0 and 5-14 are RFU."""

    FINGER = 1
    ALTERNATE_SITE_TEST = 2
    EARLOBE = 3
    CONTROL_SOLUTION = 4
    NOT_AVAILABLE = 15


class GlucoseSensorStatus(IntFlag):
    """Sensor Status Annunciation (uint16); bits 12-15 are RFU."""

    DEVICE_BATTERY_LOW = 1 << 0
    SENSOR_MALFUNCTION = 1 << 1
    SAMPLE_SIZE_INSUFFICIENT = 1 << 2
    STRIP_INSERTION_ERROR = 1 << 3
    STRIP_TYPE_INCORRECT = 1 << 4
    RESULT_TOO_HIGH = 1 << 5
    RESULT_TOO_LOW = 1 << 6
    SENSOR_TEMPERATURE_TOO_HIGH = 1 << 7
    SENSOR_TEMPERATURE_TOO_LOW = 1 << 8
    SENSOR_READ_INTERRUPTED = 1 << 9
    GENERAL_DEVICE_FAULT = 1 << 10
    TIME_FAULT = 1 << 11


SENSOR_STATUS_FLAGS: MappingProxyType[int, str] = MappingProxyType(
    {
        GlucoseSensorStatus.DEVICE_BATTERY_LOW: "battery_low",
        GlucoseSensorStatus.SENSOR_MALFUNCTION: "sensor_malfunction",
        GlucoseSensorStatus.SAMPLE_SIZE_INSUFFICIENT: "sample_insufficient",
        GlucoseSensorStatus.STRIP_INSERTION_ERROR: "strip_insertion_error",
        GlucoseSensorStatus.STRIP_TYPE_INCORRECT: "strip_type_incorrect",
        GlucoseSensorStatus.RESULT_TOO_HIGH: "result_above_range",
        GlucoseSensorStatus.RESULT_TOO_LOW: "result_below_range",
        GlucoseSensorStatus.SENSOR_TEMPERATURE_TOO_HIGH: "sensor_temperature_high",
        GlucoseSensorStatus.SENSOR_TEMPERATURE_TOO_LOW: "sensor_temperature_low",
        GlucoseSensorStatus.SENSOR_READ_INTERRUPTED: "sensor_read_interrupted",
        GlucoseSensorStatus.GENERAL_DEVICE_FAULT: "general_device_fault",
        GlucoseSensorStatus.TIME_FAULT: "time_fault",
    }
)

# Glucose Measurement flags
TIME_OFFSET = 1 << 0
CONCENTRATION = 1 << 1
UNITS_MOL_PER_L = 1 << 2
SENSOR_STATUS = 1 << 3
CONTEXT_FOLLOWS = 1 << 4

MEASUREMENT_LAYOUT = Layout(
    CharacteristicUuid.GLUCOSE_MEASUREMENT.label,
    (
        Field("sequence_number", UINT16),
        Field("base_time", DATE_TIME),
        Field("time_offset", SINT16, TIME_OFFSET),
        Field("concentration", SFLOAT, CONCENTRATION),
        Field("type_sample_location", UINT8, CONCENTRATION),
        Field("sensor_status", bitfield(GlucoseSensorStatus, UINT16), SENSOR_STATUS),
    ),
    semantic_flags=UNITS_MOL_PER_L | CONTEXT_FOLLOWS,
)


@dataclass(frozen=True, slots=True)
class GlucoseMeasurement:
    sequence_number: int
    base_time: GattDateTime
    time_offset: int | None = None  # minutes, added to base_time
    concentration: Medfloat | None = None  # in ``unit``
    unit: GlucoseUnit = GlucoseUnit.KG_PER_L
    glucose_type: GlucoseType | None = None  # present with the concentration
    sample_location: SampleLocation | None = None  # present with the concentration
    sensor_status: GlucoseSensorStatus | None = None
    context_follows: bool = False

    def encode(self) -> bytes:
        parts = (self.concentration, self.glucose_type, self.sample_location)
        if any(part is None for part in parts) and any(part is not None for part in parts):
            raise EncodeError("concentration, glucose_type and sample_location go together")
        type_sample_location = None
        if self.glucose_type is not None and self.sample_location is not None:
            type_sample_location = int(self.glucose_type) | int(self.sample_location) << 4
        values = {
            "sequence_number": self.sequence_number,
            "base_time": self.base_time,
            "time_offset": self.time_offset,
            "concentration": self.concentration,
            "type_sample_location": type_sample_location,
            "sensor_status": self.sensor_status,
        }
        flags = UNITS_MOL_PER_L * self.unit | (CONTEXT_FOLLOWS if self.context_follows else 0)
        return MEASUREMENT_LAYOUT.encode(values, flags)


def decode_glucose_measurement(payload: bytes) -> GlucoseMeasurement:
    wire = MEASUREMENT_LAYOUT.decode(payload)
    values = dict(wire.values)
    packed = values.pop("type_sample_location")
    glucose_type = sample_location = None
    if packed is not None:
        glucose_type = _member(wire, "type_sample_location", GlucoseType, packed & 0x0F)
        sample_location = _member(wire, "type_sample_location", SampleLocation, packed >> 4)
    return GlucoseMeasurement(
        **values,
        unit=GlucoseUnit(1 if wire.flags & UNITS_MOL_PER_L else 0),
        glucose_type=glucose_type,
        sample_location=sample_location,
        context_follows=bool(wire.flags & CONTEXT_FOLLOWS),
    )


def interpret_glucose_measurement(
    measurement: GlucoseMeasurement,
) -> Decoded[GlucoseMeasurement]:
    context = {"sequence_number": str(measurement.sequence_number)}
    if measurement.glucose_type is not None:
        context["glucose_type"] = measurement.glucose_type.name.lower()
    if measurement.sample_location is not None:
        context["sample_location"] = measurement.sample_location.name.lower()
    builder = ReadingsBuilder(
        flags=flag_names(measurement.sensor_status, SENSOR_STATUS_FLAGS), context=context
    )
    builder.timestamp("base_time", measurement.base_time)
    if builder.measured_at is not None and measurement.time_offset:
        try:
            builder.measured_at += timedelta(minutes=measurement.time_offset)
            builder.time_offset_min = measurement.time_offset
        except OverflowError:
            builder.measured_at = None
            builder.skip("time_offset", "base time plus time offset is beyond year 1..9999")
    builder.add("glucose", measurement.concentration, measurement.unit.ucum)
    return builder.build(MEASUREMENT_LAYOUT.characteristic, measurement)


class CarbohydrateId(IntEnum):
    BREAKFAST = 1
    LUNCH = 2
    DINNER = 3
    SNACK = 4
    DRINK = 5
    SUPPER = 6
    BRUNCH = 7


class Meal(IntEnum):
    PREPRANDIAL = 1
    POSTPRANDIAL = 2
    FASTING = 3
    CASUAL = 4
    BEDTIME = 5


class GlucoseTester(IntEnum):
    """Low nibble of the Tester-Health field."""

    SELF = 1
    HEALTH_CARE_PROFESSIONAL = 2
    LAB_TEST = 3
    NOT_AVAILABLE = 15


class GlucoseHealth(IntEnum):
    """High nibble of the Tester-Health field."""

    MINOR_HEALTH_ISSUES = 1
    MAJOR_HEALTH_ISSUES = 2
    DURING_MENSES = 3
    UNDER_STRESS = 4
    NO_HEALTH_ISSUES = 5
    NOT_AVAILABLE = 15


class MedicationId(IntEnum):
    RAPID_ACTING_INSULIN = 1
    SHORT_ACTING_INSULIN = 2
    INTERMEDIATE_ACTING_INSULIN = 3
    LONG_ACTING_INSULIN = 4
    PRE_MIXED_INSULIN = 5


class MedicationUnit(IntEnum):
    """Context flags bit 5."""

    KILOGRAMS = 0
    LITERS = 1


# Glucose Measurement Context flags
CARBOHYDRATE = 1 << 0
MEAL = 1 << 1
TESTER_HEALTH = 1 << 2
EXERCISE = 1 << 3
MEDICATION = 1 << 4
MEDICATION_LITERS = 1 << 5
HBA1C = 1 << 6
EXTENDED_FLAGS = 1 << 7

EXERCISE_DURATION_OVERRUN = 0xFFFF  # seconds field saturated (GLS)


def _percent(raw: bytes) -> int:
    value = raw[0]
    if value > 100:
        raise InvalidField(f"exercise intensity {value} % is above 100")
    return value


def _extended_flags(raw: bytes) -> int:
    # All of its bits are RFU today; a set one would announce fields we cannot place.
    if raw[0]:
        raise InvalidField(f"extended flags 0x{raw[0]:02x} set reserved bits")
    return 0


def _pack_extended_flags(value: int) -> bytes:
    if value:
        raise EncodeError("extended flags bits are all reserved; only 0 can be sent")
    return bytes(1)


CONTEXT_LAYOUT = Layout(
    CharacteristicUuid.GLUCOSE_MEASUREMENT_CONTEXT.label,
    (
        Field("sequence_number", UINT16),
        Field(
            "extended_flags",
            Codec("uint8", 1, _extended_flags, _pack_extended_flags),
            EXTENDED_FLAGS,
        ),
        Field("carbohydrate_id", enumeration(CarbohydrateId, UINT8), CARBOHYDRATE),
        Field("carbohydrate", SFLOAT, CARBOHYDRATE),
        Field("meal", enumeration(Meal, UINT8), MEAL),
        Field("tester_health", UINT8, TESTER_HEALTH),
        Field("exercise_duration", UINT16, EXERCISE),
        Field("exercise_intensity", Codec("uint8", 1, _percent, UINT8.pack), EXERCISE),
        Field("medication_id", enumeration(MedicationId, UINT8), MEDICATION),
        Field("medication", SFLOAT, MEDICATION),
        Field("hba1c", SFLOAT, HBA1C),
    ),
    semantic_flags=MEDICATION_LITERS,
)


@dataclass(frozen=True, slots=True)
class GlucoseMeasurementContext:
    sequence_number: int
    extended_flags: int | None = None  # present (and 0) or absent; its bits are all RFU
    carbohydrate_id: CarbohydrateId | None = None
    carbohydrate: Medfloat | None = None  # kilograms
    meal: Meal | None = None
    tester: GlucoseTester | None = None
    health: GlucoseHealth | None = None
    exercise_duration: int | None = None  # seconds; 65535 means overrun
    exercise_intensity: int | None = None  # percent
    medication_id: MedicationId | None = None
    medication: Medfloat | None = None  # in ``medication_unit``
    medication_unit: MedicationUnit = MedicationUnit.KILOGRAMS
    hba1c: Medfloat | None = None  # percent

    def encode(self) -> bytes:
        if (self.tester is None) != (self.health is None):
            raise EncodeError("tester and health go together")
        tester_health = None
        if self.tester is not None and self.health is not None:
            tester_health = int(self.tester) | int(self.health) << 4
        values = {
            field.name: tester_health
            if field.name == "tester_health"
            else getattr(self, field.name)
            for field in CONTEXT_LAYOUT.fields
        }
        return CONTEXT_LAYOUT.encode(values, MEDICATION_LITERS * self.medication_unit)

    def as_context(self) -> dict[str, str]:
        """Strings for the context of the glucose reading with the same sequence number.

        Amounts are turned into the units people read (g, mg, mL); special values are left out
        (:func:`interpret_glucose_context` records them as skipped).
        """
        context: dict[str, str] = {}
        for key, member in (
            ("meal", self.meal),
            ("carbohydrate_id", self.carbohydrate_id),
            ("tester", self.tester),
            ("health", self.health),
            ("medication_id", self.medication_id),
        ):
            if member is not None:
                context[key] = member.name.lower()
        medication_key, medication_scale = _MEDICATION_CONTEXT[self.medication_unit]
        for key, value, scale in (
            ("carbohydrate_g", self.carbohydrate, 1000.0),
            (medication_key, self.medication, medication_scale),
            ("hba1c_pct", self.hba1c, 1.0),
        ):
            if isinstance(value, float):
                context[key] = format_number(value * scale)
        if self.exercise_duration is not None:
            context["exercise_duration_s"] = (
                "overrun"
                if self.exercise_duration == EXERCISE_DURATION_OVERRUN
                else str(self.exercise_duration)
            )
        if self.exercise_intensity is not None:
            context["exercise_intensity_pct"] = str(self.exercise_intensity)
        return context


_MEDICATION_CONTEXT = MappingProxyType(
    {
        MedicationUnit.KILOGRAMS: ("medication_mg", 1.0e6),
        MedicationUnit.LITERS: ("medication_ml", 1.0e3),
    }
)


def decode_glucose_context(payload: bytes) -> GlucoseMeasurementContext:
    wire = CONTEXT_LAYOUT.decode(payload)
    values = dict(wire.values)
    packed = values.pop("tester_health")
    tester = health = None
    if packed is not None:
        tester = _member(wire, "tester_health", GlucoseTester, packed & 0x0F)
        health = _member(wire, "tester_health", GlucoseHealth, packed >> 4)
    return GlucoseMeasurementContext(
        **values,
        tester=tester,
        health=health,
        medication_unit=MedicationUnit(1 if wire.flags & MEDICATION_LITERS else 0),
    )


def interpret_glucose_context(
    context: GlucoseMeasurementContext,
) -> Decoded[GlucoseMeasurementContext]:
    builder = ReadingsBuilder()
    for name in ("carbohydrate", "medication", "hba1c"):
        builder.number(name, getattr(context, name))
    return builder.build(CONTEXT_LAYOUT.characteristic, context)


def _member(wire: Wire, field: str, enum_type: type[E], value: int) -> E:
    try:
        return enum_member(enum_type, value)
    except InvalidField as exc:
        raise wire.error(field, str(exc)) from None
