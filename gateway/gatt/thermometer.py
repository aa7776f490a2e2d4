"""Health Thermometer Service: Temperature Measurement (0x2A1C), Intermediate Temperature
(0x2A1E) and Temperature Type (0x2A1D).

Layout per the Health Thermometer Service (HTS) and the GATT Specification Supplement. The
temperature is a 32-bit FLOAT. Intermediate temperatures (the reading settling on the display)
decode but yield no reading; a Temperature Type characteristic is the site for devices that do not
put it in every measurement."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.errors import InvalidField
from gateway.gatt.fields import DATE_TIME, FLOAT, UINT8, enumeration
from gateway.gatt.ieee11073 import Medfloat
from gateway.gatt.layout import Field, Layout
from gateway.gatt.model import Decoded, ReadingsBuilder
from gateway.gatt.reader import ByteReader
from gateway.gatt.uuids import CharacteristicUuid


class TemperatureUnit(IntEnum):
    """Flags bit 0."""

    CELSIUS = 0
    FAHRENHEIT = 1

    @property
    def ucum(self) -> str:
        return "Cel" if self is TemperatureUnit.CELSIUS else "[degF]"


class TemperatureType(IntEnum):
    """Temperature Type (GATT Specification Supplement); 0 and 10-255 are RFU."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


UNITS_FAHRENHEIT = 1 << 0
TIMESTAMP = 1 << 1
TEMPERATURE_TYPE = 1 << 2

_TYPE = enumeration(TemperatureType, UINT8)


def _layout(characteristic: CharacteristicUuid) -> Layout:
    return Layout(
        characteristic.label,
        (
            Field("temperature", FLOAT),
            Field("timestamp", DATE_TIME, TIMESTAMP),
            Field("temperature_type", _TYPE, TEMPERATURE_TYPE),
        ),
        semantic_flags=UNITS_FAHRENHEIT,
    )


MEASUREMENT_LAYOUT = _layout(CharacteristicUuid.TEMPERATURE_MEASUREMENT)
INTERMEDIATE_LAYOUT = _layout(CharacteristicUuid.INTERMEDIATE_TEMPERATURE)


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    temperature: Medfloat
    unit: TemperatureUnit = TemperatureUnit.CELSIUS
    timestamp: GattDateTime | None = None
    temperature_type: TemperatureType | None = None

    def encode(self, *, intermediate: bool = False) -> bytes:
        layout = INTERMEDIATE_LAYOUT if intermediate else MEASUREMENT_LAYOUT
        values = {field.name: getattr(self, field.name) for field in layout.fields}
        return layout.encode(values, UNITS_FAHRENHEIT * self.unit)


def _decode(layout: Layout, payload: bytes) -> TemperatureMeasurement:
    wire = layout.decode(payload)
    return TemperatureMeasurement(
        **wire.values, unit=TemperatureUnit(wire.flags & UNITS_FAHRENHEIT)
    )


def decode_temperature_measurement(payload: bytes) -> TemperatureMeasurement:
    return _decode(MEASUREMENT_LAYOUT, payload)


def decode_intermediate_temperature(payload: bytes) -> TemperatureMeasurement:
    return _decode(INTERMEDIATE_LAYOUT, payload)


def interpret_temperature_measurement(
    measurement: TemperatureMeasurement,
) -> Decoded[TemperatureMeasurement]:
    context = {}
    if measurement.temperature_type is not None:
        context["temperature_type"] = measurement.temperature_type.name.lower()
    builder = ReadingsBuilder(context=context)
    builder.timestamp("timestamp", measurement.timestamp)
    builder.add("body_temperature", measurement.temperature, measurement.unit.ucum)
    return builder.build(MEASUREMENT_LAYOUT.characteristic, measurement)


def interpret_intermediate_temperature(
    measurement: TemperatureMeasurement,
) -> Decoded[TemperatureMeasurement]:
    return Decoded(INTERMEDIATE_LAYOUT.characteristic, measurement)


TYPE_CHARACTERISTIC = CharacteristicUuid.TEMPERATURE_TYPE.label


def decode_temperature_type(payload: bytes) -> TemperatureType:
    reader = ByteReader(TYPE_CHARACTERISTIC, payload)
    raw = reader.take(1, "temperature type")
    reader.expect_end()
    try:
        return _TYPE.unpack(raw)
    except InvalidField as exc:
        raise reader.error(str(exc), offset=0) from None


def encode_temperature_type(temperature_type: TemperatureType) -> bytes:
    return _TYPE.pack(temperature_type)


def interpret_temperature_type(temperature_type: TemperatureType) -> Decoded[TemperatureType]:
    return Decoded(TYPE_CHARACTERISTIC, temperature_type)
