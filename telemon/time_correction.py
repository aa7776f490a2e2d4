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

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


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
_Minutes = Annotated[int, Field(ge=-16 * 60, le=16 * 60, strict=True)]
# A clock reset to 2000 is ~26 years behind; the gateway's bound is 100 years.
_Seconds = Annotated[int, Field(ge=-(101 * 366 * 86400), le=368 * 86400, strict=True)]


class TimeCorrection(BaseModel):
    """One reading's time decision. ``received_at`` and ``measured_at`` are on the reading."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    basis: TimeBasis
    # The stamp as the device sent it (naive local ISO 8601), None when it sent none.
    device_time: Annotated[str | None, Field(max_length=32, pattern=r"^[0-9T:.+-]*$")] = None
    # Zone and DST fields of the characteristic, when it has them (minutes).
    device_zone_min: _Minutes | None = None
    device_dst_min: _Minutes | None = None
    # A time offset the characteristic carries beside its base time (Glucose Measurement's,
    # minutes): ``device_time`` already includes it.
    device_time_offset_min: Annotated[int, Field(ge=-0x8000, le=0x7FFF, strict=True)] | None = None
    # The zone the gateway read a zoneless stamp in, and the offset (zone + DST) it applied.
    zone: Annotated[str | None, Field(max_length=48, pattern=r"^[A-Za-z0-9_+/-]*$")] = None
    utc_offset_min: _Minutes | None = None
    dst: bool | None = None
    # True: the device keeps standard time all year; its stamps are read without DST.
    ignores_dst: bool = False
    local_issue: LocalTimeIssue | None = None
    # Device clock minus gateway clock as measured (seconds), and how; None: not known.
    clock_offset_s: _Seconds | None = None
    clock_source: ClockSource | None = None
    # Seconds taken off the localised stamp to give measured_at (0: none).
    applied_s: _Seconds = 0

    def wire(self) -> dict[str, object]:
        """The record as it travels and is stored: defaults left out."""
        return self.model_dump(mode="json", exclude_defaults=True)
