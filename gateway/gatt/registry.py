"""UUID -> decoder: the one table that says which characteristics this package understands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

from gateway.gatt import (
    blood_pressure,
    device_info,
    glucose,
    local_time,
    plx,
    racp,
    thermometer,
    weight_scale,
)
from gateway.gatt.errors import DecodeError
from gateway.gatt.model import Decoded, Reading
from gateway.gatt.uuids import CharacteristicUuid, short_uuid


@dataclass(frozen=True, slots=True)
class Characteristic:
    uuid: CharacteristicUuid
    parse: Callable[[bytes], Any]  # bytes -> the profile's record dataclass
    interpret: Callable[[Any], Decoded[Any]]  # record -> readings, skips and the record

    def decode(self, payload: bytes) -> Decoded[Any]:
        return self.interpret(self.parse(payload))


_U = CharacteristicUuid
_ENTRIES = (
    Characteristic(
        _U.PLX_SPOT_CHECK_MEASUREMENT, plx.decode_plx_spot_check, plx.interpret_plx_spot_check
    ),
    Characteristic(
        _U.PLX_CONTINUOUS_MEASUREMENT, plx.decode_plx_continuous, plx.interpret_plx_continuous
    ),
    Characteristic(
        _U.BLOOD_PRESSURE_MEASUREMENT,
        blood_pressure.decode_blood_pressure_measurement,
        blood_pressure.interpret_blood_pressure_measurement,
    ),
    Characteristic(
        _U.INTERMEDIATE_CUFF_PRESSURE,
        blood_pressure.decode_intermediate_cuff_pressure,
        blood_pressure.interpret_intermediate_cuff_pressure,
    ),
    Characteristic(
        _U.GLUCOSE_MEASUREMENT,
        glucose.decode_glucose_measurement,
        glucose.interpret_glucose_measurement,
    ),
    Characteristic(
        _U.GLUCOSE_MEASUREMENT_CONTEXT,
        glucose.decode_glucose_context,
        glucose.interpret_glucose_context,
    ),
    Characteristic(_U.RECORD_ACCESS_CONTROL_POINT, racp.decode_racp, racp.interpret_racp),
    Characteristic(
        _U.TEMPERATURE_MEASUREMENT,
        thermometer.decode_temperature_measurement,
        thermometer.interpret_temperature_measurement,
    ),
    Characteristic(
        _U.INTERMEDIATE_TEMPERATURE,
        thermometer.decode_intermediate_temperature,
        thermometer.interpret_intermediate_temperature,
    ),
    Characteristic(
        _U.TEMPERATURE_TYPE,
        thermometer.decode_temperature_type,
        thermometer.interpret_temperature_type,
    ),
    Characteristic(
        _U.WEIGHT_MEASUREMENT,
        weight_scale.decode_weight_measurement,
        weight_scale.interpret_weight_measurement,
    ),
    Characteristic(
        _U.BATTERY_LEVEL, device_info.decode_battery_level, device_info.interpret_battery_level
    ),
    Characteristic(_U.SYSTEM_ID, device_info.decode_system_id, device_info.interpret_system_id),
    Characteristic(
        _U.LOCAL_TIME_INFORMATION,
        local_time.decode_local_time_information,
        local_time.interpret_local_time_information,
    ),
    *(
        Characteristic(
            uuid,
            partial(device_info.decode_device_information, uuid),
            device_info.interpret_device_information,
        )
        for uuid in device_info.DEVICE_INFORMATION_FIELDS
    ),
)

CHARACTERISTICS: MappingProxyType[int, Characteristic] = MappingProxyType(
    {entry.uuid.value: entry for entry in _ENTRIES}
)


def lookup(uuid: str) -> Characteristic:
    """The characteristic behind ``uuid``; DecodeError if it is not one this package decodes."""
    number = short_uuid(uuid)
    if number is None or number not in CHARACTERISTICS:
        raise DecodeError(repr(uuid), 0, "not a characteristic this gateway decodes")
    return CHARACTERISTICS[number]


def decode_all(uuid: str, payload: bytes) -> Decoded[Any]:
    """Everything the value says: readings, skipped fields and the decoded record."""
    return lookup(uuid).decode(payload)


def decode(uuid: str, payload: bytes) -> list[Reading]:
    """Only the readings worth storing, in canonical units."""
    return list(decode_all(uuid, payload).readings)
