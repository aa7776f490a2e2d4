"""When a patient uses each device: the daily plan, its jitter, and the readings that get missed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo

from firmware_sim.physiology_devices import draw_key
from firmware_sim.physiology_noise import uniform
from firmware_sim.physiology_rhythm import MEALS
from telemon.device_kinds import DeviceKind


class OximeterMode(StrEnum):
    SPOT_CHECK = "spot_check"
    CONTINUOUS = "continuous"


@dataclass(frozen=True, slots=True)
class Session:
    """A planned use of a device around ``at`` (local), shifted by up to ±``jitter``.

    ``readings`` readings are taken ``interval`` apart, as home-BP protocols ask for two.
    """

    name: str
    at: time
    jitter: timedelta
    readings: int = 1
    interval: timedelta = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ContinuousWear:
    """The oximeter stays on the finger from ``start`` (local) for ``duration``."""

    start: time
    duration: timedelta
    period: timedelta = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class PlannedReading:
    device: DeviceKind
    at: datetime  # UTC
    session: str


def _before_meal(meal: str) -> Session:
    meal_time = datetime.combine(date.min, MEALS[meal])
    return Session(f"before_{meal}", (meal_time - timedelta(minutes=15)).time(), _MEAL_JITTER)


_MEAL_JITTER = timedelta(minutes=15)

SCHEDULE: MappingProxyType[DeviceKind, tuple[Session, ...]] = MappingProxyType(
    {
        # NHS CO@h: three spot checks a day.
        DeviceKind.PULSE_OXIMETER: (
            Session("morning", time(8, 0), timedelta(minutes=30)),
            Session("afternoon", time(14, 0), timedelta(minutes=30)),
            Session("evening", time(20, 0), timedelta(minutes=30)),
        ),
        # NICE/ESH home BP: two seated readings a minute apart, morning and evening.
        DeviceKind.BLOOD_PRESSURE: (
            Session("morning", time(7, 30), timedelta(minutes=30), readings=2),
            Session("evening", time(20, 30), timedelta(minutes=30), readings=2),
        ),
        DeviceKind.GLUCOMETER: tuple(_before_meal(meal) for meal in MEALS),
        DeviceKind.THERMOMETER: (
            Session("morning", time(8, 0), timedelta(minutes=30)),
            Session("evening", time(20, 0), timedelta(minutes=30)),
        ),
        # Every morning after voiding, before breakfast (heartfailurematters.org).
        DeviceKind.WEIGHT_SCALE: (Session("morning", time(7, 15), timedelta(minutes=20)),),
    }
)

OVERNIGHT_OXIMETRY = ContinuousWear(time(22, 30), timedelta(hours=8))


def local_instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``at`` on ``day`` in ``zone``, as UTC. A wall time skipped by a DST change lands an hour
    later, as a patient's phone alarm would."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def planned_readings(
    device: DeviceKind, day: date, zone: ZoneInfo, seed: int, adherence: float
) -> list[PlannedReading]:
    """The readings the patient takes with ``device`` on local ``day``, missed sessions left out."""
    readings: list[PlannedReading] = []
    ordinal = day.toordinal()
    for session in SCHEDULE[device]:
        if uniform(seed, "missed", draw_key(device), ordinal, session.name) >= adherence:
            continue
        shift = (2.0 * uniform(seed, "jitter", draw_key(device), ordinal, session.name) - 1.0) * (
            session.jitter
        )
        first = local_instant(day, session.at, zone) + shift
        readings.extend(
            PlannedReading(device, first + i * session.interval, session.name)
            for i in range(session.readings)
        )
    return readings


def worn_instants(
    wear: ContinuousWear, day: date, zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[datetime]:
    """Whole-second instants in [start, end) while the oximeter worn from ``day`` is on."""
    on = local_instant(day, wear.start, zone)
    off = on + wear.duration
    first = max(on, start)
    step = wear.period
    # Align to the wear period so that any window gives the same instants.
    skipped = -((on - first) // step)
    t = on + skipped * step
    stop = min(off, end)
    while t < stop:
        yield t
        t += step
