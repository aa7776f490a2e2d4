"""Time decisions for readings: localise device time, detect a device clock that is off.

Pure functions. A GATT Date Time is naive device-local time; the gateway localises it in the
patient's zone. A reading keeps the device's time stamp whenever the server can store it; only a
stamp the server would reject (before 2010: clock never set; beyond the server's future tolerance)
is replaced, by the skew-corrected device time when the skew is known, else by the receive time.
The original stamp then travels in the context as ``device_time``.
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

GATEWAY_TIME = "gateway_time"
DEVICE_CLOCK_SKEW = "device_clock_skew"
FROM_DEVICE_STORAGE = "from_device_storage"


@dataclass(frozen=True, slots=True)
class TimePolicy:
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIME_ZONE))
    skew_tolerance: timedelta = DEFAULT_SKEW_TOLERANCE
    # The gateway's clock. A simulation that replays past days passes its own, so that
    # readings it receives are not judged against today's wall clock.
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class Stamp:
    """When a reading was measured, as the gateway will report it."""

    measured_at: datetime  # aware, UTC
    flags: tuple[str, ...] = ()
    context: dict[str, str] = field(default_factory=dict)


def localise(device_time: datetime, tz: ZoneInfo) -> datetime:
    """A naive device-local time as an aware UTC instant (fold=0 in the autumn's repeated hour)."""
    return device_time.replace(tzinfo=tz).astimezone(UTC)


def observed_skew(device_time: datetime, received_at: datetime, tz: ZoneInfo) -> timedelta:
    """How far the device clock is ahead (+) or behind (-) the gateway, from a fresh value."""
    return localise(device_time, tz) - received_at


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
    skew = observed_skew(device_time, received_at, policy.tz)
    if fresh or skew > policy.skew_tolerance:
        return skew
    return None


def _storable(moment: datetime, received_at: datetime) -> bool:
    return EARLIEST_MEASUREMENT <= moment <= received_at + FUTURE_TOLERANCE


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
    skewed = is_skewed(skew, policy)
    if skewed:
        flags.append(DEVICE_CLOCK_SKEW)
    device_instant = localise(device_time, policy.tz)
    if _storable(device_instant, received_at):
        return Stamp(device_instant, tuple(flags))
    original = {"device_time": device_time.isoformat()}
    if skewed and skew is not None and _storable(device_instant - skew, received_at):
        return Stamp(device_instant - skew, tuple(flags), original)
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
