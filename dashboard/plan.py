"""The monitoring plan in words: a patient's protocols, their thresholds (the patient's own
overrides marked as such) and the schedule, as the patient page states it."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.protocol import Protocol, rule_title
from dashboard.bands import effective_protocol, protocols
from dashboard.glance import schedules
from dashboard.models import ProtocolAssignment
from dashboard.wording import language_of
from telemon.metrics import METRICS
from telemon.reasons import OPS, duration, number

# Rule kinds whose bands are on the metric's own values (see dashboard.bands).
_VALUE_KINDS = ("threshold", "aggregate")


@dataclass(frozen=True, slots=True)
class Limit:
    level: str  # amber, red
    text: str  # "SpO2 ≤ 92 %"
    own: bool  # the patient's own threshold, not the protocol's


@dataclass(frozen=True, slots=True)
class RuleLine:
    title: str
    limits: list[Limit]


@dataclass(frozen=True, slots=True)
class ProtocolPlan:
    key: str
    title: str
    schedule: list[tuple[str, str]]  # (metric label, "24 h")
    rules: list[RuleLine]


def _limit_text(channel: str, op: str, amount: float, language: str) -> str:
    lang = language_of(language)
    metric = METRICS.get(channel)
    if metric is None:
        return f"{channel} {OPS[op]} {number(amount, lang)}"
    return (
        f"{metric.short_label(lang)} {OPS[op]} {number(amount, lang)} {metric.display_unit(lang)}"
    )


def plan(
    assigned: list[ProtocolAssignment],
    language: str,
    hidden: frozenset[str] | set[str] = frozenset(),
) -> list[ProtocolPlan]:
    """The protocols' schedules and limits; none of the ``hidden`` metrics (those the patient
    hid from the reader, dashboard/restrictions.py)."""
    lang = language_of(language)
    out = []
    for a in assigned:
        default = protocols().get(a.protocol)
        applied: Protocol | None = effective_protocol(a.protocol, a.overrides)
        if default is None or applied is None:
            continue
        lines = []
        for rule in applied.rules:
            if rule.kind not in _VALUE_KINDS or not rule.enabled:
                continue
            if hidden and set(rule.metrics) <= hidden:
                continue
            base = {(b.level, b.channel): (b.op, b.value) for b in default.rule(rule.key).bands}
            limits = [
                Limit(
                    b.level,
                    _limit_text(b.channel, b.op, b.value, lang),
                    base.get((b.level, b.channel)) != (b.op, b.value),
                )
                for b in sorted(rule.bands, key=lambda b: b.severity)
                if b.channel not in hidden
            ]
            lines.append(RuleLine(rule_title(rule, lang), limits))
        watch = [
            (METRICS[s.metric].label(lang), duration(s.every_seconds, lang))
            for s in schedules(applied)
            if s.metric not in hidden
        ]
        out.append(ProtocolPlan(a.protocol, rule_title(applied, lang), watch, lines))
    return out
