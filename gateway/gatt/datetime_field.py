"""The GATT Date Time structure (GATT Specification Supplement, Date Time 0x2A08).

Seven bytes: year (uint16, 1582-9999, 0 = not known), month (1-12, 0 = not known), day (1-31,
0 = not known), hours (0-23), minutes (0-59), seconds (0-59). It carries no time zone: it is the
device's wall clock, so :meth:`GattDateTime.to_datetime` returns a naive datetime and the gateway
localises it with the patient's zone (and checks it against its own clock).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from gateway.gatt.errors import EncodeError, InvalidField

SIZE = 7
_LEAP_YEAR = 2000  # to check a day against its month when the year is not known


@dataclass(frozen=True, slots=True)
class GattDateTime:
    year: int  # 0 = not known
    month: int  # 0 = not known
    day: int  # 0 = not known
    hours: int = 0
    minutes: int = 0
    seconds: int = 0

    @classmethod
    def from_datetime(cls, moment: datetime) -> GattDateTime:
        """The device-side form of ``moment``'s wall clock (time zone and microseconds dropped)."""
        return cls(moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)

    @property
    def date_known(self) -> bool:
        return 0 not in (self.year, self.month, self.day)

    def to_datetime(self) -> datetime | None:
        """Naive device-local datetime, or None when any part of the date is 'not known'."""
        if not self.date_known:
            return None
        return datetime(self.year, self.month, self.day, self.hours, self.minutes, self.seconds)

    def pack(self) -> bytes:
        problem = _problem(self)
        if problem:
            raise EncodeError(problem)
        return self.year.to_bytes(2, "little") + bytes(
            (self.month, self.day, self.hours, self.minutes, self.seconds)
        )

    @classmethod
    def unpack(cls, raw: bytes) -> GattDateTime:
        value = cls(int.from_bytes(raw[0:2], "little"), raw[2], raw[3], raw[4], raw[5], raw[6])
        problem = _problem(value)
        if problem:
            raise InvalidField(problem)
        return value


# (part, lowest, highest, value allowed besides the range)
_RANGES = (
    ("year", 1582, 9999, 0),
    ("month", 1, 12, 0),
    ("day", 1, 31, 0),
    ("hours", 0, 23, None),
    ("minutes", 0, 59, None),
    ("seconds", 0, 59, None),
)


def _problem(value: GattDateTime) -> str | None:
    for part, lowest, highest, unknown in _RANGES:
        number = getattr(value, part)
        if not (lowest <= number <= highest or number == unknown):
            return f"date time {part} {number} is a reserved value"
    if value.month and value.day:
        year = value.year or _LEAP_YEAR
        if value.day > calendar.monthrange(year, value.month)[1]:
            return f"date {value.year:04d}-{value.month:02d}-{value.day:02d} does not exist"
    return None
