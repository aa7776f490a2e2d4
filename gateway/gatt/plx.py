"""Pulse Oximeter Service: PLX Spot-Check (0x2A5E) and PLX Continuous (0x2A5F) Measurements.

Layouts per the Pulse Oximeter Service (PLXS v1.0.1) and the GATT Specification Supplement. SpO2
and pulse rate of the normal (spot-check, or SpO2PR-Normal) pair become readings; the SpO2PR-Fast
and SpO2PR-Slow averages and the pulse amplitude index go into the readings' context, because they
are other averagings of the same measurement rather than new measurements."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from types import MappingProxyType
from typing import TypeVar

from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.fields import DATE_TIME, SFLOAT, UINT16, UINT24, bitfield
from gateway.gatt.ieee11073 import Medfloat
from gateway.gatt.layout import Field, Layout
from gateway.gatt.model import Decoded, ReadingsBuilder, flag_names, format_number
from gateway.gatt.reader import ByteReader
from gateway.gatt.uuids import CharacteristicUuid


class PlxMeasurementStatus(IntFlag):
    """PLX Measurement Status (uint16); bits 0-4 are RFU."""

    MEASUREMENT_ONGOING = 1 << 5
    EARLY_ESTIMATED_DATA = 1 << 6
    VALIDATED_DATA = 1 << 7
    FULLY_QUALIFIED_DATA = 1 << 8
    DATA_FROM_MEASUREMENT_STORAGE = 1 << 9
    DATA_FOR_DEMONSTRATION = 1 << 10
    DATA_FOR_TESTING = 1 << 11
    CALIBRATION_ONGOING = 1 << 12
    MEASUREMENT_UNAVAILABLE = 1 << 13
    QUESTIONABLE_MEASUREMENT_DETECTED = 1 << 14
    INVALID_MEASUREMENT_DETECTED = 1 << 15


class PlxDeviceSensorStatus(IntFlag):
    """PLX Device and Sensor Status (uint24); bits 16-23 are RFU."""

    EXTENDED_DISPLAY_UPDATE_ONGOING = 1 << 0
    EQUIPMENT_MALFUNCTION_DETECTED = 1 << 1
    SIGNAL_PROCESSING_IRREGULARITY_DETECTED = 1 << 2
    INADEQUATE_SIGNAL_DETECTED = 1 << 3
    POOR_SIGNAL_DETECTED = 1 << 4
    LOW_PERFUSION_DETECTED = 1 << 5
    ERRATIC_SIGNAL_DETECTED = 1 << 6
    NONPULSATILE_SIGNAL_DETECTED = 1 << 7
    QUESTIONABLE_PULSE_DETECTED = 1 << 8
    SIGNAL_ANALYSIS_ONGOING = 1 << 9
    SENSOR_INTERFERENCE_DETECTED = 1 << 10
    SENSOR_UNCONNECTED_TO_USER = 1 << 11
    UNKNOWN_SENSOR_CONNECTED = 1 << 12
    SENSOR_DISPLACED = 1 << 13
    SENSOR_MALFUNCTIONING = 1 << 14
    SENSOR_DISCONNECTED = 1 << 15


MEASUREMENT_STATUS_FLAGS: MappingProxyType[int, str] = MappingProxyType(
    {
        PlxMeasurementStatus.MEASUREMENT_ONGOING: "measurement_ongoing",
        PlxMeasurementStatus.EARLY_ESTIMATED_DATA: "early_estimate",
        PlxMeasurementStatus.VALIDATED_DATA: "validated_data",
        PlxMeasurementStatus.FULLY_QUALIFIED_DATA: "fully_qualified_data",
        PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE: "from_device_storage",
        PlxMeasurementStatus.DATA_FOR_DEMONSTRATION: "demonstration_data",
        PlxMeasurementStatus.DATA_FOR_TESTING: "testing_data",
        PlxMeasurementStatus.CALIBRATION_ONGOING: "calibration_ongoing",
        PlxMeasurementStatus.MEASUREMENT_UNAVAILABLE: "measurement_unavailable",
        PlxMeasurementStatus.QUESTIONABLE_MEASUREMENT_DETECTED: "questionable_measurement",
        PlxMeasurementStatus.INVALID_MEASUREMENT_DETECTED: "invalid_measurement",
    }
)

DEVICE_SENSOR_STATUS_FLAGS: MappingProxyType[int, str] = MappingProxyType(
    {
        PlxDeviceSensorStatus.EXTENDED_DISPLAY_UPDATE_ONGOING: "extended_display_update",
        PlxDeviceSensorStatus.EQUIPMENT_MALFUNCTION_DETECTED: "equipment_malfunction",
        PlxDeviceSensorStatus.SIGNAL_PROCESSING_IRREGULARITY_DETECTED: (
            "signal_processing_irregularity"
        ),
        PlxDeviceSensorStatus.INADEQUATE_SIGNAL_DETECTED: "inadequate_signal",
        PlxDeviceSensorStatus.POOR_SIGNAL_DETECTED: "poor_signal",
        PlxDeviceSensorStatus.LOW_PERFUSION_DETECTED: "low_perfusion",
        PlxDeviceSensorStatus.ERRATIC_SIGNAL_DETECTED: "erratic_signal",
        PlxDeviceSensorStatus.NONPULSATILE_SIGNAL_DETECTED: "nonpulsatile_signal",
        PlxDeviceSensorStatus.QUESTIONABLE_PULSE_DETECTED: "questionable_pulse",
        PlxDeviceSensorStatus.SIGNAL_ANALYSIS_ONGOING: "signal_analysis_ongoing",
        PlxDeviceSensorStatus.SENSOR_INTERFERENCE_DETECTED: "sensor_interference",
        PlxDeviceSensorStatus.SENSOR_UNCONNECTED_TO_USER: "sensor_unconnected_to_user",
        PlxDeviceSensorStatus.UNKNOWN_SENSOR_CONNECTED: "unknown_sensor",
        PlxDeviceSensorStatus.SENSOR_DISPLACED: "sensor_displaced",
        PlxDeviceSensorStatus.SENSOR_MALFUNCTIONING: "sensor_malfunction",
        PlxDeviceSensorStatus.SENSOR_DISCONNECTED: "sensor_disconnected",
    }
)


class PlxSupportedFeatures(IntFlag):
    """PLX Features' Supported Features (uint16); bits 8-15 are RFU."""

    MEASUREMENT_STATUS = 1 << 0  # the Measurement Status Support field follows
    DEVICE_SENSOR_STATUS = 1 << 1  # the Device and Sensor Status Support field follows
    SPOT_CHECK_STORAGE = 1 << 2  # stored spot checks, read through the RACP
    SPOT_CHECK_TIMESTAMP = 1 << 3
    SPO2PR_FAST = 1 << 4
    SPO2PR_SLOW = 1 << 5
    PULSE_AMPLITUDE_INDEX = 1 << 6
    MULTIPLE_BONDS = 1 << 7


