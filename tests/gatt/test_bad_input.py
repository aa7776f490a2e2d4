"""Malformed values: each raises DecodeError naming the characteristic, offset and problem."""

import contextlib
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.gatt import (
    CHARACTERISTICS,
    BloodPressureMeasurement,
    BloodPressureStatus,
    DecodeError,
    EncodeError,
    GlucoseMeasurementContext,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    WeightMeasurement,
    decode_all,
    full_uuid,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# Valid values with every optional field present (see test_vectors.py for their layout).
FULL_VECTORS = {
    "2a35": h("1E 7800 5000 5D00 E807 03 0F 08 1E 00 4800 01 0400"),
    "2a36": h("1E 9600 FF07 FF07 E807 03 0F 08 1E 00 4800 01 0400"),
    "2a5e": h("0F 6200 3C00 E707 0C 01 07 05 09 0002 200000 34F0"),
    "2a5f": h("1F 6000 4B00 5F00 4C00 6100 4A00 0002 200000 34F0"),
    "2a18": h("1B 0100 E807 01 0A 07 1E 00 C4FF B6A3 11 2100"),
    "2a34": h("DF 0100 00 01 32D0 01 51 0807 32 01 04A0 41F0"),
    "2a1c": h("06 6E0100FF E807 02 1D 0C 00 00 01"),
    "2a1e": h("06 6E0100FF E807 02 1D 0C 00 00 01"),
    "2a9d": h("0E 1437 E807 05 14 06 2D 00 02 E100 EA06"),
    "2a52": h("01 04 02 E807010A071E00 E807010B071E00"),
}


def raises(uuid: str, payload: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        decode_all(uuid, payload)
    return info.value


def test_vectors_are_valid():
    for uuid, payload in FULL_VECTORS.items():
        decode_all(uuid, payload)


@pytest.mark.parametrize("uuid", FULL_VECTORS)
def test_every_truncation_is_an_error(uuid):
    payload = FULL_VECTORS[uuid]
    for size in range(len(payload)):
        error = raises(uuid, payload[:size])
        assert error.offset <= size


@pytest.mark.parametrize("uuid", FULL_VECTORS)
def test_trailing_bytes_are_an_error(uuid):
    payload = FULL_VECTORS[uuid]
    error = raises(uuid, payload + b"\x00")
    assert error.offset == len(payload)
    assert "trailing" in error.reason


@pytest.mark.parametrize("uuid", [*FULL_VECTORS, "2a19", "2a29"])
def test_oversized_payload_is_an_error(uuid):
    error = raises(uuid, bytes(513))
    assert error.offset == 512
    assert "512" in error.reason


def test_flags_promising_an_absent_field():
    # BP flags 0x02 promise a 7-byte time stamp after the three pressures; none follows.
    error = raises("2a35", h("02 7800 5000 5D00"))
    assert error.characteristic == "blood_pressure_measurement"
    assert error.offset == 7
    assert "flags bit 1 promises field 'timestamp'" in error.reason
    assert str(error).startswith("blood_pressure_measurement:")


def test_truncated_mandatory_field():
    error = raises("2a35", h("00 7800 50"))
    assert error.offset == 3
    assert "'diastolic' is truncated" in error.reason


@pytest.mark.parametrize(
    ("uuid", "payload"),
    [
        ("2a35", "20 7800 5000 5D00"),  # BP flags bits 5-7 RFU
        ("2a5e", "20 6100 4800"),  # spot-check flags bits 5-7 RFU
        ("2a5f", "20 6100 4800"),  # continuous flags bits 5-7 RFU
        ("2a18", "20 0100 E807010A071E00"),  # glucose flags bits 5-7 RFU
        ("2a1c", "08 6E0100FF"),  # thermometer flags bits 3-7 RFU
        ("2a9d", "10 1437"),  # weight flags bits 4-7 RFU
    ],
)
def test_reserved_flag_bits(uuid, payload):
    error = raises(uuid, h(payload))
    assert error.offset == 0
    assert "reserved bits" in error.reason


@pytest.mark.parametrize(
    ("uuid", "payload", "offset"),
    [
        ("2a35", "10 7800 5000 5D00 1800", 7),  # pulse rate range 3 (bits 3-4) reserved
        ("2a35", "10 7800 5000 5D00 0040", 7),  # BP status bit 14 RFU
        ("2a5f", "04 6000 4B00 0100", 5),  # PLX measurement status bit 0 RFU
        ("2a5f", "08 6000 4B00 000001", 5),  # PLX device and sensor status bit 16 RFU
        ("2a18", "08 0100 E807010A071E00 0010", 10),  # glucose sensor status bit 12 RFU
        ("2a18", "02 0100 E807010A071E00 B6A3 10", 12),  # glucose type 0 (RFU)
        ("2a18", "02 0100 E807010A071E00 B6A3 0B", 12),  # glucose type 11 (RFU)
        ("2a18", "02 0100 E807010A071E00 B6A3 51", 12),  # sample location 5 (RFU)
        ("2a34", "80 0100 01", 3),  # extended flags with an RFU bit
        ("2a34", "01 0100 08 32D0", 3),  # carbohydrate id 8 (RFU)
        ("2a34", "02 0100 06", 3),  # meal 6 (RFU)
        ("2a34", "04 0100 54", 3),  # tester 4 (RFU)
        ("2a34", "04 0100 61", 3),  # health 6 (RFU)
        ("2a34", "08 0100 0807 65", 5),  # exercise intensity 101 %
        ("2a34", "10 0100 06 04A0", 3),  # medication id 6 (RFU)
        ("2a1c", "04 6E0100FF 00", 5),  # temperature type 0 (RFU)
        ("2a1c", "04 6E0100FF 0A", 5),  # temperature type 10 (RFU)
        ("2a1d", "0A", 0),
        ("2a1c", "02 6E0100FF E807 0D 01 00 00 00", 5),  # month 13
        ("2a1c", "02 6E0100FF E807 02 1E 00 00 00", 5),  # 30 February
        ("2a1c", "02 6E0100FF E807 01 01 18 00 00", 5),  # hour 24
        ("2a1c", "02 6E0100FF 2D06 01 01 00 00 00", 5),  # year 1581
        ("2a19", "65", 0),  # battery level 101 %
        ("2a52", "07 00", 0),  # op code 7 (RFU)
        ("2a52", "01 07", 1),  # operator 7 (RFU)
        ("2a52", "03 01", 1),  # abort takes only the Null operator
        ("2a52", "01 00", 1),  # report takes no Null operator
        ("2a52", "01 03 03 0500", 2),  # filter type 3 (RFU)
        ("2a52", "05 01 0A00", 1),  # responses carry the Null operator
        ("2a52", "06 00 01 0A", 3),  # response code value 10 (RFU)
    ],
)
def test_reserved_values(uuid, payload, offset):
    assert raises(uuid, h(payload)).offset == offset


def test_invalid_utf8_device_string():
    error = raises("2a29", b"Acme \xff")
    assert error.offset == 5


@pytest.mark.parametrize(
    "uuid", ["2a00", "2A37", "0x2a", "hello", "12345678-1234-1234-1234-1234567890ab"]
)
def test_unknown_uuid(uuid):
    error = raises(uuid, b"\x00")
    assert uuid in error.characteristic


def test_bleak_bytearray_payloads_are_accepted():
    assert decode_all("2a35", bytearray(FULL_VECTORS["2a35"])).readings


def test_decode_error_is_a_value_error():
    assert issubclass(DecodeError, ValueError)


# Every characteristic, by all the spellings a caller may use.
SPELLINGS = [
    spelling
    for number in CHARACTERISTICS
    for spelling in (f"{number:04x}", f"0x{number:04X}", full_uuid(number).upper())
]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SPELLINGS), st.binary(max_size=48))
def test_random_bytes_raise_only_decode_error(uuid, payload):
    try:
        decoded = decode_all(uuid, payload)
    except DecodeError as error:
        assert 0 <= error.offset <= len(payload)
        return
    # Whatever decodes yields only finite values: a special value never becomes a float NaN.
    assert all(math.isfinite(reading.value) for reading in decoded.readings)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(FULL_VECTORS)), st.data())
