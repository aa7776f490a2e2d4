"""Pure codecs for the GATT health profiles the gateway reads.

``decode(uuid, payload)`` gives the readings of one characteristic value; ``decode_all`` gives
everything (skips with reasons, and the decoded record). Each profile's record is a dataclass
with ``encode()``, which the simulated devices use, and a ``decode_*`` function returning the
same dataclass. Malformed values raise :class:`DecodeError`. See docs/ble.md.
"""

from gateway.gatt.blood_pressure import (
    BloodPressureMeasurement,
    BloodPressureStatus,
    IntermediateCuffPressure,
    PressureUnit,
    decode_blood_pressure_measurement,
    decode_intermediate_cuff_pressure,
)
from gateway.gatt.current_time import CurrentTime
from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.device_info import (
    BatteryLevel,
    DeviceInformation,
    SystemIdentifier,
    decode_battery_level,
    decode_device_information,
    decode_system_id,
)
from gateway.gatt.errors import DecodeError, EncodeError
from gateway.gatt.glucose import (
    CarbohydrateId,
    GlucoseHealth,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseSensorStatus,
    GlucoseTester,
    GlucoseType,
    GlucoseUnit,
    Meal,
    MedicationId,
    MedicationUnit,
    SampleLocation,
    decode_glucose_context,
    decode_glucose_measurement,
)
from gateway.gatt.ieee11073 import (
    Medfloat,
    SpecialValue,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)
from gateway.gatt.local_time import DstOffset, LocalTimeInformation
from gateway.gatt.model import Decoded, Reading, Skipped
from gateway.gatt.plx import (
    PlxContinuousMeasurement,
    PlxDeviceSensorStatus,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PlxSupportedFeatures,
    decode_plx_continuous,
    decode_plx_features,
    decode_plx_spot_check,
)
from gateway.gatt.racp import (
    RacpFilterType,
    RacpMessage,
    RacpOpCode,
    RacpOperator,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    decode_racp,
)
from gateway.gatt.registry import CHARACTERISTICS, Characteristic, decode, decode_all, lookup
from gateway.gatt.thermometer import (
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
    decode_intermediate_temperature,
    decode_temperature_measurement,
    decode_temperature_type,
    encode_temperature_type,
)
from gateway.gatt.uuids import CharacteristicUuid, full_uuid, short_uuid
from gateway.gatt.weight_scale import WeightMeasurement, WeightUnits, decode_weight_measurement

__all__ = [
    "CHARACTERISTICS",
    "BatteryLevel",
    "BloodPressureMeasurement",
    "BloodPressureStatus",
    "CarbohydrateId",
    "Characteristic",
    "CharacteristicUuid",
    "CurrentTime",
    "DecodeError",
    "Decoded",
    "DeviceInformation",
    "DstOffset",
    "EncodeError",
    "GattDateTime",
    "GlucoseHealth",
    "GlucoseMeasurement",
    "GlucoseMeasurementContext",
    "GlucoseSensorStatus",
    "GlucoseTester",
    "GlucoseType",
    "GlucoseUnit",
    "IntermediateCuffPressure",
    "LocalTimeInformation",
    "Meal",
    "Medfloat",
    "MedicationId",
    "MedicationUnit",
    "PlxContinuousMeasurement",
    "PlxDeviceSensorStatus",
    "PlxFeatures",
    "PlxMeasurementStatus",
    "PlxSpotCheckMeasurement",
    "PlxSupportedFeatures",
    "PressureUnit",
    "RacpFilterType",
    "RacpMessage",
    "RacpOpCode",
    "RacpOperator",
    "RacpRecordCount",
    "RacpRequest",
    "RacpResponse",
    "RacpResponseValue",
    "Reading",
    "SampleLocation",
    "Skipped",
    "SpecialValue",
    "SystemIdentifier",
    "TemperatureMeasurement",
    "TemperatureType",
    "TemperatureUnit",
    "WeightMeasurement",
    "WeightUnits",
    "decode",
    "decode_all",
    "decode_battery_level",
    "decode_blood_pressure_measurement",
    "decode_device_information",
    "decode_float",
    "decode_glucose_context",
    "decode_glucose_measurement",
    "decode_intermediate_cuff_pressure",
    "decode_intermediate_temperature",
    "decode_plx_continuous",
    "decode_plx_features",
    "decode_plx_spot_check",
    "decode_racp",
    "decode_sfloat",
    "decode_system_id",
    "decode_temperature_measurement",
    "decode_temperature_type",
    "decode_weight_measurement",
    "encode_float",
    "encode_sfloat",
    "encode_temperature_type",
    "full_uuid",
    "lookup",
    "short_uuid",
]
