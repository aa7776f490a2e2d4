"""Beurer BM85: a Blood Pressure Measurement (0x2A35) that departs from BLS in five ways.

Checked against four values recorded from a real BM85 (blood-pressure-monitor-fl, see
docs/devices/beurer_bm85.md):

- Pulse rate (SFLOAT) and Measurement Status (uint16) are big-endian, where BLS has every
  multi-byte field little-endian.
- A User ID byte is always sent and flags bit 3 is never set: the byte is the cuff's user
  (0 the first, 1 the second), whatever the flag says.
- Flags bit 6, reserved in BLS, is set (flags 0x56). It announces no field.
- Mean arterial pressure is 0: the cuff does not compute it.
- Status bit 6, reserved in BLS, is set on some values; its meaning is not documented, so it
  is kept in the record and gives no flag.

The standard decoder rightly refuses such a value (reserved flags, trailing byte), so the
BM85's own layout reads it and hands a standard ``BloodPressureMeasurement`` to the standard
interpretation. See docs/devices/beurer_bm85.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from gateway.gatt import ieee11073
from gateway.gatt.blood_pressure import (
    MEASUREMENT_STATUS,
    PULSE_RATE,
    TIMESTAMP,
    UNITS_KPA,
    USER_ID,
    BloodPressureMeasurement,
    BloodPressureStatus,
    PressureUnit,
    interpret_blood_pressure_measurement,
)
from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.errors import EncodeError
from gateway.gatt.fields import DATE_TIME, SFLOAT, UINT8, Codec, bitfield
from gateway.gatt.ieee11073 import Medfloat, SpecialValue
from gateway.gatt.layout import Field, Layout
from gateway.gatt.model import Decoded, Skipped

CHARACTERISTIC = "beurer_bm85 blood_pressure_measurement"
# The bits above Measurement Status that BLS reserves; the BM85 sets bit 6 (flags 0x56 in every
# recorded value), and none announces a field.
RESERVED_FLAGS = 0b1110_0000
SEEN_RESERVED_FLAGS = 0b0100_0000
_PULSE_RANGE = (
    BloodPressureStatus.PULSE_RATE_ABOVE_RANGE | BloodPressureStatus.PULSE_RATE_BELOW_RANGE
)
MAP_NOT_MEASURED = "the BM85 sends 0: it does not compute mean arterial pressure"


class Bm85Status(IntFlag):
    """BLS Measurement Status plus bit 6, which the BM85 sets on some values (meaning unknown).
    Bits 7-15 are still refused: no recorded value sets them."""

    BODY_MOVEMENT = 1 << 0
    CUFF_TOO_LOOSE = 1 << 1
    IRREGULAR_PULSE = 1 << 2
    PULSE_RATE_ABOVE_RANGE = 1 << 3
    PULSE_RATE_BELOW_RANGE = 2 << 3
    IMPROPER_POSITION = 1 << 5
    VENDOR_BIT_6 = 1 << 6


_BLS_STATUS_BITS = 0x3F


def _big_endian_uint16() -> Codec[int]:
    def pack(value: int) -> bytes:
        if not 0 <= value < 1 << 16:
            raise EncodeError(f"{value!r} does not fit a uint16")
        return value.to_bytes(2, "big")

    return Codec("uint16 (big-endian)", 2, lambda raw: int.from_bytes(raw, "big"), pack)


_SFLOAT_BE: Codec[Medfloat] = Codec(
    "medfloat16 (SFLOAT, big-endian)",
    2,
    lambda raw: ieee11073.decode_sfloat(int.from_bytes(raw, "big")),
    lambda value: ieee11073.encode_sfloat(value).to_bytes(2, "big"),
)

LAYOUT = Layout(
    CHARACTERISTIC,
    (
        Field("systolic", SFLOAT),
        Field("diastolic", SFLOAT),
        Field("mean_arterial_pressure", SFLOAT),
        Field("timestamp", DATE_TIME, TIMESTAMP),
        Field("pulse_rate", _SFLOAT_BE, PULSE_RATE),
        Field("user_id", UINT8),  # always there, flags bit 3 or not
        Field("status", bitfield(Bm85Status, _big_endian_uint16()), MEASUREMENT_STATUS),
    ),
    semantic_flags=UNITS_KPA | USER_ID | RESERVED_FLAGS,
)


@dataclass(frozen=True, slots=True)
class Bm85Measurement:
    """One BM85 record, every field as sent."""

    systolic: Medfloat
    diastolic: Medfloat
    mean_arterial_pressure: Medfloat = 0.0
    unit: PressureUnit = PressureUnit.MMHG
    timestamp: GattDateTime | None = None
    pulse_rate: Medfloat | None = None
    user_id: int = 0
    user_id_valid: bool = False  # flags bit 3 as sent (the BM85 leaves it clear)
    status: Bm85Status | BloodPressureStatus | None = None
    reserved_flags: int = SEEN_RESERVED_FLAGS

    def encode(self) -> bytes:
        if self.reserved_flags & ~RESERVED_FLAGS:
            raise EncodeError(f"0x{self.reserved_flags:02x} are not the BM85's reserved flags")
        values = {field.name: getattr(self, field.name) for field in LAYOUT.fields}
        flags = UNITS_KPA * self.unit | self.reserved_flags | (USER_ID * self.user_id_valid)
        return LAYOUT.encode(values, flags)

    def standard(self) -> BloodPressureMeasurement:
        """What a BLS-conformant cuff would have sent for the same measurement."""
        return BloodPressureMeasurement(
            systolic=self.systolic,
            diastolic=self.diastolic,
            mean_arterial_pressure=(
                SpecialValue.NAN
                if self.mean_arterial_pressure == 0
                else self.mean_arterial_pressure
            ),
            unit=self.unit,
            timestamp=self.timestamp,
            pulse_rate=self.pulse_rate,
            # blood-pressure-monitor-fl reads the byte as the user with the flag clear, and the
            # recorded values of the cuff's second user carry 1: the byte is the user.
            user_id=self.user_id,
            status=(
                None
                if self.status is None
                else BloodPressureStatus(int(self.status) & _BLS_STATUS_BITS)
            ),
        )


def decode_bm85_measurement(payload: bytes) -> Bm85Measurement:
    wire = LAYOUT.decode(payload)
    status = wire.values["status"]
    if status is not None and int(status) & _PULSE_RANGE == _PULSE_RANGE:
        raise wire.error("status", "pulse rate range detection value 3 is reserved")
    return Bm85Measurement(
        **wire.values,  # status: Bm85Status
        unit=PressureUnit(wire.flags & UNITS_KPA),
        user_id_valid=bool(wire.flags & USER_ID),
        reserved_flags=wire.flags & RESERVED_FLAGS,
    )


def interpret_bm85_measurement(measurement: Bm85Measurement) -> Decoded[Bm85Measurement]:
    standard = interpret_blood_pressure_measurement(measurement.standard())
    skipped = tuple(
        Skipped(s.field, MAP_NOT_MEASURED)
        if s.field == "mean_arterial_pressure" and measurement.mean_arterial_pressure == 0
        else s
        for s in standard.skipped
    )
    return Decoded(CHARACTERISTIC, measurement, standard.readings, skipped)


def decode_bm85(payload: bytes) -> Decoded[Bm85Measurement]:
    return interpret_bm85_measurement(decode_bm85_measurement(payload))


__all__ = [
    "CHARACTERISTIC",
    "Bm85Measurement",
    "Bm85Status",
    "decode_bm85",
    "decode_bm85_measurement",
    "interpret_bm85_measurement",
]
