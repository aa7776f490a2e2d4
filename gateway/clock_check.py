"""Time decisions for readings: localise device time, detect a device clock that is off.

Pure functions. A GATT Date Time is naive device-local time; the gateway localises it in the
patient's zone. A reading keeps the device's time stamp whenever the server can store it; only a
stamp the server would reject (before 2010: clock never set; beyond the server's future tolerance)
is replaced, by the skew-corrected device time when the skew is known, else by the receive time.
The original stamp then travels in the context as ``device_time``.

Issue 19 (the HL7 PHD IG's coincident time stamp): a clock whose offset is known and beyond the
tolerance has its stamps shifted by that offset, and every reading carries a
:class:`~telemon.time_correction.TimeCorrection` saying what the device sent, the zone, DST and
clock offset applied, and on which basis. A local time the zone makes doubtful (the spring gap,
the repeated autumn hour) is flagged unless something decided it; a clock that keeps standard
time all year is recognised in summer and read as such.

A device that declares its own zone and DST offset (Local Time Information) has its stamps read
at that offset (:class:`DeviceOffset` as the policy's zone, ``Recorder.policy_for``).

A stamp that cannot be a clock's reading at all (too far from the gateway clock, or outside what
a datetime holds once localised) is no usable device time: the reading gets the receive time, and
the stamp estimates no skew. Every function here is total over what a decoder can produce (GATT
years 1582-9999, in any zone): none raises on a device's value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from telemon.payload import EARLIEST_MEASUREMENT, FUTURE_TOLERANCE
from telemon.time_correction import ClockSource, LocalTimeIssue, TimeBasis, TimeCorrection

DEFAULT_TIME_ZONE = "Europe/Rome"
DEFAULT_SKEW_TOLERANCE = timedelta(minutes=10)
# A clock further off than this is set right where the device lets the gateway write it. 15 min,
# as Tidepool's uploader warns and rewrites a meter's clock (docs/time.md).
DEFAULT_CLOCK_SET_THRESHOLD = timedelta(minutes=15)
# Beyond these a stamp is not a clock running wrong but a value that is no time (GATT allows
# 9999-12-31). Ahead: a year set one too far (up to 366 days) plus drift is still a clock.
# Behind: a clock reset to its firmware's epoch (2000, or 1970 for Unix-derived ones) is still
# counting, so its skew corrects what it stored; 1582, the GATT minimum, is not.
DEFAULT_MAX_CLOCK_AHEAD = timedelta(days=367)
DEFAULT_MAX_CLOCK_BEHIND = timedelta(days=100 * 366)

GATEWAY_TIME = "gateway_time"
DEVICE_CLOCK_SKEW = "device_clock_skew"
FROM_DEVICE_STORAGE = "from_device_storage"
LOCAL_TIME_GAP = "local_time_gap"
LOCAL_TIME_AMBIGUOUS = "local_time_ambiguous"
DEVICE, CORRECTED, GATEWAY = TimeBasis.DEVICE, TimeBasis.CORRECTED, TimeBasis.GATEWAY


class DeviceOffset(tzinfo):
    """A device's own time zone and DST offset, as its Local Time Information (0x2A0F) declares
    them: the offset its wall clock is kept in, fixed, without the patient's zone's rules (so
    neither a spring gap nor a repeated autumn hour)."""

    key = None  # no IANA zone: the record says the device's own fields instead

    def __init__(self, zone_min: int, dst_min: int) -> None:
        self.zone_min, self.dst_min = zone_min, dst_min

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(minutes=self.zone_min + self.dst_min)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(minutes=self.dst_min)

    def tzname(self, dt: datetime | None) -> str:
        return f"device UTC{self.zone_min + self.dst_min:+d} min"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DeviceOffset) and (self.zone_min, self.dst_min) == (
            other.zone_min,
            other.dst_min,
        )

    def __hash__(self) -> int:
        return hash((self.zone_min, self.dst_min))

    def __repr__(self) -> str:
        return f"DeviceOffset({self.zone_min}, {self.dst_min})"


Zone = ZoneInfo | DeviceOffset


@dataclass(frozen=True, slots=True)
class TimePolicy:
    # The patient's zone; for a device that declares its own offset, that offset (see
    # ``Recorder.policy_for``).
    tz: Zone = field(default_factory=lambda: ZoneInfo(DEFAULT_TIME_ZONE))
    skew_tolerance: timedelta = DEFAULT_SKEW_TOLERANCE
    max_clock_ahead: timedelta = DEFAULT_MAX_CLOCK_AHEAD
    max_clock_behind: timedelta = DEFAULT_MAX_CLOCK_BEHIND
    clock_set_threshold: timedelta = DEFAULT_CLOCK_SET_THRESHOLD
    # The gateway's clock. A simulation that replays past days passes its own, so that
    # readings it receives are not judged against today's wall clock.
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a reading was measured, as the gateway will report it, and how it got there."""

    measured_at: datetime  # aware, UTC
    flags: tuple[str, ...] = ()
    context: dict[str, str] = field(default_factory=dict)
    time: TimeCorrection | None = None


