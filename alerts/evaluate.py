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

from alerts.protocol import (
    NO_DATA,
    AggregateRule,
    MissingDataRule,
    Protocol,
    ScoreRule,
    ThresholdRule,
    TrendRule,
)
from alerts.scores import OXYGEN_POINTS, news2_points
from alerts.tables import CompiledProtocol, CompiledRule, compile_protocol
from alerts.trends import deltas, ols_slopes, theil_sen_slopes
from alerts.windows import (
    MetricWindow,
    SessionDays,
    first_index,
    first_of_equal,
    followed_within,
    gather_slices,
    last_index,
    masked_count,
    masked_mean,
    offsets_of,
    segment_reduce,
    settled,
    take,
    trailing_run,
)

NO_TIME = -1  # ``at`` of a result without data

# Reasons that are not a band; they follow the rule's bands in its table of reasons.
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
        return cls(
            offsets_of(inside), at[inside].astype(np.int64), np.full(level.size, NO_TIME, np.int64)
        )

    def of(self, patient: int) -> tuple[tuple[int, ...], int]:
        """One patient's run and ``broken_at``, as ``bench._reference`` gives them."""
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
    evaluation time). ``reason_code``: index into ``reasons``, which holds
    ``"<channel>:<amber|red>"`` per band, then ``"disabled"``, ``"no_data"`` and ``"ok"``.
    ``streaks``: for threshold rules, the readings of the deciding channel that a confirmation
    counts (empty without a valid level); None for the kinds that count one confirmation per
    new value. ``channels``: every channel's value and time, and what the rule's kind computed
    on the way (:class:`Channels`), kept for the evidence of a finding (``alerts.evidence``).
    """

    key: str
    level: np.ndarray
    hold_level: np.ndarray
    value: np.ndarray
    at: np.ndarray
    reason_code: np.ndarray
    reasons: tuple[str, ...]
    streaks: Streaks | None = None
    channels: Channels | None = None

    def reason_of(self, patient: int) -> str:
        return self.reasons[int(self.reason_code[patient])]

    @property
    def reason(self) -> np.ndarray:
        """Every patient's reason as text (a copy per patient: for tools and tests)."""
        return np.take(np.array(self.reasons), self.reason_code)

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
class ThresholdDetail:
    windows: tuple[MetricWindow, ...]  # per channel, the usable readings in the lookback


@dataclass(frozen=True, slots=True, eq=False)
class TrendDetail:
    """What a trend's change was computed from, (channels, patients) each."""

    points: np.ndarray  # int64: readings in the fit (or between the two compared)
    span: np.ndarray  # int64: seconds from the oldest to the newest of them
    first_value: np.ndarray  # float64: the oldest of them, NaN: none
    last_value: np.ndarray  # float64: the newest of them, NaN: none


@dataclass(frozen=True, slots=True, eq=False)
class AggregateDetail:
    days_measured: np.ndarray  # (channels, patients) int64: days counted in the mean


@dataclass(frozen=True, slots=True, eq=False)
class ScoreDetail:
    """Each scored parameter's newest reading in the lookback, (parameters, patients) each."""

    values: np.ndarray  # float64, NaN: not measured
    at: np.ndarray  # int64, NO_TIME: not measured
    points: np.ndarray  # int64, -1: not measured


Detail = ThresholdDetail | TrendDetail | AggregateDetail | ScoreDetail


@dataclass(frozen=True, slots=True, eq=False)
class Channels:
    values: np.ndarray  # (channels, patients) float64, NaN: no data
    at: np.ndarray  # (channels, patients) int64, NO_TIME: no data
    runs: tuple[Streaks, ...] | None = None  # per channel, for all patients: threshold rules
    detail: Detail | None = None  # what the kind computed besides the values: for evidence


def as_epoch_seconds(now: int | datetime | np.datetime64) -> int:
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return int(now.timestamp())
    if isinstance(now, np.datetime64):
        return int(now.astype("datetime64[s]").astype(np.int64))
    return int(now)


