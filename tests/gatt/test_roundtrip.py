"""encode -> decode round trips for every characteristic, across all flag combinations.

Every optional field is drawn as absent or present (so every combination of presence flags and
unit flags occurs), every numeric field as a wire-representable number or a special value.
"""

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.gatt import (
    CHARACTERISTICS,
    BatteryLevel,
    BloodPressureMeasurement,
    BloodPressureStatus,
    CarbohydrateId,
    CharacteristicUuid,
    DeviceInformation,
    GattDateTime,
    GlucoseHealth,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    GlucoseSensorStatus,
    GlucoseTester,
    GlucoseType,
    GlucoseUnit,
    IntermediateCuffPressure,
    Meal,
    MedicationId,
    MedicationUnit,
    PlxContinuousMeasurement,
    PlxDeviceSensorStatus,
    PlxMeasurementStatus,
    PlxSpotCheckMeasurement,
    PressureUnit,
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    SampleLocation,
    SpecialValue,
    SystemIdentifier,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
    WeightMeasurement,
    WeightUnits,
    decode_all,
    encode_temperature_type,
)
from gateway.gatt.device_info import DEVICE_INFORMATION_FIELDS
from gateway.gatt.fields import defined_bits
from gateway.gatt.ieee11073 import FLOAT, SFLOAT, scaled
from gateway.gatt.local_time import ZONE_RANGE, ZONE_UNKNOWN, DstOffset, LocalTimeInformation
from telemon.flags import FLAGS
from telemon.metrics import METRICS
from telemon.system_id import format_system_id

EXAMPLES = settings(max_examples=300, deadline=None)


def medfloat(fmt):
    top = fmt.largest_mantissa
    numbers = st.builds(
        scaled,
        st.integers(-top, top),
        st.integers(fmt.exponent_range.start, fmt.exponent_range.stop - 1),
    )
    return st.one_of(numbers, numbers, st.sampled_from(SpecialValue))


sfloats = medfloat(SFLOAT)
floats32 = medfloat(FLOAT)


def optional(strategy):
    return st.none() | strategy


def bits(flag_type, exclude=0):
    mask = defined_bits(flag_type) & ~exclude
    return st.integers(0, 0xFFFFFF).map(lambda raw: flag_type(raw & mask))


@st.composite
def date_times(draw):
    # Known dates, and dates whose year, month or day is "not known" (0).
    year = draw(st.sampled_from([0]) | st.integers(1582, 9999))
    month = draw(st.integers(0, 12))
    day = draw(st.integers(0, 28))
    clock = (draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59)))
    return GattDateTime(year, month, day, *clock)


timestamps = optional(date_times())
user_ids = optional(st.integers(0, 255))

spot_checks = st.builds(
    PlxSpotCheckMeasurement,
    spo2=sfloats,
    pulse_rate=sfloats,
    timestamp=timestamps,
    measurement_status=optional(bits(PlxMeasurementStatus)),
    device_sensor_status=optional(bits(PlxDeviceSensorStatus)),
    pulse_amplitude_index=optional(sfloats),
    device_clock_not_set=st.booleans(),
)


@st.composite
def continuous(draw):
    fast = draw(st.booleans())
    slow = draw(st.booleans())
    return PlxContinuousMeasurement(
        spo2=draw(sfloats),
        pulse_rate=draw(sfloats),
        spo2_fast=draw(sfloats) if fast else None,
        pulse_rate_fast=draw(sfloats) if fast else None,
        spo2_slow=draw(sfloats) if slow else None,
        pulse_rate_slow=draw(sfloats) if slow else None,
        measurement_status=draw(optional(bits(PlxMeasurementStatus))),
        device_sensor_status=draw(optional(bits(PlxDeviceSensorStatus))),
        pulse_amplitude_index=draw(optional(sfloats)),
    )


# Pulse rate range 3 (both bits) is reserved: draw one of the two at most.
bp_status = optional(
    st.builds(
        lambda flags, pulse_range: flags | pulse_range,
        bits(
            BloodPressureStatus,
            exclude=BloodPressureStatus.PULSE_RATE_ABOVE_RANGE
            | BloodPressureStatus.PULSE_RATE_BELOW_RANGE,
        ),
        st.sampled_from(
            [
                BloodPressureStatus(0),
                BloodPressureStatus.PULSE_RATE_ABOVE_RANGE,
                BloodPressureStatus.PULSE_RATE_BELOW_RANGE,
            ]
        ),
    )
)

