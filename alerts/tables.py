"""A protocol compiled for a cohort: every per-patient parameter becomes an array over patients.

Overrides change numbers (thresholds, margins, confirm, escalation, snooze, NEWS2 scale), never
structure, so one compiled rule evaluates every patient with the same array code. Band
thresholds live in "slots" keyed by (channel, level, op); a patient without a band in a slot
gets NaN there, and a comparison with NaN never matches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import DTypeLike

from alerts.protocol import (
    COMPARE,
    LOW_OPS,
    AnyRule,
    Band,
    PatientOverride,
    Protocol,
    RuleKind,
    ScoreRule,
    apply_override,
    of_kind,
)
from telemon.findings import Op

NOT_KNOWN = -1  # a time not known: ``alerts.evaluate.NO_TIME``


@dataclass(frozen=True, slots=True, eq=False)
class BandSlot:
    channel: int
    on: str
    level: int
    op: Op
    threshold: np.ndarray  # float64 per patient, NaN: no such band for that patient

    @property
    def code(self) -> str:
        return f"{self.on}:{'red' if self.level == 2 else 'amber'}"

    def matches(self, values: np.ndarray, margin: np.ndarray | float = 0.0) -> np.ndarray:
        """Whether each value is in band; ``margin`` widens the band (for holding an alert)."""
        threshold = self.threshold + margin if self.op in LOW_OPS else self.threshold - margin
        with np.errstate(invalid="ignore"):
            in_band: np.ndarray = COMPARE[self.op](values, threshold)
        return in_band


@dataclass(frozen=True, slots=True, eq=False)
class CompiledRule:
    rule: AnyRule  # the protocol's rule: structure shared by every patient
    enabled: np.ndarray
    slots: tuple[BandSlot, ...]
    clear_margin: np.ndarray
    confirm_count: np.ndarray
    confirm_duration: np.ndarray
    confirm_timeout: np.ndarray
    escalate_after: np.ndarray
    snooze_after_ack: np.ndarray
    spo2_scale: np.ndarray
    supplemental_oxygen: np.ndarray
    # Per patient, epoch seconds the enrolment in the protocol started (-1: not known); what
    # missing-data rules count from before the first reading.
    started_at: np.ndarray

    @property
    def key(self) -> str:
        return self.rule.key

    def spec(self, kind: type[RuleKind]) -> RuleKind:
        """The protocol's rule as the kind it is (:func:`alerts.protocol.of_kind`)."""
        return of_kind(self.rule, kind)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledProtocol:
    protocol: Protocol
    n_patients: int
    rules: tuple[CompiledRule, ...]

    def rule(self, key: str) -> CompiledRule:
        for rule in self.rules:
            if rule.key == key:
                return rule
        raise KeyError(f"protocol {self.protocol.key!r} has no rule {key!r}")


# Per-patient parameters: each one's dtype and how a rule states it.
_SCALARS: Mapping[str, tuple[DTypeLike, Callable[[AnyRule], float]]] = {
    "enabled": (bool, lambda r: r.enabled),
    "clear_margin": (np.float64, lambda r: r.clear_margin),
    "confirm_count": (np.int64, lambda r: r.confirm.count),
    "confirm_duration": (np.int64, lambda r: r.confirm.duration),
    "confirm_timeout": (np.int64, lambda r: r.confirm.timeout),
    "escalate_after": (np.int64, lambda r: r.escalate_after),
    "snooze_after_ack": (np.int64, lambda r: r.snooze_after_ack),
    "spo2_scale": (np.int8, lambda r: r.spo2_scale if isinstance(r, ScoreRule) else 1),
    "supplemental_oxygen": (
        bool,
        lambda r: r.supplemental_oxygen if isinstance(r, ScoreRule) else False,
    ),
}


def _slot(thresholds: dict[tuple[str, int, Op], np.ndarray], band: Band, n: int) -> np.ndarray:
    return thresholds.setdefault((band.channel, band.severity, band.op), np.full(n, np.nan))


def _everyone(value: float, dtype: DTypeLike, n: int) -> np.ndarray:
    """One value for every patient: a read-only view of it, which costs nothing to make and
    which numpy compares as fast as a scalar."""
    return np.broadcast_to(np.asarray(value, dtype=dtype), (n,))


def compile_protocol(
    protocol: Protocol,
    n_patients: int,
    overrides: Mapping[int, PatientOverride] | None = None,
    started_at: np.ndarray | None = None,
) -> CompiledProtocol:
    """Compile ``protocol`` for patients ``0..n_patients-1``; ``overrides`` by patient index,
    ``started_at`` the epoch seconds each patient's enrolment started (None: not known).

    Overrides are validated by applying them to the protocol; identical overrides are applied
    once, so the cost grows with the number of distinct overrides, not of patients.
    """
    groups: dict[str, tuple[PatientOverride, list[int]]] = {}
    for patient, override in (overrides or {}).items():
        if not 0 <= patient < n_patients:
            raise IndexError(f"override for patient index {patient} outside 0..{n_patients - 1}")
        entry = groups.setdefault(override.model_dump_json(), (override, []))
        entry[1].append(patient)
    variants = [
        (apply_override(protocol, override), np.asarray(patients, dtype=np.int64))
        for override, patients in groups.values()
    ]
    if started_at is None:
        started = _everyone(NOT_KNOWN, np.int64, n_patients)
    else:
        started = np.asarray(started_at, dtype=np.int64)
        if started.shape != (n_patients,):
            raise ValueError(f"started_at must have one time per patient ({n_patients})")
    compiled = []
    for index, base in enumerate(protocol.rules):
        if not variants:
            compiled.append(_uniform_rule(base, n_patients, started))
            continue
        arrays = {
            name: np.full(n_patients, get(base), dtype=dtype)
            for name, (dtype, get) in _SCALARS.items()
        }
        thresholds: dict[tuple[str, int, Op], np.ndarray] = {}
        for band in base.bands:
            _slot(thresholds, band, n_patients)[:] = band.value
        for variant, patients in variants:
            rule = variant.rules[index]
            for name, (_, get) in _SCALARS.items():
                arrays[name][patients] = get(rule)
            for values in thresholds.values():
                values[patients] = np.nan
            for band in rule.bands:
                _slot(thresholds, band, n_patients)[patients] = band.value
        compiled.append(
            CompiledRule(rule=base, slots=_slots(base, thresholds), started_at=started, **arrays)
        )
    return CompiledProtocol(protocol, n_patients, tuple(compiled))


def _uniform_rule(rule: AnyRule, n: int, started_at: np.ndarray) -> CompiledRule:
    """A rule no patient overrides."""
    arrays = {name: _everyone(get(rule), dtype, n) for name, (dtype, get) in _SCALARS.items()}
    thresholds: dict[tuple[str, int, Op], np.ndarray] = {
        (band.channel, band.severity, band.op): _everyone(band.value, np.float64, n)
        for band in rule.bands
    }
    return CompiledRule(rule=rule, slots=_slots(rule, thresholds), started_at=started_at, **arrays)


def _slots(
    rule: AnyRule, thresholds: dict[tuple[str, int, Op], np.ndarray]
) -> tuple[BandSlot, ...]:
    channels = rule.channels
    return tuple(
        BandSlot(channels.index(on), on, level, op, values)
        for (on, level, op), values in sorted(
            thresholds.items(), key=lambda kv: (channels.index(kv[0][0]), kv[0][1], kv[0][2])
        )
    )