@dataclass(frozen=True, slots=True)
class WallTime:
    """A device's wall-clock time read as one instant."""

    instant: datetime  # aware, UTC
    offset: timedelta  # what was taken off the wall time: zone plus DST in force
    dst: bool
    issue: LocalTimeIssue | None = None
    guessed: bool = False  # the repeated autumn hour, and nothing told which of the two


def _wall(device_time: datetime, tz: Zone, fold: int, ignores_dst: bool) -> WallTime:
    local = device_time.replace(tzinfo=tz, fold=fold)
    offset, dst = local.utcoffset(), local.dst()
    assert offset is not None and dst is not None  # a ZoneInfo always answers both
    if ignores_dst:
        offset, dst = offset - dst, timedelta(0)
    return WallTime((device_time - offset).replace(tzinfo=UTC), offset, bool(dst))


def read_wall(
    device_time: datetime,
    tz: Zone,
    *,
    ignores_dst: bool = False,
    latest: datetime | None = None,
    near: datetime | None = None,
) -> WallTime | None:
    """A naive device-local time as a UTC instant, saying when the zone makes it doubtful.

    In the spring-forward gap (no such local time) the offset before the change is used: a clock
    showing 02:30 that night is one that has not moved to DST, and 02:30 standard time is what it
    means. In the repeated autumn hour, ``near`` (where a reading measured now must be) picks the
    closer of the two; else an instant after ``latest`` cannot be (nothing is measured in the
    future); else the earlier is taken and marked ``guessed``. A device that ignores DST shows
    standard time all year: its times have neither problem.

    None when the instant is outside what a datetime holds (9999-12-31 late in a zone west of
    UTC, year 1 early in one east of it).
    """
    try:
        first = _wall(device_time, tz, 0, ignores_dst)
        if ignores_dst:
            return first
        second = _wall(device_time, tz, 1, ignores_dst)
    except OverflowError:
        return None
    if first.offset == second.offset:
        return first
    # The gap's fold=0 time, taken to UTC and back, is another wall time; the repeated hour's
    # is the same one.
    try:
        round_trip = first.instant.astimezone(tz).replace(tzinfo=None)
    except OverflowError:
        return None
    if round_trip != device_time:
        return replace(first, issue=LocalTimeIssue.GAP)
    earlier, later = sorted((first, second), key=lambda w: w.instant)
    if near is not None:
        chosen = min((earlier, later), key=lambda w: abs(w.instant - near))
        return replace(chosen, issue=LocalTimeIssue.REPEATED)
    if latest is not None and later.instant > latest >= earlier.instant:
        return replace(earlier, issue=LocalTimeIssue.REPEATED)
    return replace(earlier, issue=LocalTimeIssue.REPEATED, guessed=True)


def localise(device_time: datetime, tz: Zone, *, ignores_dst: bool = False) -> datetime | None:
    """A naive device-local time as an aware UTC instant (the earlier in the autumn's repeated
    hour, standard time in the spring's gap); None outside the datetime range."""
    wall = read_wall(device_time, tz, ignores_dst=ignores_dst)
    return None if wall is None else wall.instant