blood_pressures = st.builds(
    BloodPressureMeasurement,
    systolic=sfloats,
    diastolic=sfloats,
    mean_arterial_pressure=sfloats,
    unit=st.sampled_from(PressureUnit),
    timestamp=timestamps,
    pulse_rate=optional(sfloats),
    user_id=user_ids,
    status=bp_status,
)

cuff_pressures = st.builds(
    IntermediateCuffPressure,
    cuff_pressure=sfloats,
    unit=st.sampled_from(PressureUnit),
    timestamp=timestamps,
    pulse_rate=optional(sfloats),
    user_id=user_ids,
    status=bp_status,
)


@st.composite
def glucose_measurements(draw):
    concentration = draw(st.booleans())
    return GlucoseMeasurement(
        sequence_number=draw(st.integers(0, 0xFFFF)),
        base_time=draw(date_times()),
        time_offset=draw(optional(st.integers(-0x8000, 0x7FFF))),
        concentration=draw(sfloats) if concentration else None,
        unit=draw(st.sampled_from(GlucoseUnit)),
        glucose_type=draw(st.sampled_from(GlucoseType)) if concentration else None,
        sample_location=draw(st.sampled_from(SampleLocation)) if concentration else None,
        sensor_status=draw(optional(bits(GlucoseSensorStatus))),
        context_follows=draw(st.booleans()),
    )


@st.composite
def glucose_contexts(draw):
    carbohydrate, tester_health, exercise, medication = (draw(st.booleans()) for _ in range(4))
    return GlucoseMeasurementContext(
        sequence_number=draw(st.integers(0, 0xFFFF)),
        extended_flags=draw(st.sampled_from([None, 0])),
        carbohydrate_id=draw(st.sampled_from(CarbohydrateId)) if carbohydrate else None,
        carbohydrate=draw(sfloats) if carbohydrate else None,
        meal=draw(optional(st.sampled_from(Meal))),
        tester=draw(st.sampled_from(GlucoseTester)) if tester_health else None,
        health=draw(st.sampled_from(GlucoseHealth)) if tester_health else None,
        exercise_duration=draw(st.integers(0, 0xFFFF)) if exercise else None,
        exercise_intensity=draw(st.integers(0, 100)) if exercise else None,
        medication_id=draw(st.sampled_from(MedicationId)) if medication else None,
        medication=draw(sfloats) if medication else None,
        medication_unit=draw(st.sampled_from(MedicationUnit)),
        hba1c=draw(optional(sfloats)),
    )


temperatures = st.builds(
    TemperatureMeasurement,
    temperature=floats32,
    unit=st.sampled_from(TemperatureUnit),
    timestamp=timestamps,
    temperature_type=optional(st.sampled_from(TemperatureType)),
)


@st.composite
def weights(draw):
    units = draw(st.sampled_from(WeightUnits))
    weight_steps, height_steps = (200, 1000) if units is WeightUnits.SI else (100, 10)
    bmi_and_height = draw(st.booleans())
    return WeightMeasurement(
        weight=draw(optional(st.integers(0, 0xFFFE).map(lambda raw: raw / weight_steps))),
        units=units,
        timestamp=draw(timestamps),
        user_id=draw(user_ids),
        bmi=draw(st.integers(0, 0xFFFF)) / 10 if bmi_and_height else None,
        height=draw(st.integers(0, 0xFFFF)) / height_steps if bmi_and_height else None,
    )


sequence_filters = st.integers(0, 0xFFFF)
time_filters = date_times()


@st.composite
def racp_requests(draw):
    op_code = draw(
        st.sampled_from(
            [
                RacpOpCode.REPORT_STORED_RECORDS,
                RacpOpCode.DELETE_STORED_RECORDS,
                RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
                RacpOpCode.ABORT_OPERATION,
            ]
        )
    )
    if op_code is RacpOpCode.ABORT_OPERATION:
        return RacpRequest.abort()
    operator = draw(st.sampled_from([o for o in RacpOperator if o is not RacpOperator.NULL]))
    count = {RacpOperator.LESS_THAN_OR_EQUAL_TO: 1, RacpOperator.GREATER_THAN_OR_EQUAL_TO: 1}
    count[RacpOperator.WITHIN_RANGE_OF] = 2
    if operator not in count:
        return RacpRequest(op_code, operator)
    filter_type = draw(st.sampled_from(RacpFilterType))
    values = sequence_filters if filter_type is RacpFilterType.SEQUENCE_NUMBER else time_filters
    operand = tuple(draw(values) for _ in range(count[operator]))
    return RacpRequest(op_code, operator, filter_type, operand)


