import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.gatt import (
    EncodeError,
    SpecialValue,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)
from gateway.gatt.ieee11073 import FLOAT, SFLOAT, scaled

# HL7 PHD IG, "Mder FLOATs and SFLOATs" table: the same number at three resolutions, and a
# positive exponent.
HL7_SFLOAT_EXAMPLES = [(0x0002, 2.0), (0xF014, 2.0), (0xE0C8, 2.0), (0x1002, 20.0)]

# IEEE 11073-20601 / GATT Specification Supplement (medfloat16): the five reserved patterns.
SFLOAT_SPECIALS = [
    (0x07FF, SpecialValue.NAN),
    (0x0800, SpecialValue.NRES),
    (0x07FE, SpecialValue.POSITIVE_INFINITY),
    (0x0802, SpecialValue.NEGATIVE_INFINITY),
    (0x0801, SpecialValue.RESERVED),
]
FLOAT_SPECIALS = [
    (0x007FFFFF, SpecialValue.NAN),
    (0x00800000, SpecialValue.NRES),
    (0x007FFFFE, SpecialValue.POSITIVE_INFINITY),
    (0x00800002, SpecialValue.NEGATIVE_INFINITY),
    (0x00800001, SpecialValue.RESERVED),
]


@pytest.mark.parametrize(("raw", "value"), HL7_SFLOAT_EXAMPLES)
def test_sfloat_hl7_examples(raw, value):
    assert decode_sfloat(raw) == value


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (0xF16E, 36.6),  # exponent -1, mantissa 366
        (0xFFFF, -0.1),  # exponent -1, mantissa -1
        (0x0FFF, -1.0),  # exponent 0, mantissa -1 (two's complement)
        (0x87FD, 2045e-8),  # smallest exponent, largest finite mantissa
        (0x77FD, 2045e7),
    ],
)
def test_sfloat_numbers(raw, value):
    assert decode_sfloat(raw) == pytest.approx(value, rel=1e-15)


@pytest.mark.parametrize(("raw", "special"), SFLOAT_SPECIALS)
def test_sfloat_specials(raw, special):
    assert decode_sfloat(raw) is special
    assert encode_sfloat(special) == raw


def test_special_patterns_with_other_exponents_are_numbers():
    # The statuses are defined with exponent 0 only; 0x17FF is 2047 * 10.
    assert decode_sfloat(0x17FF) == 20470.0


@pytest.mark.parametrize(("raw", "special"), FLOAT_SPECIALS)
def test_float_specials(raw, special):
    assert decode_float(raw) is special
    assert encode_float(special) == raw


def test_float_thermometer_value():
    # HTS: 36.6 degC as mantissa 366, exponent -1 -> 0xFF00016E
    assert decode_float(0xFF00016E) == 36.6
    assert encode_float(36.6) == 0xFF00016E


def test_python_nan_and_infinity_encode_as_statuses():
    assert encode_sfloat(math.nan) == 0x07FF
    assert encode_sfloat(math.inf) == 0x07FE
    assert encode_sfloat(-math.inf) == 0x0802


def test_encoder_prefers_device_style_exponents():
    assert encode_sfloat(120.0) == 0x0078  # integer mmHg with exponent 0
    assert encode_sfloat(98.5) == 0xF3D9  # 985 * 10**-1
    assert encode_sfloat(20000.0) == 0x17D0  # too large for exponent 0: 2000 * 10**1


def test_encoder_with_explicit_resolution_rounds():
    assert encode_sfloat(36.66, exponent=-1) == 0xF16F  # 367 * 10**-1
    with pytest.raises(EncodeError):
        encode_sfloat(300.0, exponent=-1)  # 3000 does not fit 12 bits


def test_encoder_rounds_inexact_values_to_the_finest_resolution():
    raw = encode_sfloat(1 / 3)
    assert decode_sfloat(raw) == pytest.approx(1 / 3, rel=1e-3)


def test_encoder_rejects_out_of_range():
    with pytest.raises(EncodeError):
        encode_sfloat(1e12)


def _finite(fmt):
    top = fmt.largest_mantissa
    return st.builds(
        scaled,
        st.integers(-top, top),
        st.integers(fmt.exponent_range.start, fmt.exponent_range.stop - 1),
    )


@settings(max_examples=400)
@given(_finite(SFLOAT))
def test_sfloat_value_round_trip(value):
    assert decode_sfloat(encode_sfloat(value)) == value


@settings(max_examples=400)
@given(_finite(FLOAT))
def test_float_value_round_trip(value):
    assert decode_float(encode_float(value)) == value


@settings(max_examples=400)
@given(st.integers(0, 0xFFFF))
def test_every_sfloat_pattern_decodes_to_a_finite_number_or_a_status(raw):
    value = decode_sfloat(raw)
    assert isinstance(value, SpecialValue) or math.isfinite(value)
    mantissa = raw & 0x0FFF
    if 0x07FE <= mantissa <= 0x0802 and raw >> 12:
        # A status mantissa with a non-zero exponent is a number by the standard, but some
        # decoders read it as the status, so the encoder never writes one: it moves to the next
        # exponent, losing at most one step of resolution.
        exponent = (raw >> 12) - 16 if raw >> 15 else raw >> 12
        assert abs(decode_sfloat(encode_sfloat(value)) - value) <= 10 ** (exponent + 1) / 2
    else:
        assert decode_sfloat(encode_sfloat(value)) == value


def test_encoder_never_writes_a_status_mantissa():
    assert encode_sfloat(20460.0) & 0x0FFF not in range(0x07FE, 0x0803)