def plausible_skew(skew: timedelta | None, policy: TimePolicy) -> timedelta | None:
    """``skew`` if a running clock can be that far off, else None (it says nothing usable)."""
    if skew is None or not -policy.max_clock_behind <= skew <= policy.max_clock_ahead:
        return None
    return skew


def device_instant(
    device_time: datetime,
    received_at: datetime,
    policy: TimePolicy,
    *,
    ignores_dst: bool = False,
    near: datetime | None = None,
) -> datetime | None:
    """The device stamp as a UTC instant, or None when it is no usable device time.

    ``near``: in the repeated autumn hour, the one of the two instants closer to it.
    """
    wall = read_wall(device_time, policy.tz, ignores_dst=ignores_dst, near=near)
    # A difference of two datetimes always fits a timedelta: the bound check cannot overflow.
    if wall is None or plausible_skew(wall.instant - received_at, policy) is None:
        return None
    return wall.instant


def observed_skew(
    device_time: datetime,
    received_at: datetime,
    policy: TimePolicy,
    *,
    ignores_dst: bool = False,
) -> timedelta | None:
    """How far the device clock is ahead (+) or behind (-) the gateway; None if it is no time.

    A clock reading in the repeated autumn hour is the instant of the two nearer the gateway's.
    """
    instant = device_instant(
        device_time, received_at, policy, ignores_dst=ignores_dst, near=received_at
    )
    return None if instant is None else instant - received_at


def is_skewed(skew: timedelta | None, policy: TimePolicy) -> bool:
    return skew is not None and abs(skew) > policy.skew_tolerance


def needs_setting(skew: timedelta | None, policy: TimePolicy) -> bool:
    """Whether a device clock this far off should be set right (where the device allows it)."""
    return skew is not None and abs(skew) > policy.clock_set_threshold


@dataclass(frozen=True, slots=True)
class ClockEstimate:
    """How far a device clock is off, read against the gateway's at one moment."""

    skew: timedelta  # device minus gateway, once its zone model is applied
    # Whether the clock keeps standard time all year; None while the zone is on standard time,
    # when the two cannot be told apart (and what was learnt in summer still holds).
    ignores_dst: bool | None = None


def skew_from_reading(
    device_time: datetime | None,
    received_at: datetime,
    policy: TimePolicy,
    *,
    fresh: bool,
) -> timedelta | None:
    """A skew estimate this reading supports, or None if it says nothing about the clock.

    A time stamp ahead of the receive time beyond the tolerance is a wrong clock whatever the
    reading is (nothing is measured in the future). A stamp in the past only proves a wrong clock
    for a *fresh* value (measured now, not replayed from memory).
    """
    estimate = estimate_clock(device_time, received_at, policy, fresh=fresh)
    return None if estimate is None else estimate.skew


def estimate_clock(
    device_time: datetime | None,
    received_at: datetime,
    policy: TimePolicy,
    *,
    fresh: bool,
) -> ClockEstimate | None:
    """:func:`skew_from_reading`, telling a clock that keeps standard time all year.

    In summer such a clock is exactly the DST shift behind local time; read as standard time it
    is right (or off by its drift only), so its stamps are read that way, in winter's too.
    """
    if device_time is None:
        return None
    skew = observed_skew(device_time, received_at, policy)
    if skew is None or not (fresh or skew > policy.skew_tolerance):
        return None
    if isinstance(policy.tz, DeviceOffset):
        return ClockEstimate(skew)  # the device said its DST offset: nothing to learn of it
    standard = observed_skew(device_time, received_at, policy, ignores_dst=True)
    if standard is None or standard == skew:
        return ClockEstimate(skew)
    if is_skewed(skew, policy) and not is_skewed(standard, policy):
        return ClockEstimate(standard, ignores_dst=True)
    return ClockEstimate(skew, ignores_dst=False)


def _storable(moment: datetime, received_at: datetime) -> bool:
    # As a difference, not ``received_at + FUTURE_TOLERANCE``: nothing here can overflow.
    return moment >= EARLIEST_MEASUREMENT and moment - received_at <= FUTURE_TOLERANCE


def _corrected(instant: datetime, skew: timedelta) -> datetime | None:
    """``instant`` with the clock error taken out; None if that leaves the datetime range."""
    try:
        return instant - skew
    except OverflowError:
        return None