racp_messages = st.one_of(
    racp_requests(),
    st.builds(RacpRecordCount, st.integers(0, 0xFFFF)),
    st.builds(
        RacpResponse,
        st.sampled_from(RacpOpCode) | st.integers(7, 255),
        st.sampled_from(RacpResponseValue),
    ),
)

device_strings = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60
).filter(lambda text: len(text.encode()) <= 512)

RECORDS = {
    CharacteristicUuid.PLX_SPOT_CHECK_MEASUREMENT: spot_checks,
    CharacteristicUuid.PLX_CONTINUOUS_MEASUREMENT: continuous(),
    CharacteristicUuid.BLOOD_PRESSURE_MEASUREMENT: blood_pressures,
    CharacteristicUuid.INTERMEDIATE_CUFF_PRESSURE: cuff_pressures,
    CharacteristicUuid.GLUCOSE_MEASUREMENT: glucose_measurements(),
    CharacteristicUuid.GLUCOSE_MEASUREMENT_CONTEXT: glucose_contexts(),
    CharacteristicUuid.RECORD_ACCESS_CONTROL_POINT: racp_messages,
    CharacteristicUuid.TEMPERATURE_MEASUREMENT: temperatures,
    CharacteristicUuid.WEIGHT_MEASUREMENT: weights(),
    CharacteristicUuid.BATTERY_LEVEL: st.builds(BatteryLevel, st.integers(0, 100)),
    CharacteristicUuid.SYSTEM_ID: st.binary(min_size=8, max_size=8).map(
        lambda raw: SystemIdentifier(format_system_id(raw))
    ),
    CharacteristicUuid.LOCAL_TIME_INFORMATION: st.builds(
        LocalTimeInformation,
        st.sampled_from([ZONE_UNKNOWN]) | st.integers(ZONE_RANGE.start, ZONE_RANGE.stop - 1),
        st.sampled_from(DstOffset),
    ),
}

# (uuid, record, bytes) for every characteristic, including those whose encoder takes options.
encoded_records = st.one_of(
    *(
        strategy.map(lambda record, uuid=uuid: (uuid, record, record.encode()))
        for uuid, strategy in RECORDS.items()
    ),
    temperatures.map(
        lambda r: (CharacteristicUuid.INTERMEDIATE_TEMPERATURE, r, r.encode(intermediate=True))
    ),
    st.sampled_from(TemperatureType).map(
        lambda t: (CharacteristicUuid.TEMPERATURE_TYPE, t, encode_temperature_type(t))
    ),
    *(
        device_strings.map(
            lambda text, uuid=uuid, field=field: (
                uuid,
                DeviceInformation(field, text),
                DeviceInformation(field, text).encode(),
            )
        )
        for uuid, field in DEVICE_INFORMATION_FIELDS.items()
    ),
)


def test_every_registered_characteristic_has_a_round_trip_strategy():
    covered = {*RECORDS, CharacteristicUuid.INTERMEDIATE_TEMPERATURE}
    covered |= {CharacteristicUuid.TEMPERATURE_TYPE, *DEVICE_INFORMATION_FIELDS}
    assert covered == set(CHARACTERISTICS)


@EXAMPLES
@given(encoded_records)
def test_encode_then_decode_gives_back_the_record(item):
    uuid, record, payload = item
    assert decode_all(uuid.full, payload).record == record


_CONTEXT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@EXAMPLES
@given(encoded_records)
def test_readings_fit_the_observation_contract(item):
    uuid, _, payload = item
    decoded = decode_all(f"0x{uuid.value:04X}", payload)
    for reading in decoded.readings:
        assert reading.metric in METRICS
        assert reading.unit == METRICS[reading.metric].unit
        assert math.isfinite(reading.value)
        assert set(reading.flags) <= set(FLAGS)
        assert len(reading.context) <= 16
        for key, value in reading.context.items():
            assert _CONTEXT_KEY.match(key)
            assert isinstance(value, str) and len(value) <= 64
        assert reading.measured_at is None or reading.measured_at.tzinfo is None


@EXAMPLES
@given(encoded_records)
def test_every_special_value_is_a_skip_never_a_reading(item):
    uuid, record, payload = item
    decoded = decode_all(uuid.full, payload)
    specials = sum(
        isinstance(getattr(record, name, None), SpecialValue)
        for name in getattr(record, "__slots__", ())
    )
    skipped_specials = [s for s in decoded.skipped if "special value" in s.reason]
    if uuid is CharacteristicUuid.INTERMEDIATE_CUFF_PRESSURE or uuid is (
        CharacteristicUuid.INTERMEDIATE_TEMPERATURE
    ):
        assert not decoded.readings and not decoded.skipped
    else:
        assert len(skipped_specials) == specials
