"""The period report's numbers, as pure functions of readings: no database, no wording.

Where the numbers come from: docs/clinical-references.md (home blood pressure: the ESH/NICE
7-day series without day 1; glucose: ADA levels 1 and 2, time in range).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

# A band fires when `value <op> threshold`: a reading outside every band is in the range.
_FIRES = {
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
}

# docs/clinical-references.md#glucose: ADA level 1 is < 70 and >= 54 mg/dL, level 2 < 54;
# the target range of the international consensus on time in range is 70-180 mg/dL.
GLUCOSE_LEVEL_1 = 70.0
GLUCOSE_LEVEL_2 = 54.0
GLUCOSE_RANGE_HIGH = 180.0

# docs/clinical-references.md#home-blood-pressure: a 7-day series, day 1 discarded, at least
# three days left (the hypertension protocol's home_bp_mean rule: days 7, min_days 3).
ESH_DAYS = 7
ESH_MIN_DAYS = 3


@dataclass(frozen=True, slots=True)
class Summary:
    count: int
    mean: float | None
    min: float | None
    max: float | None
    in_range_pct: float | None  # None: no band to compare with, or no reading


@dataclass(frozen=True, slots=True)
class HomeBpMean:
    systolic: float
    diastolic: float
    days: int  # days averaged (after the first is discarded)
    first_day: date
    last_day: date


@dataclass(frozen=True, slots=True)
class GlucoseLevels:
    in_range_pct: float  # share of readings within 70-180 mg/dL
    level_1: int  # readings < 70 and >= 54 mg/dL
    level_2: int  # readings < 54 mg/dL
    above: int  # readings > 180 mg/dL


@dataclass(frozen=True, slots=True)
class Adherence:
    days_with_readings: int  # a schedule sparser than daily: its stretches with a reading
    days_expected: int  # 0: the schedule asks for nothing yet (a weekly series begun 6 days ago)

    @property
    def due(self) -> bool:
        return self.days_expected > 0

    @property
    def pct(self) -> float | None:
        if self.days_expected == 0:
            return None
        return min(100.0, 100.0 * self.days_with_readings / self.days_expected)


def in_range(value: float, bands: Iterable[tuple[str, float]]) -> bool:
    """Outside every (op, threshold) band of the metric: neither amber nor red."""
    return not any(_FIRES[op](value, threshold) for op, threshold in bands)


def summarise(values: Sequence[float], bands: Sequence[tuple[str, float]]) -> Summary:
    if not values:
        return Summary(0, None, None, None, None)
    inside = sum(in_range(v, bands) for v in values)
    return Summary(
        count=len(values),
        mean=math.fsum(values) / len(values),
        min=min(values),
        max=max(values),
        in_range_pct=100.0 * inside / len(values) if bands else None,
    )


def esh_home_mean(
    systolic: Sequence[tuple[datetime, float]],
    diastolic: Sequence[tuple[datetime, float]],
    *,
    last_day: date,
    tz: ZoneInfo,
) -> HomeBpMean | None:
    """The ESH home BP mean of the 7 local days ending on ``last_day``: the first day of the
    series (the first of those days with a reading) is discarded, the rest averaged; None when
    fewer than ``ESH_MIN_DAYS`` days remain."""
    window_start = last_day - timedelta(days=ESH_DAYS - 1)

    def by_day(readings: Sequence[tuple[datetime, float]]) -> dict[date, list[float]]:
        out: dict[date, list[float]] = {}
        for at, value in readings:
            day = at.astimezone(tz).date()
            if window_start <= day <= last_day:
                out.setdefault(day, []).append(value)
        return out

    sys_days, dia_days = by_day(systolic), by_day(diastolic)
    days = sorted(set(sys_days) & set(dia_days))[1:]  # discard day 1 of the series
    if len(days) < ESH_MIN_DAYS:
        return None
    sys_values = [v for d in days for v in sys_days[d]]
    dia_values = [v for d in days for v in dia_days[d]]
    return HomeBpMean(
        systolic=math.fsum(sys_values) / len(sys_values),
        diastolic=math.fsum(dia_values) / len(dia_values),
        days=len(days),
        first_day=days[0],
        last_day=days[-1],
    )


def glucose_levels(values: Sequence[float]) -> GlucoseLevels | None:
    """Capillary readings, so 'time in range' is the share of readings, not of CGM time."""
    if not values:
        return None
    inside = sum(GLUCOSE_LEVEL_1 <= v <= GLUCOSE_RANGE_HIGH for v in values)
    return GlucoseLevels(
        in_range_pct=100.0 * inside / len(values),
        level_1=sum(GLUCOSE_LEVEL_2 <= v < GLUCOSE_LEVEL_1 for v in values),
        level_2=sum(v < GLUCOSE_LEVEL_2 for v in values),
        above=sum(v > GLUCOSE_RANGE_HIGH for v in values),
    )


def adherence(
    reading_days: Iterable[date], *, first: date, last: date, every_hours: float
) -> Adherence:
    """Stretches with a reading against the stretches the schedule asks for one, ``first`` to
    ``last``: a stretch is a day when the schedule is daily or denser, else ``every_hours``
    long, counted back from ``last``; only whole stretches are asked for. The days before the
    first whole one are not yet due (a weekly series begun 6 days ago asks for none), so a
    reading there counts for nothing either and the share never passes 100 %."""
    period_days = (last - first).days + 1
    if period_days <= 0:
        return Adherence(0, 0)
    every_days = max(every_hours / 24.0, 1.0)
    expected = math.floor(period_days / every_days + 1e-9)
    # A stretch counts once, whatever the number of days with readings in it.
    stretches = {int((last - d).days // every_days) for d in reading_days if first <= d <= last}
    return Adherence(sum(1 for s in stretches if s < expected), expected)
