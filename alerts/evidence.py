"""The evidence behind one patient's finding, read out of a rule's evaluation.

The evaluator works on every patient at once and keeps, beside each rule's levels, the arrays
it computed on the way (``RuleResult.channels``). A finding is one patient of them: this module
picks that patient's values, the band that matched with the patient's own threshold (overrides
included), and what the rule's kind computed, into a :mod:`telemon.findings` model. It only
reads: no evaluation is repeated, so the evidence says what the engine decided on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypedDict

import numpy as np

from alerts.evaluate import (
    NO_TIME,
    AggregateDetail,
    Channels,
    RuleResult,
    ScoreDetail,
    ThresholdDetail,
    TrendDetail,
)
from alerts.protocol import AggregateRule, MissingDataRule, ScoreRule, TrendRule
from alerts.tables import BandSlot, CompiledRule
from telemon.findings import (
    Evidence,
    Level,
    Mean,
    Missing,
    Op,
    Parameter,
    Score,
    Threshold,
    Trend,
)

# The levels a finding stands at (amber, red), by the evaluator's number for them.
_FINDING_LEVELS: Mapping[int, Level] = {1: 1, 2: 2}


def utc(at: int) -> datetime | None:
    """Epoch seconds as an aware UTC datetime; None for ``NO_TIME``."""
    return None if at == NO_TIME else datetime.fromtimestamp(at, UTC)


class _Common(TypedDict):
    """What every kind of evidence says (``telemon.findings._Evidence`` and the band's op)."""

    rule: str
    protocol: str
    level: Level
    at: datetime | None
    op: Op


@dataclass(frozen=True, slots=True)
class _Finding:
    """One patient of one rule's evaluation, at the level the finding stands at."""

    rule: CompiledRule
    result: RuleResult
    patient: int
    level: Level
    band: BandSlot
    protocol: str
    now: int

    @property
    def channels(self) -> Channels:
        assert self.result.channels is not None
        return self.result.channels

    def value(self, channel: int) -> float:
        return float(self.channels.values[channel, self.patient])

    def at(self, channel: int) -> int:
        return int(self.channels.at[channel, self.patient])

    def by_channel(self) -> dict[str, float]:
        """Every channel's value, for the channels that have one."""
        column = self.channels.values[:, self.patient].tolist()
        return {
            name: float(v)
            for name, v in zip(self.rule.rule.channels, column, strict=True)
            if not math.isnan(v)
        }

    @property
    def threshold(self) -> float:
        """The patient's own threshold of the band (overrides apply per patient)."""
        return float(self.band.threshold[self.patient])

    def common(self, at: int) -> _Common:
        return {
            "rule": self.rule.key,
            "protocol": self.protocol,
            "level": self.level,
            "at": utc(at),
            "op": self.band.op,
        }


def _confirmation(finding: _Finding) -> tuple[int, int]:
    """How many readings, one per instant, stand in the finding's band up to the newest, and
    the seconds they span.

    The debouncer's run (``RuleResult.streaks``) counts readings in any of the channel's bands:
    amber readings before a red one confirm it. Said beside the red threshold they would read
    as red readings, so the evidence counts the run's readings in the finding's own band.
    """
    detail = finding.channels.detail
    assert isinstance(detail, ThresholdDetail)
    band, p = finding.band, finding.patient
    w = detail.windows[band.channel]
    t, v = w.t[w.offsets[p] : w.offsets[p + 1]], w.v[w.offsets[p] : w.offsets[p + 1]]
    outside = np.flatnonzero(~replace(band, threshold=band.threshold[p : p + 1]).matches(v))
    run = np.unique(t[outside[-1] + 1 if outside.size else 0 :])
    return max(run.size, 1), int(run[-1] - run[0]) if run.size else 0


def _threshold(finding: _Finding) -> Threshold:
    channel = finding.band.channel
    confirmed_by, span = _confirmation(finding)
    return Threshold(
        **finding.common(finding.at(channel)),
        metric=finding.band.on,
        value=finding.value(channel),
        threshold=finding.threshold,
        values=finding.by_channel(),
        confirmed_by=confirmed_by,
        confirm_span_s=span,
    )


def _trend(finding: _Finding) -> Trend:
    channel, p = finding.band.channel, finding.patient
    spec = finding.rule.spec(TrendRule)
    detail = finding.channels.detail
    assert isinstance(detail, TrendDetail)
    compared = spec.method == "delta"  # the two readings compared are the change, in words
    return Trend(
        **finding.common(finding.at(channel)),
        metric=finding.band.on,
        change=finding.value(channel),
        threshold=finding.threshold,
        window_s=spec.window,
        method=spec.method,
        points=int(detail.points[channel, p]),
        span_s=int(detail.span[channel, p]),
        first_value=float(detail.first_value[channel, p]) if compared else None,
        last_value=float(detail.last_value[channel, p]) if compared else None,
    )


def _mean(finding: _Finding) -> Mean:
    channel, p = finding.band.channel, finding.patient
    spec = finding.rule.spec(AggregateRule)
    detail = finding.channels.detail
    assert isinstance(detail, AggregateDetail)
    thresholds = {
        slot.on: float(slot.threshold[p])
        for slot in finding.rule.slots
        if slot.level == finding.level and not math.isnan(slot.threshold[p])
    }
    return Mean(
        **finding.common(finding.at(channel)),
        metric=finding.band.on,
        means=finding.by_channel(),
        thresholds=thresholds,
        days=spec.days,
        days_measured=int(detail.days_measured[channel, p]),
    )


def _score(finding: _Finding) -> Score:
    rule, p = finding.rule, finding.patient
    spec = rule.spec(ScoreRule)
    detail = finding.channels.detail
    assert isinstance(detail, ScoreDetail)
    parameters = tuple(
        Parameter(
            metric=metric,
            value=float(detail.values[i, p]),
            points=int(detail.points[i, p]),
            age_s=finding.now - int(detail.at[i, p]),
        )
        for i, metric in enumerate(spec.metrics)
        if detail.points[i, p] >= 0
    )
    return Score(
        **finding.common(finding.at(finding.band.channel)),
        score=spec.score,
        total=int(finding.value(0)),  # channel 0 is the total, whichever band matched
        on=spec.channels[finding.band.channel],
        threshold=finding.threshold,
        parameters=parameters,
        of=len(spec.metrics),
        min_parameters=spec.min_parameters,
        # The protocol's scale or the patient's override of it: 1 or 2.
        spo2_scale=2 if rule.spo2_scale[p] == 2 else 1,
        supplemental_oxygen=bool(rule.supplemental_oxygen[p]),
    )


def _missing(finding: _Finding) -> Missing:
    channel = finding.band.channel
    hours = finding.value(channel)
    expected = finding.rule.spec(MissingDataRule).expected_every
    return Missing(
        **finding.common(finding.at(channel)),
        metric=finding.band.on,
        hours=hours if math.isfinite(hours) else None,  # infinite: never measured
        expected_every_s=expected,
        threshold=finding.threshold,
    )


_KINDS: Mapping[str, Callable[[_Finding], Evidence]] = {
    "threshold": _threshold,
    "trend": _trend,
    "aggregate": _mean,
    "score": _score,
    "missing_data": _missing,
}


def _band(rule: CompiledRule, result: RuleResult, patient: int, level: int) -> BandSlot | None:
    """The band behind the finding at ``level``: the one that matched when the value is at that
    level, else (an alert held by the clear margin) the first band at ``level`` still holding."""
    if int(result.level[patient]) == level:
        return rule.slots[int(result.reason_code[patient])]
    assert result.channels is not None
    values = result.channels.values[:, patient]
    margin = rule.clear_margin[patient]
    held = (
        slot
        for slot in rule.slots
        if slot.level == level and slot.matches(values[slot.channel : slot.channel + 1], margin)[0]
    )
    return next(held, None)


def evidence_of(
    rule: CompiledRule,
    result: RuleResult,
    patient: int,
    *,
    protocol: str,
    now: int,
    level: int | None = None,
) -> Evidence | None:
    """The evidence of ``patient``'s finding for ``rule``, from the rule's evaluation at ``now``.

    ``level`` is the level the finding stands at, by default the evaluated one; an alert that
    the clear margin holds above its value (a downgrade to amber while the value is back in
    range) passes its own. None when that level is neither amber nor red.
    """
    stands_at = _FINDING_LEVELS.get(int(result.level[patient]) if level is None else level)
    if stands_at is None:
        return None
    if result.channels is None:
        raise ValueError(f"the result of {rule.key!r} keeps no channels to take evidence from")
    band = _band(rule, result, patient, stands_at)
    if band is None:
        return None
    finding = _Finding(rule, result, patient, stands_at, band, protocol, now)
    return _KINDS[rule.rule.kind](finding)