def test_mutated_valid_values_raise_only_decode_error(uuid, data):
    payload = bytearray(FULL_VECTORS[uuid])
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(payload) - 1))
        payload[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(DecodeError):
        decode_all(uuid, bytes(payload))


# The encoders refuse what they could not put on the wire honestly.
@pytest.mark.parametrize(
    "make",
    [
        lambda: BloodPressureMeasurement(
            120.0,
            80.0,
            93.0,
            status=BloodPressureStatus.PULSE_RATE_ABOVE_RANGE
            | BloodPressureStatus.PULSE_RATE_BELOW_RANGE,
        ),
        lambda: BloodPressureMeasurement(120.0, 80.0, 93.0, user_id=256),
        lambda: BloodPressureMeasurement(120.0, 80.0, 93.0, status=BloodPressureStatus(1 << 9)),
        lambda: WeightMeasurement(400.0),  # above 0xFFFE x 0.005 kg
        lambda: GlucoseMeasurementContext(1, carbohydrate=0.05),  # without its carbohydrate id
        lambda: GlucoseMeasurementContext(1, extended_flags=1),
        lambda: RacpRequest(RacpOpCode.ABORT_OPERATION, RacpOperator.ALL_RECORDS),
        lambda: RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.WITHIN_RANGE_OF),
        lambda: RacpRequest.report_from(0x10000),
    ],
)
def test_encoders_refuse_unrepresentable_values(make):
    with pytest.raises(EncodeError):
        make().encode()