_MEASUREMENT_STATUS = bitfield(PlxMeasurementStatus, UINT16)
_DEVICE_SENSOR_STATUS = bitfield(PlxDeviceSensorStatus, UINT24)

# PLX Spot-Check Measurement flags (PLXS)
SPOT_TIMESTAMP = 1 << 0
SPOT_MEASUREMENT_STATUS = 1 << 1
SPOT_DEVICE_SENSOR_STATUS = 1 << 2
SPOT_PULSE_AMPLITUDE_INDEX = 1 << 3
SPOT_DEVICE_CLOCK_NOT_SET = 1 << 4

SPOT_CHECK_LAYOUT = Layout(
    CharacteristicUuid.PLX_SPOT_CHECK_MEASUREMENT.label,
    (
        Field("spo2", SFLOAT),
        Field("pulse_rate", SFLOAT),
        Field("timestamp", DATE_TIME, SPOT_TIMESTAMP),
        Field("measurement_status", _MEASUREMENT_STATUS, SPOT_MEASUREMENT_STATUS),
        Field("device_sensor_status", _DEVICE_SENSOR_STATUS, SPOT_DEVICE_SENSOR_STATUS),
        Field("pulse_amplitude_index", SFLOAT, SPOT_PULSE_AMPLITUDE_INDEX),
    ),
    semantic_flags=SPOT_DEVICE_CLOCK_NOT_SET,
)