class _Readings:
    """The windows of one evaluation at ``now``, cut to what rules read and shared between them.

    A rule only ever reads the reliable readings at or before ``now`` within its lookback: the
    newest of them, or all of them. Each window is cut to its usable readings once, and to each
    lookback once, so every rule works on the readings it reads and no more.
    """

    def __init__(self, windows: Mapping[str, MetricWindow], n_patients: int, now: int) -> None:
        self.windows = windows
        self.n_patients = n_patients
        self.now = now
        self._usable: dict[str, MetricWindow] = {}
        self._recent: dict[tuple[str, float], MetricWindow] = {}
        self._newest: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def window(self, metric: str) -> MetricWindow:
        w = self.windows.get(metric)
        if w is None:
            return MetricWindow.empty(self.n_patients)
        if w.n_patients != self.n_patients:
            raise ValueError(
                f"window of {metric!r} has {w.n_patients} patients, expected {self.n_patients}"
            )
        return w

    def usable(self, metric: str) -> MetricWindow:
        """The reliable readings at or before ``now``."""
        if metric not in self._usable:
            w = self.window(metric)
            index = last_index(w.offsets, None)
            t = take(w.t, index, NO_TIME)
            # Times are sorted: no reading is after now when no patient's newest one is.
            if np.all(t <= self.now) and w.reliable.all():
                self._usable[metric] = w
                self._newest[metric] = take(w.v, index, np.nan), t
            else:
                self._usable[metric] = w.select(w.reliable & (w.t <= self.now))
        return self._usable[metric]

    def recent(self, metric: str, lookback: float) -> MetricWindow:
        """The usable readings with ``now - lookback < t``."""
        key = (metric, lookback)
        if key not in self._recent:
            self._recent[key] = self.usable(metric).since(self.now - lookback)
        return self._recent[key]

    def newest(self, metric: str, lookback: float = np.inf) -> tuple[np.ndarray, np.ndarray]:
        """Value and time of each patient's newest usable reading with ``now - lookback < t``;
        NaN and NO_TIME where there is none."""
        w = self.usable(metric)
        if metric not in self._newest:
            index = last_index(w.offsets, None)
            self._newest[metric] = take(w.v, index, np.nan), take(w.t, index, NO_TIME)
        v, t = self._newest[metric]
        if lookback == np.inf:
            return v, t
        old = t <= self.now - lookback  # and NO_TIME, where v is NaN already
        if not old.any():
            return v, t
        return np.where(old, np.nan, v), np.where(old, NO_TIME, t)


def _threshold(rule: CompiledRule, readings: _Readings) -> Channels:
    spec = rule.spec(ThresholdRule)
    lookback = spec.lookback
    latest = [readings.newest(m, lookback) for m in spec.metrics]
    windows = tuple(readings.recent(metric, lookback) for metric in spec.metrics)
    runs = tuple(_run_in_band(rule, channel, w) for channel, w in enumerate(windows))
    values, at = np.array([v for v, _ in latest]), np.array([t for _, t in latest])
    return Channels(values, at, runs, ThresholdDetail(windows))


def _run_in_band(rule: CompiledRule, channel: int, w: MetricWindow) -> Streaks:
    """The trailing run of one channel's readings in any of its bands (``w``: its lookback)."""
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
    length, broken = trailing_run(w.offsets, member)
    run = w.tail(length)
    # One reading per instant: the same measurement stored twice (relayed by two gateways)
    # must not confirm itself.
    first = first_of_equal(run.offsets, run.t)
    once = run if first.all() else run.select(first)
    return Streaks(once.offsets, once.t, take(w.t, broken, NO_TIME))