def _seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())


def _minutes(delta: timedelta) -> int:
    return round(delta.total_seconds() / 60)


def stamp(
    device_time: datetime | None,
    received_at: datetime,
    policy: TimePolicy,
    *,
    skew: timedelta | None = None,
    source: ClockSource | None = None,
    ignores_dst: bool = False,
    fresh: bool = False,
    doubtful: bool = False,
    from_storage: bool = False,
    time_offset_min: int | None = None,
) -> Stamp:
    """The time stamp, flags, context and time record a reading gets (module docstring).

    A device stamp is read in the patient's zone (standard time for a clock that ignores DST),
    then shifted by the device clock's known offset when that is beyond tolerance: the PHD IG's
    coincident time stamp. A shift that would leave the storable range is not made; a stamp that
    cannot be stored either way gives way to the receive time. ``doubtful``: which clock made
    the stamp is not known (the gateway set it meanwhile): flagged whatever else.
    """
    flags: list[str] = [FROM_DEVICE_STORAGE] if from_storage else []
    # A skew no clock can have (state from elsewhere) is no correction either.
    skew = plausible_skew(skew, policy)
    known: dict[str, Any] = (
        {"clock_offset_s": _seconds(skew), "clock_source": source} if skew is not None else {}
    )
    if device_time is None:
        return Stamp(
            received_at, (GATEWAY_TIME, *flags), time=TimeCorrection(basis=GATEWAY, **known)
        )
    skewed = is_skewed(skew, policy)
    if skewed or doubtful:
        flags.append(DEVICE_CLOCK_SKEW)
    wall = read_wall(
        device_time,
        policy.tz,
        ignores_dst=ignores_dst,
        latest=received_at + (skew or timedelta(0)) + FUTURE_TOLERANCE,
        near=received_at + (skew or timedelta(0)) if fresh else None,
    )
    if wall is not None and plausible_skew(wall.instant - received_at, policy) is None:
        wall = None  # no clock's reading: no usable device time
    record: dict[str, Any] = {
        "device_time": device_time.isoformat(),
        "device_time_offset_min": time_offset_min,
        **known,
    }
    if isinstance(policy.tz, DeviceOffset):
        record |= {"device_zone_min": policy.tz.zone_min, "device_dst_min": policy.tz.dst_min}
    if wall is not None:
        record |= {
            "zone": policy.tz.key,
            "utc_offset_min": _minutes(wall.offset),
            "dst": wall.dst,
            "ignores_dst": ignores_dst,
            "local_issue": wall.issue,
        }
        if wall.issue is LocalTimeIssue.GAP:
            flags.append(LOCAL_TIME_GAP)
        elif wall.guessed:
            flags.append(LOCAL_TIME_AMBIGUOUS)
    original = {"device_time": device_time.isoformat()}
    if wall is not None and skewed and skew is not None:
        corrected = _corrected(wall.instant, skew)
        if corrected is not None and _storable(corrected, received_at):
            time = TimeCorrection(basis=CORRECTED, applied_s=_seconds(skew), **record)
            return Stamp(corrected, tuple(flags), original, time)
    if wall is not None and _storable(wall.instant, received_at):
        return Stamp(wall.instant, tuple(flags), time=TimeCorrection(basis=DEVICE, **record))
    # Not storable and not correctable, or no time at all: a clock off beyond tolerance either way.
    if DEVICE_CLOCK_SKEW not in flags:
        flags.append(DEVICE_CLOCK_SKEW)
    time = TimeCorrection(basis=GATEWAY, **record)
    return Stamp(received_at, (GATEWAY_TIME, *flags), original, time)


def gateway_clock_synchronised(run_dir: Path = Path("/run/systemd/timesync")) -> bool:
    """Whether the gateway's own clock is trustworthy enough to judge a device's.

    A Raspberry Pi has no real-time clock: after a power cut it boots with the time it saved at
    shutdown until NTP answers. systemd-timesyncd creates ``synchronized`` in its run directory
    once it has; without timesyncd there is nothing to ask, and the clock is taken as right.
    """
    if not run_dir.is_dir():
        return True
    return (run_dir / "synchronized").exists()