# PLX Continuous Measurement flags (PLXS)
CONTINUOUS_FAST = 1 << 0
CONTINUOUS_SLOW = 1 << 1
CONTINUOUS_MEASUREMENT_STATUS = 1 << 2
CONTINUOUS_DEVICE_SENSOR_STATUS = 1 << 3
CONTINUOUS_PULSE_AMPLITUDE_INDEX = 1 << 4

CONTINUOUS_LAYOUT = Layout(
    CharacteristicUuid.PLX_CONTINUOUS_MEASUREMENT.label,
    (
        Field("spo2", SFLOAT),
        Field("pulse_rate", SFLOAT),
        Field("spo2_fast", SFLOAT, CONTINUOUS_FAST),
        Field("pulse_rate_fast", SFLOAT, CONTINUOUS_FAST),
        Field("spo2_slow", SFLOAT, CONTINUOUS_SLOW),
        Field("pulse_rate_slow", SFLOAT, CONTINUOUS_SLOW),
        Field("measurement_status", _MEASUREMENT_STATUS, CONTINUOUS_MEASUREMENT_STATUS),
        Field("device_sensor_status", _DEVICE_SENSOR_STATUS, CONTINUOUS_DEVICE_SENSOR_STATUS),
        Field("pulse_amplitude_index", SFLOAT, CONTINUOUS_PULSE_AMPLITUDE_INDEX),
    ),
)


@dataclass(frozen=True, slots=True)
class PlxSpotCheckMeasurement:
    spo2: Medfloat  # %
    pulse_rate: Medfloat  # beats per minute
    timestamp: GattDateTime | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_sensor_status: PlxDeviceSensorStatus | None = None
    pulse_amplitude_index: Medfloat | None = None  # %
    device_clock_not_set: bool = False

    def encode(self) -> bytes:
        values = {field.name: getattr(self, field.name) for field in SPOT_CHECK_LAYOUT.fields}
        flags = SPOT_DEVICE_CLOCK_NOT_SET if self.device_clock_not_set else 0
        return SPOT_CHECK_LAYOUT.encode(values, flags)


@dataclass(frozen=True, slots=True)
class PlxContinuousMeasurement:
    spo2: Medfloat  # SpO2PR-Normal, %
    pulse_rate: Medfloat  # SpO2PR-Normal, beats per minute
    spo2_fast: Medfloat | None = None
    pulse_rate_fast: Medfloat | None = None
    spo2_slow: Medfloat | None = None
    pulse_rate_slow: Medfloat | None = None
    measurement_status: PlxMeasurementStatus | None = None
    device_sensor_status: PlxDeviceSensorStatus | None = None
    pulse_amplitude_index: Medfloat | None = None  # %

    def encode(self) -> bytes:
        values = {field.name: getattr(self, field.name) for field in CONTINUOUS_LAYOUT.fields}
        return CONTINUOUS_LAYOUT.encode(values)


@dataclass(frozen=True, slots=True)
class PlxFeatures:
    """PLX Features (0x2A60): what the oximeter can do, and which status bits it can report.

    The two support fields are present exactly when their Supported Features bit says so."""

    supported: PlxSupportedFeatures
    measurement_status_support: PlxMeasurementStatus | None = None
    device_sensor_status_support: PlxDeviceSensorStatus | None = None

    @property
    def stores_spot_checks(self) -> bool:
        return PlxSupportedFeatures.SPOT_CHECK_STORAGE in self.supported

    def encode(self) -> bytes:
        supported = self.supported & ~(
            PlxSupportedFeatures.MEASUREMENT_STATUS | PlxSupportedFeatures.DEVICE_SENSOR_STATUS
        )
        out = b""
        if self.measurement_status_support is not None:
            supported |= PlxSupportedFeatures.MEASUREMENT_STATUS
            out += int(self.measurement_status_support).to_bytes(2, "little")
        if self.device_sensor_status_support is not None:
            supported |= PlxSupportedFeatures.DEVICE_SENSOR_STATUS
            out += int(self.device_sensor_status_support).to_bytes(3, "little")
        return int(supported).to_bytes(2, "little") + out


