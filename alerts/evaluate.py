"""Evaluate every rule of a protocol for every patient at once.

Each rule kind reduces the readings to one value per channel and patient (latest reading,
change over a window, windowed mean, score, hours since the last reading); the rule's bands then
turn those values into a severity per patient. Threshold rules also hand over the trailing run of
readings in band, so that the debouncer can confirm by readings, however many arrive together.
Loops run over rules, metrics and bands only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np

from alerts.protocol import NO_DATA, Protocol
from alerts.scores import OXYGEN_POINTS, news2_points
from alerts.tables import CompiledProtocol, CompiledRule, compile_protocol
from alerts.trends import deltas, ols_slopes, theil_sen_slopes
from alerts.windows import (
    MetricWindow,
    distinct_count,
    first_index,
    first_of_equal,
    in_lookback,
    keep_last,
    last_index,
    local_day_and_hour,
    masked_count,
    masked_mean,
    segment_reduce,
    take,
    trailing_run,
)

NO_TIME = -1  # ``at`` of a result without data

# Reason codes that are not a band: indices -3, -2, -1 into the reason table.
DISABLED, NO_DATA_REASON, IN_RANGE = "disabled", "no_data", "ok"


@dataclass(frozen=True, slots=True, eq=False)
class Streaks:
    """Per patient, the run of consecutive readings in band that ends at the newest one.

    Ragged like a window: patient ``p``'s run is ``t[offsets[p]:offsets[p + 1]]``, oldest first,
    one time per instant however many readings share it.
    ``broken_at`` is the time of the reading just before the run, the newest one out of band
    (``NO_TIME`` when nothing in the lookback broke it). The evaluator cannot know which of these
    readings the debouncer has already counted (its state is read later, under a lock), so it
    hands over their times and :meth:`newer_than` sorts them out.
    """

    offsets: np.ndarray  # int64, n_patients + 1
    t: np.ndarray  # int64 epoch seconds, ascending within each patient's run
    broken_at: np.ndarray  # int64 per patient

    @property
    def length(self) -> np.ndarray:
        return np.diff(self.offsets)

    @classmethod
    def one_per_value(cls, level: np.ndarray, at: np.ndarray) -> Streaks:
        """A run of one for each value in band, never broken: the kinds whose value is not one
        reading's (trend, aggregate, score, missing_data) confirm once per new value."""
        inside = level > 0
        offsets = np.concatenate(([0], np.cumsum(inside, dtype=np.int64)))
        return cls(offsets, at[inside].astype(np.int64), np.full(level.size, NO_TIME, np.int64))

    def of(self, patient: int) -> tuple[tuple[int, ...], int]:
        """One patient's run and ``broken_at``, as ``alerts.reference`` gives them."""
        run = self.t[self.offsets[patient] : self.offsets[patient + 1]]
        return tuple(run.tolist()), int(self.broken_at[patient])

    def newer_than(self, t0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per patient, how many readings of the run are newer than ``t0``, and the time of the
        oldest of those (``NO_TIME`` when none is)."""
        newer = self.t > np.repeat(t0, self.length)
        first = take(self.t, first_index(self.offsets, newer), NO_TIME)
        return masked_count(self.offsets, newer), first


@dataclass(frozen=True, slots=True, eq=False)
class RuleResult:
    """One rule over all patients, each array indexed by patient.

    ``level``: -1 no data, 0 none, 1 amber, 2 red. ``hold_level``: the level the value still
    supports once each threshold is moved back by the clear margin; the debouncer keeps an open
    alert up to this level. ``value``: the value that decided the level, in the channel's unit.
    ``at``: epoch seconds of the newest reading behind ``value`` (for missing_data, the
    evaluation time). ``reason``: ``"<channel>:<amber|red>"``, ``"ok"``, ``"no_data"`` or
    ``"disabled"``. ``streaks``: for threshold rules, the readings of the deciding channel that
    a confirmation counts (empty without a valid level); None for the kinds that count one
    confirmation per new value.
    """

    key: str
    level: np.ndarray
    hold_level: np.ndarray
    value: np.ndarray
    at: np.ndarray
    reason: np.ndarray
    streaks: Streaks | None = None

    @property
    def streak(self) -> np.ndarray:
        """Consecutive readings in band up to the newest, per patient (0 out of band)."""
        if self.streaks is None:
            return (self.level > 0).astype(np.int64)
        return self.streaks.length

    def confirmations(self) -> Streaks:
        """What the debouncer counts: the runs, or one per value where readings do not count."""
        if self.streaks is None:
            return Streaks.one_per_value(self.level, self.at)
        return self.streaks


@dataclass(frozen=True, slots=True, eq=False)
class Channels:
    values: np.ndarray  # (channels, patients) float64, NaN: no data
    at: np.ndarray  # (channels, patients) int64, NO_TIME: no data
    runs: tuple[Streaks, ...] | None = None  # per channel, for all patients: threshold rules


def as_epoch_seconds(now: int | datetime | np.datetime64) -> int:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return int(now.timestamp())
    if isinstance(now, np.datetime64):
        return int(now.astype("datetime64[s]").astype(np.int64))
    return int(now)


class _Readings:
    """The windows of one evaluation at ``now``, with what many rules ask of a window worked out
    once: its newest reliable reading at or before ``now`` (threshold, score and missing-data
    rules all start from it)."""

    def __init__(self, windows: Mapping[str, MetricWindow], n_patients: int, now: int) -> None:
        self.windows = windows
        self.n_patients = n_patients
        self.now = now
        self._newest: dict[str, np.ndarray] = {}

    def window(self, metric: str) -> MetricWindow:
        w = self.windows.get(metric)
        if w is None:
            return MetricWindow.empty(self.n_patients)
        if w.n_patients != self.n_patients:
            raise ValueError(
                f"window of {metric!r} has {w.n_patients} patients, expected {self.n_patients}"
            )
        return w

    def newest(self, metric: str, lookback: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """Value and time of each patient's newest reliable reading with
        ``now - lookback < t <= now``; NaN and NO_TIME where there is none."""
        w = self.window(metric)
        if metric not in self._newest:
            self._newest[metric] = last_index(w.offsets, w.reliable & (w.t <= self.now))
        index = self._newest[metric]
        # Times are sorted per patient: the newest reading at or before now is the newest in
        # any window ending now, or there is none in that window.
        t = take(w.t, index, NO_TIME)
        inside = (index >= 0) & (t > self.now - lookback)
        return np.where(inside, take(w.v, index, np.nan), np.nan), np.where(inside, t, NO_TIME)


def _threshold(rule: CompiledRule, readings: _Readings) -> Channels:
    lookback = rule.rule.lookback
    latest = [readings.newest(m, lookback) for m in rule.rule.metrics]
    runs = tuple(
        _run_in_band(rule, channel, readings.window(metric), readings.now)
        for channel, metric in enumerate(rule.rule.metrics)
    )
    return Channels(np.array([v for v, _ in latest]), np.array([t for _, t in latest]), runs)


def _run_in_band(rule: CompiledRule, channel: int, w: MetricWindow, now: int) -> Streaks:
    """The trailing run of one channel's readings in any of its bands, within the lookback."""
    member = np.zeros(w.t.size, dtype=bool)
    for slot in rule.slots:
        if slot.channel == channel:
            # The slot's per-patient thresholds spread to readings: the same comparison, NaN
            # (no such band for that patient) still never matching. Without overrides they are
            # all one number, and a scalar spares a pass over every reading.
            threshold = slot.threshold
            uniform = threshold.size > 0 and bool(np.all(threshold == threshold[0]))
            spread = threshold[:1] if uniform else np.repeat(threshold, w.counts)
            member |= replace(slot, threshold=spread).matches(w.v)
    run, broken = trailing_run(w.offsets, in_lookback(w, now, rule.rule.lookback), member)
    offsets = np.concatenate(([0], np.cumsum(masked_count(w.offsets, run))))
    # One reading per instant: the same measurement stored twice (relayed by two gateways)
    # must not confirm itself.
    once = first_of_equal(offsets, w.t[run])
    offsets = np.concatenate(([0], np.cumsum(masked_count(offsets, once))))
    return Streaks(offsets, w.t[run][once], take(w.t, broken, NO_TIME))


def _missing_data(rule: CompiledRule, readings: _Readings) -> Channels:
    now = readings.now
    hours = []
    for metric in rule.rule.metrics:
        _, last = readings.newest(metric)
        hours.append(np.where(last == NO_TIME, np.inf, (now - last) / 3600.0))
    values = np.array(hours)
    return Channels(values, np.full(values.shape, now, dtype=np.int64))


def _trend(rule: CompiledRule, readings: _Readings) -> Channels:
    spec, now = rule.rule, readings.now
    values, ats = [], []
    for w in map(readings.window, spec.metrics):
        mask = keep_last(w.offsets, in_lookback(w, now, spec.window), spec.max_points)
        change, first, last = deltas(w.offsets, w.v, mask)
        span = take(w.t, last, 0) - take(w.t, first, 0)
        if spec.method == "ols":
            change = ols_slopes(w.offsets, w.t, w.v, mask, now) * spec.window
        elif spec.method == "theil_sen":
            slopes = theil_sen_slopes(w.offsets, w.t, w.v, mask, now, spec.max_points)
            change = slopes * spec.window
        enough = (masked_count(w.offsets, mask) >= spec.min_points) & (span >= spec.min_span)
        enough &= span > 0
        values.append(np.where(enough, change, np.nan))
        ats.append(np.where(enough, take(w.t, last, NO_TIME), NO_TIME))
    return Channels(np.array(values), np.array(ats))


def _aggregate(rule: CompiledRule, readings: _Readings) -> Channels:
    spec, now = rule.rule, readings.now
    today = int(local_day_and_hour(np.array([now]), spec.timezone)[0][0])
    values, ats = [], []
    for w in map(readings.window, spec.metrics):
        # Local times only for readings that can fall in the window keeps the zone lookup short.
        mask = w.reliable & (w.t <= now) & (w.t > now - (spec.days + 1) * 86400)
        day = np.full(w.t.shape, np.iinfo(np.int64).min)
        hour = np.full(w.t.shape, -1)
        day[mask], hour[mask] = local_day_and_hour(w.t[mask], spec.timezone)
        mask &= day > today - spec.days
        mask &= np.logical_or.reduce([(hour >= a) & (hour < b) for a, b in spec.sessions])
        if spec.discard_first_day:
            big = np.iinfo(np.int64).max
            first_day = segment_reduce(np.minimum, np.where(mask, day, big), w.offsets, big)
            mask &= day != np.repeat(first_day, w.counts)
        enough = distinct_count(w.offsets, day, mask) >= spec.min_days
        values.append(np.where(enough, masked_mean(w.offsets, w.v, mask), np.nan))
        ats.append(np.where(enough, take(w.t, last_index(w.offsets, mask), NO_TIME), NO_TIME))
    return Channels(np.array(values), np.array(ats))


def _score(rule: CompiledRule, readings: _Readings) -> Channels:
    spec = rule.rule
    n = rule.enabled.size
    points, at = [], np.full(n, NO_TIME, dtype=np.int64)
    for metric in spec.metrics:
        value, t = readings.newest(metric, spec.lookback)
        points.append(news2_points(metric, value, rule.spo2_scale, rule.supplemental_oxygen))
        at = np.maximum(at, t)
    table = np.array(points)
    present = (table >= 0).sum(axis=0)
    oxygen = np.where(rule.supplemental_oxygen, OXYGEN_POINTS, 0)
    total = np.maximum(table, 0).sum(axis=0) + oxygen
    worst = np.maximum(table.max(axis=0), oxygen)
    enough = present >= spec.min_parameters
    values = np.where(enough, np.array([total, worst], dtype=np.float64), np.nan)
    return Channels(values, np.where(enough, np.array([at, at]), NO_TIME))


_STATISTICS: Mapping[str, Callable[[CompiledRule, _Readings], Channels]] = {
    "threshold": _threshold,
    "trend": _trend,
    "aggregate": _aggregate,
    "score": _score,
    "missing_data": _missing_data,
}


def classify(rule: CompiledRule, channels: Channels) -> RuleResult:
    """Apply the rule's bands: the highest level wins, ties go to the earlier channel."""
    values = channels.values
    n = values.shape[1]
    level = np.zeros(n, dtype=np.int8)
    hold = np.zeros(n, dtype=np.int8)
    reason = np.full(n, -1, dtype=np.int64)
    decider = np.full(n, -1, dtype=np.int64)
    for index, slot in enumerate(rule.slots):
        v = values[slot.channel]
        hit = slot.matches(v) & (slot.level > level)
        level = np.where(hit, slot.level, level).astype(np.int8)
        reason = np.where(hit, index, reason)
        decider = np.where(hit, slot.channel, decider)
        held = slot.matches(v, rule.clear_margin) & (slot.level > hold)
        hold = np.where(held, slot.level, hold).astype(np.int8)
    present = ~np.isnan(values)
    has_data = present.any(axis=0)
    decider = np.where(decider >= 0, decider, np.argmax(present, axis=0))
    patients = np.arange(n)
    valid = has_data & rule.enabled
    reason = np.where(has_data, reason, -2)
    reason = np.where(rule.enabled, reason, -3)
    codes = np.array([slot.code for slot in rule.slots] + [DISABLED, NO_DATA_REASON, IN_RANGE])
    return RuleResult(
        key=rule.key,
        level=np.where(valid, level, NO_DATA).astype(np.int8),
        hold_level=np.where(valid, hold, NO_DATA).astype(np.int8),
        value=np.where(valid, values[decider, patients], np.nan),
        at=np.where(valid, channels.at[decider, patients], NO_TIME),
        reason=codes[reason],
        streaks=None if channels.runs is None else _deciders_runs(channels.runs, decider, valid),
    )


def _deciders_runs(runs: Sequence[Streaks], decider: np.ndarray, valid: np.ndarray) -> Streaks:
    """Each patient's run from the channel that decided the level; empty without a valid level.

    The channel whose newest reading set the level is the one whose readings confirm it: a
    blood pressure reading in band on both channels counts once, not once per channel.
    """
    n = decider.size
    chosen = [valid & (decider == channel) for channel in range(len(runs))]
    patients, times = [], []
    for run, mine in zip(runs, chosen, strict=True):
        keep = np.repeat(mine, run.length)
        patients.append(np.repeat(np.arange(n, dtype=np.int64), run.length)[keep])
        times.append(run.t[keep])
    patient = np.concatenate(patients)
    # Each patient's run comes from one channel, in order: a stable sort by patient merges them.
    order = np.argsort(patient, kind="stable")
    offsets = np.concatenate(([0], np.cumsum(np.bincount(patient, minlength=n))))
    broken_at = np.select(chosen, [run.broken_at for run in runs], NO_TIME)
    return Streaks(offsets.astype(np.int64), np.concatenate(times)[order], broken_at)


def evaluate_rule(
    rule: CompiledRule, windows: Mapping[str, MetricWindow], now: int | datetime | np.datetime64
) -> RuleResult:
    return _evaluate_rule(rule, _Readings(windows, rule.enabled.size, as_epoch_seconds(now)))


def _evaluate_rule(rule: CompiledRule, readings: _Readings) -> RuleResult:
    return classify(rule, _STATISTICS[rule.rule.kind](rule, readings))


def evaluate(
    protocol: CompiledProtocol | Protocol,
    windows: Mapping[str, MetricWindow],
    now: int | datetime | np.datetime64,
) -> dict[str, RuleResult]:
    """Every rule of ``protocol`` for every patient of ``windows`` at time ``now``."""
    if isinstance(protocol, Protocol):
        sizes = {w.n_patients for w in windows.values()}
        if len(sizes) != 1:
            raise ValueError(
                "windows must cover the same patients; with no windows, pass a CompiledProtocol"
            )
        protocol = compile_protocol(protocol, sizes.pop())
    readings = _Readings(windows, protocol.n_patients, as_epoch_seconds(now))
    return {rule.key: _evaluate_rule(rule, readings) for rule in protocol.rules}