def _missing_data(rule: CompiledRule, readings: _Readings) -> Channels:
    spec, now, start = rule.spec(MissingDataRule), readings.now, rule.started_at
    # No reading is due before the first one was: until then the rule has no value.
    due = start + (spec.expected_every or 0) + spec.grace
    waiting = (start != NO_TIME) & (now < due)
    hours = []
    for metric in spec.metrics:
        _, last = readings.newest(metric)
        since = np.maximum(last, start)  # a reading older than the enrolment counts from it
        hours.append(
            np.where(waiting, np.nan, np.where(since == NO_TIME, np.inf, (now - since) / 3600.0))
        )
    values = np.array(hours)
    return Channels(values, np.full(values.shape, now, dtype=np.int64))


_SLOPES = {"ols": ols_slopes, "theil_sen": theil_sen_slopes}


def trend_points(spec: TrendRule, w: MetricWindow, now: int) -> MetricWindow:
    """The readings a trend rule fits, out of the usable ones within twice its window: the
    re-measured left out, then those at most ``window`` older than the newest one, when that one
    lies within ``window`` of now (a trend is not kept going by old readings)."""
    if spec.remeasure:
        again = followed_within(w.offsets, w.t, spec.remeasure)
        if again.any():
            w = w.select(~again)
    newest = take(w.t, last_index(w.offsets, None), NO_TIME)
    start = np.where(newest > now - spec.window, newest - spec.window, now + 1)
    inside = masked_count(w.offsets, w.t >= np.repeat(start, w.counts))
    return w.tail(np.minimum(inside, spec.max_points))


def _trend(rule: CompiledRule, readings: _Readings) -> Channels:
    spec, now = rule.spec(TrendRule), readings.now
    values, ats, kept = [], [], []
    for metric in spec.metrics:
        w = trend_points(spec, readings.recent(metric, 2 * spec.window), now)
        change, first, last = deltas(w.offsets, w.v, None)
        if spec.method in _SLOPES:
            change = _SLOPES[spec.method](w.offsets, w.t, w.v, None, now) * spec.window
        span = take(w.t, last, 0) - take(w.t, first, 0)
        enough = (w.counts >= spec.min_points) & (span >= spec.min_span) & (span > 0)
        # Settled as means are: 64.4 - 62.4 kg is 2.000000000000007 in floating point, which
        # is not "more than 2 kg".
        values.append(np.where(enough, settled(change), np.nan))
        ats.append(np.where(enough, take(w.t, last, NO_TIME), NO_TIME))
        kept.append((w.counts, span, take(w.v, first, np.nan), take(w.v, last, np.nan)))
    detail = TrendDetail(*(np.array(column) for column in zip(*kept, strict=True)))
    return Channels(np.array(values), np.array(ats), detail=detail)


def _aggregate(rule: CompiledRule, readings: _Readings) -> Channels:
    spec, now = rule.spec(AggregateRule), readings.now
    calendar = SessionDays.of(now, spec.days, spec.sessions, spec.timezone)
    values, ats, days = [], [], []
    for metric in spec.metrics:
        w = readings.recent(metric, (spec.days + 1) * 86400)
        day = calendar.bits(w.t)
        measured = segment_reduce(np.bitwise_or, day, w.offsets, 0)  # a bit per day measured
        chosen = day > 0
        if spec.discard_first_day:
            first = measured & -measured  # the lowest bit set (unsigned: -x wraps)
            measured ^= first
            chosen = day > np.repeat(first, w.counts)
        days.append(np.bitwise_count(measured).astype(np.int64))
        enough = days[-1] >= spec.min_days
        values.append(np.where(enough, masked_mean(w.offsets, w.v, chosen), np.nan))
        ats.append(np.where(enough, take(w.t, last_index(w.offsets, chosen), NO_TIME), NO_TIME))
    return Channels(np.array(values), np.array(ats), detail=AggregateDetail(np.array(days)))