def decode_plx_features(payload: bytes) -> PlxFeatures:
    reader = ByteReader(CharacteristicUuid.PLX_FEATURES.label, payload)
    supported = PlxSupportedFeatures(reader.uint(2, "supported features"))
    measurement = device = None
    if PlxSupportedFeatures.MEASUREMENT_STATUS in supported:
        measurement = PlxMeasurementStatus(
            reader.uint(2, "measurement status support", promised_by="supported features bit 0")
        )
    if PlxSupportedFeatures.DEVICE_SENSOR_STATUS in supported:
        device = PlxDeviceSensorStatus(
            reader.uint(
                3, "device and sensor status support", promised_by="supported features bit 1"
            )
        )
    reader.expect_end()
    return PlxFeatures(supported, measurement, device)


Measurement = TypeVar("Measurement", PlxSpotCheckMeasurement, PlxContinuousMeasurement)


def decode_plx_spot_check(payload: bytes) -> PlxSpotCheckMeasurement:
    wire = SPOT_CHECK_LAYOUT.decode(payload)
    return PlxSpotCheckMeasurement(
        **wire.values, device_clock_not_set=bool(wire.flags & SPOT_DEVICE_CLOCK_NOT_SET)
    )


def decode_plx_continuous(payload: bytes) -> PlxContinuousMeasurement:
    return PlxContinuousMeasurement(**CONTINUOUS_LAYOUT.decode(payload).values)


def interpret_plx_spot_check(
    measurement: PlxSpotCheckMeasurement,
) -> Decoded[PlxSpotCheckMeasurement]:
    builder = _builder(measurement, "spot_check")
    if measurement.device_clock_not_set and measurement.timestamp is not None:
        # The device says its own timestamp is meaningless (PLXS flags bit 4).
        builder.skip("timestamp", "device clock is not set")
    else:
        builder.timestamp("timestamp", measurement.timestamp)
    return _finish(builder, measurement, SPOT_CHECK_LAYOUT.characteristic)


def interpret_plx_continuous(
    measurement: PlxContinuousMeasurement,
) -> Decoded[PlxContinuousMeasurement]:
    builder = _builder(measurement, "continuous")
    for name in ("spo2_fast", "pulse_rate_fast", "spo2_slow", "pulse_rate_slow"):
        number = builder.number(name, getattr(measurement, name))
        if number is not None:
            builder.context[name] = format_number(number)
    return _finish(builder, measurement, CONTINUOUS_LAYOUT.characteristic)


def _builder(
    measurement: PlxSpotCheckMeasurement | PlxContinuousMeasurement, mode: str
) -> ReadingsBuilder:
    flags = flag_names(measurement.measurement_status, MEASUREMENT_STATUS_FLAGS) + flag_names(
        measurement.device_sensor_status, DEVICE_SENSOR_STATUS_FLAGS
    )
    builder = ReadingsBuilder(flags=flags, context={"plx_mode": mode})
    index = builder.number("pulse_amplitude_index", measurement.pulse_amplitude_index)
    if index is not None:
        builder.context["pulse_amplitude_index"] = format_number(index)
    return builder


def _finish(
    builder: ReadingsBuilder,
    measurement: Measurement,
    characteristic: str,
) -> Decoded[Measurement]:
    builder.add("spo2", measurement.spo2, "%")
    builder.add("pulse_rate", measurement.pulse_rate, "/min", context={"pulse_source": "oximeter"})
    return builder.build(characteristic, measurement)
