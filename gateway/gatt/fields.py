"""Field codecs: how one typed field of a characteristic goes to and from bytes.

Codecs are pure and know nothing of offsets; a bad value raises :class:`InvalidField` and the
layout that called the codec reports it with the field's name and position.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from functools import reduce
from operator import or_
from typing import Generic, TypeVar

from gateway.gatt import ieee11073
from gateway.gatt.datetime_field import SIZE as DATE_TIME_SIZE
from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.errors import EncodeError, InvalidField

T = TypeVar("T")
E = TypeVar("E", bound=IntEnum)
F = TypeVar("F", bound=IntFlag)


@dataclass(frozen=True, slots=True)
class Codec(Generic[T]):
    type_name: str  # as the GATT Specification Supplement names it, for error messages
    size: int
    unpack: Callable[[bytes], T]
    pack: Callable[[T], bytes]


def _uint(size: int) -> Codec[int]:
    top = 1 << (8 * size)

    def pack(value: int) -> bytes:
        if not 0 <= value < top:
            raise EncodeError(f"{value!r} does not fit a uint{8 * size}")
        return value.to_bytes(size, "little")

    return Codec(f"uint{8 * size}", size, lambda raw: int.from_bytes(raw, "little"), pack)


def _sint(size: int) -> Codec[int]:
    half = 1 << (8 * size - 1)

    def pack(value: int) -> bytes:
        if not -half <= value < half:
            raise EncodeError(f"{value!r} does not fit a sint{8 * size}")
        return value.to_bytes(size, "little", signed=True)

    return Codec(
        f"sint{8 * size}", size, lambda raw: int.from_bytes(raw, "little", signed=True), pack
    )


def _medfloat(fmt: ieee11073.MedfloatFormat, type_name: str) -> Codec[ieee11073.Medfloat]:
    return Codec(
        type_name,
        fmt.size,
        lambda raw: ieee11073.unpack(fmt, int.from_bytes(raw, "little")),
        lambda value: ieee11073.pack(fmt, value).to_bytes(fmt.size, "little"),
    )


UINT8 = _uint(1)
UINT16 = _uint(2)
UINT24 = _uint(3)
SINT8 = _sint(1)
SINT16 = _sint(2)
SFLOAT = _medfloat(ieee11073.SFLOAT, "medfloat16 (SFLOAT)")
FLOAT = _medfloat(ieee11073.FLOAT, "medfloat32 (FLOAT)")
DATE_TIME: Codec[GattDateTime] = Codec(
    "date time", DATE_TIME_SIZE, GattDateTime.unpack, GattDateTime.pack
)


def defined_bits(flag_type: type[IntFlag]) -> int:
    return reduce(or_, (member.value for member in flag_type.__members__.values()), 0)


def bitfield(flag_type: type[F], base: Codec[int]) -> Codec[F]:
    """A status bit field whose undefined (RFU) bits must be zero.

    A status bit we do not know might qualify the value in a way we cannot see, so we refuse the
    measurement rather than store it with a qualification silently dropped.
    """
    known = defined_bits(flag_type)

    def unpack(raw: bytes) -> F:
        value = base.unpack(raw)
        if value & ~known:
            raise InvalidField(
                f"reserved {flag_type.__name__} bits set: 0x{value & ~known:0{2 * base.size}x}"
            )
        return flag_type(value)

    def pack(value: F) -> bytes:
        if int(value) & ~known:
            raise EncodeError(f"{flag_type.__name__} value 0x{int(value):x} sets reserved bits")
        return base.pack(int(value))

    return Codec(base.type_name, base.size, unpack, pack)


def enumeration(enum_type: type[E], base: Codec[int]) -> Codec[E]:
    """A field whose values outside ``enum_type`` are reserved for future use."""

    def unpack(raw: bytes) -> E:
        return enum_member(enum_type, base.unpack(raw))

    return Codec(base.type_name, base.size, unpack, lambda value: base.pack(int(value)))


def enum_member(enum_type: type[E], value: int) -> E:
    try:
        return enum_type(value)
    except ValueError:
        raise InvalidField(f"{enum_type.__name__} value {value} is reserved") from None
