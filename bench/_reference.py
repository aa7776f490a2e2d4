"""A per-patient, plain-Python evaluator: slow, obvious, and the yardstick for the fast one.

It reads the rules straight from a (possibly overridden) ``Protocol`` and loops over readings,
so tests can check that the vectorised evaluator and debouncer give identical answers, and a
benchmark can measure what vectorising buys. The engine never runs it: it lives with the
benchmarks, and the tests import it from here as they import the benchmarks' other helpers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from zoneinfo import ZoneInfo

from alerts.protocol import (
    COMPARE,
    NO_DATA,
    AggregateRule,
    AnyRule,
    MissingDataRule,
    Protocol,
    ScoreRule,
    ThresholdRule,
    TrendRule,
    of_kind,
)
from alerts.scores import NEWS2_TABLES, OXYGEN_POINTS, spo2_table
from alerts.windows import MEAN_DECIMALS, Reading

NO_TIME = -1
_EPOCH_DAY = date(1970, 1, 1).toordinal()

Channel = tuple[float | None, int]  # (value or None when there is no data, time)


@dataclass(frozen=True, slots=True)
class Outcome:
    level: int
    hold_level: int
    value: float
    at: int
    reason: str
    # Threshold rules: the times of the deciding channel's readings in band up to the newest,
    # and of the reading out of band before them. None: one confirmation per new value.
    run: tuple[int, ...] | None = None
    broken_at: int = NO_TIME


def _reliable(readings: Sequence[Reading], lo: float, now: int) -> list[Reading]:
    """Reliable readings with lo < t <= now, oldest first (ties keep their input order)."""
    return sorted((r for r in readings if r[2] and lo < r[0] <= now), key=lambda r: r[0])


def _latest(readings: Sequence[Reading], lo: float, now: int) -> Channel:
    chosen = _reliable(readings, lo, now)
    return (chosen[-1][1], chosen[-1][0]) if chosen else (None, NO_TIME)


Data = Mapping[str, Sequence[Reading]]  # every metric's readings


def _threshold(rule: AnyRule, data: Data, now: int) -> list[Channel]:
    lookback = of_kind(rule, ThresholdRule).lookback
    return [_latest(data.get(m, ()), now - lookback, now) for m in rule.metrics]


Run = tuple[tuple[int, ...], int]  # (times of the readings in band, time of the one before)


def _runs_in_band(rule: ThresholdRule, data: Data, now: int) -> list[Run]:
    """Per channel: walking back from the newest reading, the readings in any of its bands."""
    out = []
    for metric in rule.metrics:
        bands = [b for b in rule.bands if b.on == metric]
        run: list[int] = []
        broken_at = NO_TIME
        for t, v, _ in reversed(_reliable(data.get(metric, ()), now - rule.lookback, now)):
            if not any(COMPARE[b.op](v, b.value) for b in bands):
                broken_at = t
                break
            run.append(t)
        # One per instant: the same measurement stored twice does not confirm itself.
        out.append((tuple(sorted(set(run))), broken_at))
    return out


def _missing_data(rule: AnyRule, data: Data, now: int, started_at: int = NO_TIME) -> list[Channel]:
    spec = of_kind(rule, MissingDataRule)
    due = started_at + (spec.expected_every or 0) + spec.grace
    if started_at != NO_TIME and now < due:
        return [(None, NO_TIME) for _ in rule.metrics]  # the first reading is not due yet
    out: list[Channel] = []
    for metric in rule.metrics:
        _, last = _latest(data.get(metric, ()), -math.inf, now)
        since = max(last, started_at)
        out.append((math.inf if since == NO_TIME else (now - since) / 3600.0, now))
    return out


def _slope_ols(points: list[Reading], now: int) -> float:
    xs = [float(t - now) for t, _, _ in points]
    vs = [v for _, v, _ in points]
    mx, mv = sum(xs) / len(xs), sum(vs) / len(vs)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (v - mv) for x, v in zip(xs, vs, strict=True))
    return sxy / sxx


def _slope_theil_sen(points: list[Reading], now: int) -> float:
    slopes = [
        (points[j][1] - points[i][1]) / (float(points[j][0] - now) - float(points[i][0] - now))
        for i in range(len(points))
        for j in range(i + 1, len(points))
        if points[j][0] != points[i][0]
    ]
    return statistics.median(slopes)


def _trend_points(rule: TrendRule, readings: Sequence[Reading], now: int) -> list[Reading]:
    usable = _reliable(readings, now - 2 * rule.window, now)
    if rule.remeasure and usable:
        # A reading followed within ``remeasure`` by another was measured again: the later counts.
        later = [r[0] for r in usable[1:]] + [math.inf]
        usable = [r for r, t in zip(usable, later, strict=True) if t - r[0] > rule.remeasure]
    if not usable or usable[-1][0] <= now - rule.window:
        return []
    newest = usable[-1][0]
    return [r for r in usable if r[0] >= newest - rule.window][-rule.max_points :]


def _trend(rule: AnyRule, data: Data, now: int) -> list[Channel]:
    spec = of_kind(rule, TrendRule)
    out: list[Channel] = []
    for metric in spec.metrics:
        points = _trend_points(spec, data.get(metric, ()), now)
        if len(points) < spec.min_points:
            out.append((None, NO_TIME))
            continue
        span = points[-1][0] - points[0][0]
        if span <= 0 or span < spec.min_span:
            out.append((None, NO_TIME))
            continue
        if spec.method == "delta":
            change = points[-1][1] - points[0][1]
        elif spec.method == "ols":
            change = _slope_ols(points, now) * spec.window
        else:
            change = _slope_theil_sen(points, now) * spec.window
        out.append((_settled(change), points[-1][0]))
    return out


def _local_day_hour(t: int, zone: ZoneInfo) -> tuple[int, int]:
    local = datetime.fromtimestamp(t, UTC).astimezone(zone)
    return local.date().toordinal() - _EPOCH_DAY, local.hour


def _aggregate(rule: AnyRule, data: Data, now: int) -> list[Channel]:
    spec = of_kind(rule, AggregateRule)
    zone = ZoneInfo(spec.timezone)
    today, _ = _local_day_hour(now, zone)
    out: list[Channel] = []
    for metric in spec.metrics:
        chosen = []
        for t, v, _ in _reliable(data.get(metric, ()), -math.inf, now):
            day, hour = _local_day_hour(t, zone)
            if day > today - spec.days and any(a <= hour < b for a, b in spec.sessions):
                chosen.append((t, v, day))
        if spec.discard_first_day and chosen:
            first_day = min(day for _, _, day in chosen)
            chosen = [c for c in chosen if c[2] != first_day]
        if len({day for _, _, day in chosen}) < spec.min_days:
            out.append((None, NO_TIME))
            continue
        out.append((_settled(sum(v for _, v, _ in chosen) / len(chosen)), chosen[-1][0]))
    return out


def _settled(mean: float) -> float:
    """The mean to ``MEAN_DECIMALS`` decimals, rounded half up (see ``windows.settled``)."""
    scale = 10.0**MEAN_DECIMALS
    return math.floor(mean * scale + 0.5) / scale


def _score(rule: AnyRule, data: Data, now: int) -> list[Channel]:
    spec = of_kind(rule, ScoreRule)
    points, at = [], NO_TIME
    for metric in spec.metrics:
        value, t = _latest(data.get(metric, ()), now - spec.lookback, now)
        if value is None:
            continue
        table = (
            spo2_table(spec.spo2_scale, spec.supplemental_oxygen)
            if metric == "spo2"
            else NEWS2_TABLES[metric]
        )
        points.append(table.score_one(value))
        at = max(at, t)
    if len(points) < spec.min_parameters:
        return [(None, NO_TIME), (None, NO_TIME)]
    oxygen = OXYGEN_POINTS if spec.supplemental_oxygen else 0
    return [(float(sum(points) + oxygen), at), (float(max([*points, oxygen])), at)]


Statistic = Callable[[AnyRule, Data, int], list[Channel]]

_STATISTICS: Mapping[str, Statistic] = {
    "threshold": _threshold,
    "trend": _trend,
    "aggregate": _aggregate,
    "score": _score,
    "missing_data": _missing_data,
}


def _classify(rule: AnyRule, channels: list[Channel], runs: list[Run] | None) -> Outcome:
    nothing = None if runs is None else ()
    if not rule.enabled:
        return Outcome(NO_DATA, NO_DATA, math.nan, NO_TIME, "disabled", nothing)
    if all(value is None for value, _ in channels):
        return Outcome(NO_DATA, NO_DATA, math.nan, NO_TIME, "no_data", nothing)
    level, hold, decider, reason = 0, 0, None, "ok"
    for index, name in enumerate(rule.channels):
        value = channels[index][0]
        if value is None:
            continue
        for band in sorted((b for b in rule.bands if b.on == name), key=lambda b: b.severity):
            compare = COMPARE[band.op]
            if compare(value, band.value) and band.severity > level:
                level, decider, reason = band.severity, index, f"{name}:{band.level}"
            margin = rule.clear_margin if band.is_low else -rule.clear_margin
            if compare(value, band.value + margin) and band.severity > hold:
                hold = band.severity
    if decider is None:
        decider = next(i for i, (value, _) in enumerate(channels) if value is not None)
    value, at = channels[decider]
    assert value is not None  # the deciding channel is one with a value
    if runs is None:
        return Outcome(level, hold, float(value), at, reason)
    run, broken_at = runs[decider]
    return Outcome(level, hold, float(value), at, reason, run, broken_at)


def evaluate_patient(
    protocol: Protocol,
    readings: Mapping[str, Sequence[Reading]],
    now: int,
    started_at: int = NO_TIME,
) -> dict[str, Outcome]:
    """Every rule of ``protocol`` (already overridden for this patient) for one patient, whose
    enrolment started at ``started_at`` (NO_TIME: not known)."""
    statistics: dict[str, Statistic] = {
        **_STATISTICS,
        "missing_data": partial(_missing_data, started_at=started_at),
    }
    return {
        rule.key: _classify(
            rule,
            statistics[rule.kind](rule, readings, now),
            _runs_in_band(rule, readings, now) if isinstance(rule, ThresholdRule) else None,
        )
        for rule in protocol.rules
    }


@dataclass(slots=True)
class PatientAlert:
    """Debounce state of one (patient, rule), mirroring ``alerts.debounce.DebounceState``."""

    level: int = 0
    count: int = 0
    since: int = NO_TIME
    last_at: int = NO_TIME
    opened_at: int = NO_TIME
    notified_at: int = NO_TIME
    stage: int = 0
    acked: bool = False
    snoozed_until: int = NO_TIME
    unconfirmed: bool = False


def step_patient(alert: PatientAlert, outcome: Outcome, rule: AnyRule, now: int) -> set[str]:
    """Advance ``alert`` in place; returns the transitions that happened."""
    events: set[str] = set()
    if outcome.level >= 0 and outcome.at > alert.last_at:
        counted_up_to, alert.last_at = alert.last_at, outcome.at
        if alert.level > 0:
            # An unconfirmed alert's next reading settles it, with no clear margin for a
            # threshold rule's single reading.
            single = alert.unconfirmed and rule.kind == "threshold"
            hold = outcome.level if single else outcome.hold_level
            if alert.unconfirmed and hold > 0:
                events.add("confirmed")
            alert.unconfirmed = False
            if outcome.level > alert.level:
                alert.level = outcome.level
                alert.notified_at, alert.acked, alert.snoozed_until = now, False, NO_TIME
                events.add("escalated")
            elif hold < alert.level:
                alert.level = max(hold, 0)
                events.add("downgraded" if alert.level else "cleared")
        elif outcome.level > 0:
            run = outcome.run if outcome.run is not None else (outcome.at,)
            new = [t for t in run if t > counted_up_to]
            if alert.count == 0 or outcome.broken_at > counted_up_to:
                alert.count, alert.since = 0, new[0]
            alert.count += len(new)
            confirmed = outcome.at - alert.since >= rule.confirm.duration
            if alert.count >= rule.confirm.count and confirmed:
                alert.level, alert.count, alert.since = outcome.level, 0, NO_TIME
                alert.opened_at = alert.notified_at = now
                alert.stage, alert.acked, alert.snoozed_until = 0, False, NO_TIME
                events.add("opened")
        else:
            alert.count, alert.since = 0, NO_TIME
    waited = alert.count > 0 and now - alert.since >= rule.confirm.timeout
    if alert.level == 0 and outcome.level > 0 and rule.confirm.count > 1 and waited:
        # No reading confirmed or contradicted the streak's first one in time.
        alert.level, alert.count, alert.since, alert.unconfirmed = outcome.level, 0, NO_TIME, True
        alert.opened_at = alert.notified_at = now
        alert.stage, alert.acked, alert.snoozed_until = 0, False, NO_TIME
        events |= {"opened", "opened_unconfirmed"}
    if alert.level == 0:
        alert.opened_at = alert.notified_at = alert.snoozed_until = NO_TIME
        alert.stage, alert.acked, alert.unconfirmed = 0, False, False
    elif not events & {"opened", "escalated"}:
        if not alert.acked and now - alert.notified_at >= rule.escalate_after:
            alert.stage += 1
            alert.notified_at = now
            events.add("reminded")
        elif alert.acked and now >= alert.snoozed_until:
            alert.acked, alert.snoozed_until, alert.notified_at = False, NO_TIME, now
            events.add("reminded")
    return events


def acknowledge_patient(alert: PatientAlert, rule: AnyRule, now: int) -> None:
    if alert.level > 0:
        alert.acked, alert.snoozed_until, alert.stage = True, now + rule.snooze_after_ack, 0