def _score(rule: CompiledRule, readings: _Readings) -> Channels:
    spec = rule.spec(ScoreRule)
    n = rule.enabled.size
    points, at, newest = [], np.full(n, NO_TIME, dtype=np.int64), []
    for metric in spec.metrics:
        value, t = readings.newest(metric, spec.lookback)
        points.append(news2_points(metric, value, rule.spo2_scale, rule.supplemental_oxygen))
        at = np.maximum(at, t)
        newest.append((value, t))
    table = np.array(points)
    present = (table >= 0).sum(axis=0)
    oxygen = np.where(rule.supplemental_oxygen, OXYGEN_POINTS, 0)
    total = np.maximum(table, 0).sum(axis=0) + oxygen
    worst = np.maximum(table.max(axis=0), oxygen)
    enough = present >= spec.min_parameters
    values = np.where(enough, np.array([total, worst], dtype=np.float64), np.nan)
    detail = ScoreDetail(np.array([v for v, _ in newest]), np.array([t for _, t in newest]), table)
    return Channels(values, np.where(enough, np.array([at, at]), NO_TIME), detail=detail)


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
    reasons = (*(slot.code for slot in rule.slots), DISABLED, NO_DATA_REASON, IN_RANGE)
    level = np.zeros(n, dtype=np.int8)
    hold = np.zeros(n, dtype=np.int8)
    code = np.full(n, reasons.index(IN_RANGE), dtype=np.int8)
    for index, slot in enumerate(rule.slots):
        v = values[slot.channel]
        hit = slot.matches(v) & (slot.level > level)
        level[hit] = slot.level
        code[hit] = index
        hold[slot.matches(v, rule.clear_margin) & (slot.level > hold)] = slot.level
    present = ~np.isnan(values)
    has_data = present.any(axis=0)
    code[~has_data] = reasons.index(NO_DATA_REASON)
    code[~rule.enabled] = reasons.index(DISABLED)
    valid = has_data & rule.enabled
    level[~valid] = NO_DATA
    hold[~valid] = NO_DATA
    if values.shape[0] == 1:
        decider = np.zeros(n, dtype=np.int64)
        value, at = values[0], channels.at[0]
    else:
        # The channel of the band that set the level, else the first channel with data.
        channel_of = np.array([slot.channel for slot in rule.slots] + [-1, -1, -1])
        decider = channel_of[code]
        decider = np.where(decider >= 0, decider, np.argmax(present, axis=0))
        patients = np.arange(n)
        value, at = values[decider, patients], channels.at[decider, patients]
    return RuleResult(
        key=rule.key,
        level=level,
        hold_level=hold,
        value=np.where(valid, value, np.nan),
        at=np.where(valid, at, NO_TIME),
        reason_code=code,
        reasons=reasons,
        streaks=None if channels.runs is None else _deciders_runs(channels.runs, decider, valid),
        channels=channels,
    )


def _deciders_runs(runs: Sequence[Streaks], decider: np.ndarray, valid: np.ndarray) -> Streaks:
    """Each patient's run from the channel that decided the level; empty without a valid level.

    The channel whose newest reading set the level is the one whose readings confirm it: a
    blood pressure reading in band on both channels counts once, not once per channel.
    """
    if len(runs) == 1:
        [run] = runs
        # Patients without a valid level (no data, or the rule disabled for them) keep no run.
        if not (~valid & ((run.length > 0) | (run.broken_at != NO_TIME))).any():
            return run
    chosen = [valid & (decider == channel) for channel in range(len(runs))]
    length = np.select(chosen, [run.length for run in runs], 0)
    broken_at = np.select(chosen, [run.broken_at for run in runs], NO_TIME)
    # The channels' runs end to end: each patient's run is one slice of them.
    base = offsets_of(np.array([run.t.size for run in runs]))
    start = np.select(chosen, [run.offsets[:-1] + b for run, b in zip(runs, base, strict=False)])
    offsets, gather = gather_slices(start, length)
    return Streaks(offsets, np.concatenate([run.t for run in runs])[gather], broken_at)


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
