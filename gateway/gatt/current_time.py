"""The clock characteristics a gateway reads and sets: Current Time (0x2A2B) and Date Time (0x2A08).

Current Time (Current Time Service 0x1805) is a Date Time followed by the day of the week
(1 = Monday .. 7, 0 = not known), the fractions of a second in 1/256 and the adjust reason
(bit 0 manual update, 1 external reference time update, 2 change of time zone, 3 change of
DST). A device that lets a client write it (or a bare Date Time) is one whose clock the gateway
can set right.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.gatt.datetime_field import SIZE as DATE_TIME_SIZE
from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.errors import InvalidField

CURRENT_TIME = 0x2A2B
DATE_TIME = 0x2A08
CURRENT_TIME_SIZE = DATE_TIME_SIZE + 3
# Adjust reason bits
MANUAL_UPDATE = 0x01
EXTERNAL_REFERENCE = 0x02
TIME_ZONE_CHANGE = 0x04
DST_CHANGE = 0x08


@dataclass(frozen=True, slots=True)
class CurrentTime:
    date_time: GattDateTime
    day_of_week: int = 0  # 1 = Monday .. 7 = Sunday, 0 = not known
    fractions256: int = 0
    adjust_reason: int = 0

    @classmethod
    def at(cls, wall: datetime, *, adjust_reason: int = EXTERNAL_REFERENCE) -> CurrentTime:
        """The value that sets a clock to the wall time ``wall`` (its zone, if any, dropped)."""
        return cls(
            GattDateTime.from_datetime(wall),
            wall.isoweekday(),
            wall.microsecond * 256 // 1_000_000,
            adjust_reason,
        )

    def pack(self) -> bytes:
        return self.date_time.pack() + bytes(
            (self.day_of_week, self.fractions256, self.adjust_reason)
        )

    @classmethod
    def unpack(cls, raw: bytes) -> CurrentTime:
        if len(raw) < CURRENT_TIME_SIZE:
            raise InvalidField(f"current time needs {CURRENT_TIME_SIZE} bytes, got {len(raw)}")
        day_of_week = raw[DATE_TIME_SIZE]
        if day_of_week > 7:
            raise InvalidField(f"day of week {day_of_week} is a reserved value")
        return cls(
            GattDateTime.unpack(raw[:DATE_TIME_SIZE]),
            day_of_week,
            raw[DATE_TIME_SIZE + 1],
            raw[DATE_TIME_SIZE + 2],
        )
