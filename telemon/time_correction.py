"""How the gateway turned a device's time stamp into the UTC instant it reports (contract v2).

A home device keeps local wall-clock time, usually without a zone, and its clock drifts, is set
wrong, skips DST or restarts at its firmware's epoch after a battery change. The gateway is
synchronised to UTC and knows the patient's zone; it reads the device's current time and shifts
the device's stamps by the difference (HL7 PHD IG, "coincident time stamp"; Tidepool's
uploader decomposes the same correction into zone, DST and clock offsets). Every reading carries
the record of that decision, so the stored instant can always be traced back to what the device
said: ``measured_at = device wall time - utc_offset - applied``.

The record is flat (scalars only), small and stored as is beside the reading (observations
``time_correction``), for the dashboard's reading details and, later, FHIR's effective time.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Final

from telemon.checks import Rule, boolean, check_fields, from_json, integer, member, optional, text


class TimeBasis(StrEnum):
    """Where ``measured_at`` comes from."""

    DEVICE = "device"  # the device's stamp, read in its zone, no shift
    CORRECTED = "corrected"  # the device's stamp shifted by the measured clock offset
    GATEWAY = "gateway"  # no usable device time: the gateway's receive time


class ClockSource(StrEnum):
    """How the device's clock offset was measured."""

    CURRENT_TIME = "current_time"  # the device's Current Time read during the connection
    READING = "reading"  # a reading measured now, its stamp against the receive time


class LocalTimeIssue(StrEnum):
    """A wall-clock time that does not name one instant in the zone."""

    GAP = "gap"  # the spring-forward hour: no such local time; read with the offset before it
    REPEATED = "repeated"  # the autumn hour that happens twice: one of the two was chosen


# Minutes east of UTC: every offset in use lies within -12:00 .. +14:00.
MINUTES_BOUND: Final = 16 * 60
# A clock reset to 2000 is ~26 years behind; the gateway's bound is 100 years.
SECONDS_MIN: Final = -(101 * 366 * 86400)
SECONDS_MAX: Final = 368 * 86400
# A Glucose Measurement's time offset is a signed 16-bit count of minutes.
TIME_OFFSET_MIN: Final = -0x8000
TIME_OFFSET_MAX: Final = 0x7FFF
DEVICE_TIME_MAX: Final = 32
DEVICE_TIME_PATTERN: Final = r"^[0-9T:.+-]*$"
ZONE_MAX: Final = 48
ZONE_PATTERN: Final = r"^[A-Za-z0-9_+/-]*$"

_minutes = optional(integer(ge=-MINUTES_BOUND, le=MINUTES_BOUND))
_seconds = integer(ge=SECONDS_MIN, le=SECONDS_MAX)


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeCorrection:
    """One reading's time decision. ``received_at`` and ``measured_at`` are on the reading."""

    basis: TimeBasis
    # The stamp as the device sent it (naive local ISO 8601), None when it sent none.
    device_time: str | None = None
    # Zone and DST fields of the characteristic, when it has them (minutes).
    device_zone_min: int | None = None
    device_dst_min: int | None = None
    # A time offset the characteristic carries beside its base time (Glucose Measurement's,
    # minutes): ``device_time`` already includes it.
    device_time_offset_min: int | None = None
    # The zone the gateway read a zoneless stamp in, and the offset (zone + DST) it applied.
    zone: str | None = None
    utc_offset_min: int | None = None
    dst: bool | None = None
    # True: the device keeps standard time all year; its stamps are read without DST.
    ignores_dst: bool = False
    local_issue: LocalTimeIssue | None = None
    # Device clock minus gateway clock as measured (seconds), and how; None: not known.
    clock_offset_s: int | None = None
    clock_source: ClockSource | None = None
    # Seconds taken off the localised stamp to give measured_at (0: none).
    applied_s: int = 0

    def __post_init__(self) -> None:
        check_fields(self, _RULES)

    def wire(self) -> dict[str, object]:
        """The record as it travels and is stored: defaults left out."""
        wire: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                wire[f.name] = value.value if isinstance(value, StrEnum) else value
        return wire

    @classmethod
    def from_wire(cls, data: object) -> TimeCorrection:
        """The record from its wire form (raises :class:`telemon.checks.InvalidValue`)."""
        return from_json(cls, data)


_RULES: dict[str, Rule] = {
    "basis": member(TimeBasis),
    "device_time": optional(text(max_length=DEVICE_TIME_MAX, pattern=DEVICE_TIME_PATTERN)),
    "device_zone_min": _minutes,
    "device_dst_min": _minutes,
    "device_time_offset_min": optional(integer(ge=TIME_OFFSET_MIN, le=TIME_OFFSET_MAX)),
    "zone": optional(text(max_length=ZONE_MAX, pattern=ZONE_PATTERN)),
    "utc_offset_min": _minutes,
    "dst": optional(boolean),
    "ignores_dst": boolean,
    "local_issue": optional(member(LocalTimeIssue)),
    "clock_offset_s": optional(_seconds),
    "clock_source": optional(member(ClockSource)),
    "applied_s": _seconds,
}
