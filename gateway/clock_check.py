"""Time decisions for readings: localise device time, detect a device clock that is off.

Pure functions. A GATT Date Time is naive device-local time; the gateway localises it in the
patient's zone. A reading keeps the device's time stamp whenever the server can store it; only a
stamp the server would reject (before 2010: clock never set; beyond the server's future tolerance)
is replaced, by the skew-corrected device time when the skew is known, else by the receive time.
The original stamp then travels in the context as ``device_time``.

A stamp that cannot be a clock's reading at all (too far from the gateway clock, or outside what
a datetime holds once localised) is no usable device time: the reading gets the receive time, and
the stamp estimates no skew. Every function here is total over what a decoder can produce (GATT
years 1582-9999, in any zone): none raises on a device's value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from telemon.payload import EARLIEST_MEASUREMENT, FUTURE_TOLERANCE

DEFAULT_TIME_ZONE = "Europe/Rome"
DEFAULT_SKEW_TOLERANCE = timedelta(minutes=10)
# Beyond these a stamp is not a clock running wrong but a value that is no time (GATT allows
# 9999-12-31). Ahead: a year set one too far (up to 366 days) plus drift is still a clock.
# Behind: a clock reset to its firmware's epoch (2000, or 1970 for Unix-derived ones) is still
# counting, so its skew corrects what it stored; 1582, the GATT minimum, is not.
DEFAULT_MAX_CLOCK_AHEAD = timedelta(days=367)
DEFAULT_MAX_CLOCK_BEHIND = timedelta(days=100 * 366)

GATEWAY_TIME = "gateway_time"
DEVICE_CLOCK_SKEW = "device_clock_skew"
FROM_DEVICE_STORAGE = "from_device_storage"


@dataclass(frozen=True, slots=True)
class TimePolicy:
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIME_ZONE))
    skew_tolerance: timedelta = DEFAULT_SKEW_TOLERANCE
    max_clock_ahead: timedelta = DEFAULT_MAX_CLOCK_AHEAD
    max_clock_behind: timedelta = DEFAULT_MAX_CLOCK_BEHIND
    # The gateway's clock. A simulation that replays past days passes its own, so that
    # readings it receives are not judged against today's wall clock.
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a reading was measured, as the gateway will report it."""

    measured_at: datetime  # aware, UTC
    flags: tuple[str, ...] = ()
    context: dict[str, str] = field(default_factory=dict)


def localise(device_time: datetime, tz: ZoneInfo) -> datetime | None:
    """A naive device-local time as an aware UTC instant (fold=0 in the autumn's repeated hour).

    None when the instant is outside what a datetime holds: 9999-12-31 late in a zone west of UTC,
    or year 1 early in a zone east of it.
    """
    try:
        return device_time.replace(tzinfo=tz).astimezone(UTC)
    except OverflowError:
        return None


def plausible_skew(skew: timedelta | None, policy: TimePolicy) -> timedelta | None:
    """``skew`` if a running clock can be that far off, else None (it says nothing usable)."""
    if skew is None or not -policy.max_clock_behind <= skew <= policy.max_clock_ahead:
        return None
    return skew


def device_instant(
    device_time: datetime, received_at: datetime, policy: TimePolicy
) -> datetime | None:
    """The device stamp as a UTC instant, or None when it is no usable device time."""
    instant = localise(device_time, policy.tz)
    # A difference of two datetimes always fits a timedelta: the bound check cannot overflow.
    if instant is None or plausible_skew(instant - received_at, policy) is None:
        return None
    return instant


def observed_skew(
    device_time: datetime, received_at: datetime, policy: TimePolicy
) -> timedelta | None:
    """How far the device clock is ahead (+) or behind (-) the gateway; None if it is no time."""
    instant = device_instant(device_time, received_at, policy)
    return None if instant is None else instant - received_at


def is_skewed(skew: timedelta | None, policy: TimePolicy) -> bool:
    return skew is not None and abs(skew) > policy.skew_tolerance


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
    if device_time is None:
        return None
    skew = observed_skew(device_time, received_at, policy)
    if skew is not None and (fresh or skew > policy.skew_tolerance):
        return skew
    return None


def _storable(moment: datetime, received_at: datetime) -> bool:
    # As a difference, not ``received_at + FUTURE_TOLERANCE``: nothing here can overflow.
    return moment >= EARLIEST_MEASUREMENT and moment - received_at <= FUTURE_TOLERANCE


def _corrected(instant: datetime, skew: timedelta) -> datetime | None:
    """``instant`` with the clock error taken out; None if that leaves the datetime range."""
    try:
        return instant - skew
    except OverflowError:
        return None


def stamp(
    device_time: datetime | None,
    received_at: datetime,
    policy: TimePolicy,
    *,
    skew: timedelta | None = None,
    from_storage: bool = False,
) -> Stamp:
    """The time stamp, flags and context a reading gets (see the module docstring)."""
    flags: list[str] = [FROM_DEVICE_STORAGE] if from_storage else []
    if device_time is None:
        return Stamp(received_at, (GATEWAY_TIME, *flags))
    # A skew no clock can have (state from elsewhere) is no correction either.
    skew = plausible_skew(skew, policy)
    skewed = is_skewed(skew, policy)
    if skewed:
        flags.append(DEVICE_CLOCK_SKEW)
    instant = device_instant(device_time, received_at, policy)
    if instant is not None and _storable(instant, received_at):
        return Stamp(instant, tuple(flags))
    original = {"device_time": device_time.isoformat()}
    if instant is not None and skewed and skew is not None:
        corrected = _corrected(instant, skew)
        if corrected is not None and _storable(corrected, received_at):
            return Stamp(corrected, tuple(flags), original)
    # Not storable and not correctable, or no time at all: a clock off beyond tolerance either way.
    if DEVICE_CLOCK_SKEW not in flags:
        flags.append(DEVICE_CLOCK_SKEW)
    return Stamp(received_at, (GATEWAY_TIME, *flags), original)


def gateway_clock_synchronised(run_dir: Path = Path("/run/systemd/timesync")) -> bool:
    """Whether the gateway's own clock is trustworthy enough to judge a device's.

    A Raspberry Pi has no real-time clock: after a power cut it boots with the time it saved at
    shutdown until NTP answers. systemd-timesyncd creates ``synchronized`` in its run directory
    once it has; without timesyncd there is nothing to ask, and the clock is taken as right.
    """
    if not run_dir.is_dir():
        return True
    return (run_dir / "synchronized").exists()
