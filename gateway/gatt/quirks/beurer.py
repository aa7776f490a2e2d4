"""Beurer BM85: a Blood Pressure Measurement (0x2A35) that departs from BLS in four ways.

- Pulse rate (SFLOAT) and Measurement Status (uint16) are big-endian, where BLS has every
  multi-byte field little-endian.
- A User ID byte is always sent, whatever flags bit 3 says; it means a user only when the bit
  is set.
- A reserved flags bit (5 to 7) is set. It announces no field: the record ends after the status.
- Mean arterial pressure is 0: the cuff does not compute it.

The standard decoder rightly refuses such a value (reserved flags, trailing byte), so the
BM85's own layout reads it and hands a standard ``BloodPressureMeasurement`` to the standard
interpretation. See docs/devices/beurer_bm85.md.
"""

from __future__ import annotations

from dataclasses import dataclass

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
# The bits above Measurement Status that BLS reserves; the BM85 sets one of them (bit 5 on the
# units seen), and none announces a field.
RESERVED_FLAGS = 0b1110_0000
_PULSE_RANGE = (
    BloodPressureStatus.PULSE_RATE_ABOVE_RANGE | BloodPressureStatus.PULSE_RATE_BELOW_RANGE
)
MAP_NOT_MEASURED = "the BM85 sends 0: it does not compute mean arterial pressure"


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
        Field("user_id", UINT8),  # always there; flags bit 3 says whether it means anything
        Field("status", bitfield(BloodPressureStatus, _big_endian_uint16()), MEASUREMENT_STATUS),
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
    user_id_valid: bool = False  # flags bit 3
    status: BloodPressureStatus | None = None
    reserved_flags: int = 0b0010_0000

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
            user_id=self.user_id if self.user_id_valid else None,
            status=self.status,
        )


def decode_bm85_measurement(payload: bytes) -> Bm85Measurement:
    wire = LAYOUT.decode(payload)
    status = wire.values["status"]
    if status is not None and status & _PULSE_RANGE == _PULSE_RANGE:
        raise wire.error("status", "pulse rate range detection value 3 is reserved")
    return Bm85Measurement(
        **wire.values,
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
    "decode_bm85",
    "decode_bm85_measurement",
    "interpret_bm85_measurement",
]
