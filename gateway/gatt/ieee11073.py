"""IEEE 11073-20601 SFLOAT (medfloat16) and FLOAT (medfloat32), the numbers of the health profiles.

A value is ``mantissa * 10**exponent`` with a signed exponent in the high bits and a signed
mantissa in the low bits. Five bit patterns with exponent zero are not numbers but statuses
(GATT Specification Supplement, medfloat16/medfloat32; IEEE 11073-20601): decoding returns a
:class:`SpecialValue` for them, never a float NaN or infinity, so a status cannot leak into
arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from gateway.gatt.errors import EncodeError


class SpecialValue(Enum):
    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INFINITY"
    NEGATIVE_INFINITY = "-INFINITY"
    RESERVED = "reserved"

    @property
    def reason(self) -> str:
        return _REASONS[self]


_REASONS = MappingProxyType(
    {
        SpecialValue.NAN: "special value NaN (not a number: no valid value)",
        SpecialValue.NRES: "special value NRes (not at this resolution)",
        SpecialValue.POSITIVE_INFINITY: "special value +INFINITY",
        SpecialValue.NEGATIVE_INFINITY: "special value -INFINITY",
        SpecialValue.RESERVED: "reserved special value",
    }
)

# A field of one of these formats holds either a number or a status.
Medfloat = float | SpecialValue


@dataclass(frozen=True, slots=True)
class MedfloatFormat:
    name: str
    exponent_bits: int
    mantissa_bits: int
    # Mantissa patterns (with exponent 0) that stand for a status; offsets from the top of the
    # positive range, identical in both formats.
    specials: MappingProxyType[int, SpecialValue]

    @property
    def size(self) -> int:
        return (self.exponent_bits + self.mantissa_bits) // 8

    @property
    def largest_mantissa(self) -> int:
        # 2**(n-1) - 3: the two patterns above it (and their negatives) are statuses. The encoder
        # keeps away from them at every exponent, so no decoder can mistake our numbers.
        return (1 << (self.mantissa_bits - 1)) - 3

    @property
    def exponent_range(self) -> range:
        half = 2 ** (self.exponent_bits - 1)
        return range(-half, half)


def _specials(mantissa_bits: int) -> MappingProxyType[int, SpecialValue]:
    top = 2 ** (mantissa_bits - 1)
    return MappingProxyType(
        {
            top - 1: SpecialValue.NAN,
            top: SpecialValue.NRES,
            top - 2: SpecialValue.POSITIVE_INFINITY,
            top + 2: SpecialValue.NEGATIVE_INFINITY,
            top + 1: SpecialValue.RESERVED,
        }
    )


SFLOAT = MedfloatFormat("SFLOAT", 4, 12, _specials(12))
FLOAT = MedfloatFormat("FLOAT", 8, 24, _specials(24))


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


def scaled(mantissa: int, exponent: int) -> float:
    """``mantissa * 10**exponent`` as the nearest double (dividing by an exact power of ten)."""
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    divisor: int = 10**-exponent  # exponent < 0: an int
    return mantissa / divisor


def unpack(fmt: MedfloatFormat, raw: int) -> Medfloat:
    mantissa_raw = raw & ((1 << fmt.mantissa_bits) - 1)
    exponent = _signed(raw >> fmt.mantissa_bits, fmt.exponent_bits)
    if exponent == 0 and mantissa_raw in fmt.specials:
        return fmt.specials[mantissa_raw]
    return scaled(_signed(mantissa_raw, fmt.mantissa_bits), exponent)


def pack(fmt: MedfloatFormat, value: Medfloat, exponent: int | None = None) -> int:
    """The raw integer for ``value``.

    With ``exponent`` given (the device's resolution, e.g. -1 for tenths) the value is rounded to
    it. Without, the encoder takes the first exponent in 0, -1, -2, ..., then 1, 2, ... that
    represents the value exactly, which is how devices write whole and decimal readings; a value
    that no exponent represents exactly gets the finest exponent its magnitude allows.
    """
    special = _as_special(value)
    if special is not None:
        by_status = {status: pattern for pattern, status in fmt.specials.items()}
        return by_status[special]
    assert isinstance(value, float | int)
    if exponent is not None:
        mantissa = _mantissa_at(fmt, float(value), exponent)
        if mantissa is None:
            raise EncodeError(f"{value!r} does not fit a {fmt.name} at exponent {exponent}")
    else:
        exponent, mantissa = _choose_exponent(fmt, float(value))
    return ((exponent & ((1 << fmt.exponent_bits) - 1)) << fmt.mantissa_bits) | (
        mantissa & ((1 << fmt.mantissa_bits) - 1)
    )


def _as_special(value: Medfloat) -> SpecialValue | None:
    if isinstance(value, SpecialValue):
        return value
    if math.isnan(value):
        return SpecialValue.NAN
    if math.isinf(value):
        return SpecialValue.POSITIVE_INFINITY if value > 0 else SpecialValue.NEGATIVE_INFINITY
    return None


def _mantissa_at(fmt: MedfloatFormat, value: float, exponent: int) -> int | None:
    if exponent not in fmt.exponent_range:
        return None
    shifted = value * 10**-exponent if exponent <= 0 else value / 10**exponent
    if not math.isfinite(shifted):
        return None
    mantissa = round(shifted)
    return mantissa if abs(mantissa) <= fmt.largest_mantissa else None


def _choose_exponent(fmt: MedfloatFormat, value: float) -> tuple[int, int]:
    lowest, highest = fmt.exponent_range.start, fmt.exponent_range.stop - 1
    preference = [*range(0, lowest - 1, -1), *range(1, highest + 1)]
    for exponent in preference:
        mantissa = _mantissa_at(fmt, value, exponent)
        if mantissa is not None and scaled(mantissa, exponent) == value:
            return exponent, mantissa
    for exponent in range(lowest, highest + 1):
        mantissa = _mantissa_at(fmt, value, exponent)
        if mantissa is not None:
            return exponent, mantissa
    raise EncodeError(f"{value!r} is beyond the range of a {fmt.name}")


def decode_sfloat(raw: int) -> Medfloat:
    return unpack(SFLOAT, raw)


def encode_sfloat(value: Medfloat, exponent: int | None = None) -> int:
    return pack(SFLOAT, value, exponent)


def decode_float(raw: int) -> Medfloat:
    return unpack(FLOAT, raw)


def encode_float(value: Medfloat, exponent: int | None = None) -> int:
    return pack(FLOAT, value, exponent)
