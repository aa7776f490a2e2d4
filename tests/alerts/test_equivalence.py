"""The vectorised evaluator equals the per-patient reference on random ragged data."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.evaluate import NO_TIME, evaluate
from alerts.protocol import PatientOverride, Protocol, RuleOverride, apply_override, load_protocols
from alerts.tables import compile_protocol
from alerts.windows import windows_from_patients
from bench._reference import evaluate_patient
from telemon.metrics import METRICS

NOW = 1_767_225_600 + 10 * 86400 + 9 * 3600
PROTOCOLS = load_protocols()

# (low, high, step): steps land readings exactly on many band and NEWS2 boundaries.
RANGES = {
    "spo2": (80, 100, 0.5),
    "pulse_rate": (35, 140, 1),
    "systolic": (85, 230, 1),
    "diastolic": (50, 125, 1),
    "mean_arterial_pressure": (60, 140, 1),
    "glucose": (40, 620, 1),
    "body_temperature": (34.5, 40.0, 0.1),
    "body_weight": (76, 84, 0.1),
    "respiratory_rate": (6, 30, 1),
}


def value_of(metric: str):
    low, high, step = RANGES[metric]
    return st.integers(0, round((high - low) / step)).map(lambda k: round(low + k * step, 1))


def readings_of(metric: str):
    # Quarter-hour times up to 10 days back and a little into the future; repeats are allowed.
    when = st.integers(-8, 10 * 96).map(lambda k: NOW - k * 900)
    reading = st.tuples(when, value_of(metric), st.just(True))
    unreliable = st.tuples(when, value_of(metric), st.just(False))
    return st.lists(st.one_of(reading, reading, reading, unreliable), max_size=14)


def patient():
    return st.fixed_dictionaries({}, optional={m: readings_of(m) for m in METRICS})


@st.composite
def rule_override(draw, rule) -> RuleOverride:
    change: dict = {}
    if draw(st.booleans()):
        shift = draw(st.sampled_from([-2.0, -1.0, 1.0, 2.0]))
        bands = [b.model_copy(update={"value": b.value + shift}) for b in rule.bands]
        if len(bands) > 1 and draw(st.booleans()):
            bands.pop(draw(st.integers(0, len(bands) - 1)))
        change["bands"] = tuple(bands)
    if draw(st.booleans()):
        change["clear_margin"] = draw(st.sampled_from([0.0, 0.5, 3.0]))
    if rule.kind == "score":
        change["spo2_scale"] = draw(st.sampled_from([1, 2]))
        change["supplemental_oxygen"] = draw(st.booleans())
    if draw(st.integers(0, 9)) == 0:
        change["enabled"] = False
    return RuleOverride(**change)


@st.composite
def cohorts(draw):
    protocol = PROTOCOLS[draw(st.sampled_from(sorted(PROTOCOLS)))]
    patients = draw(st.lists(patient(), min_size=1, max_size=8))
    overrides = {}
    for index in range(len(patients)):
        if draw(st.integers(0, 2)) == 0:
            rules = draw(st.lists(st.sampled_from(protocol.rules), max_size=2))
            overrides[index] = PatientOverride(rules={r.key: draw(rule_override(r)) for r in rules})
    now = NOW - draw(st.integers(0, 3)) * 5400
    # Enrolments of every age around the missing-data rules' due times, or not known.
    started = [draw(st.sampled_from([NO_TIME, NOW - 86400, NOW - 12 * 3600, NOW - 9 * 86400]))
               - draw(st.sampled_from([0, 60, 3600])) for _ in patients]  # fmt: skip
    return protocol, patients, overrides, now, [max(s, NO_TIME) for s in started]


def near_a_threshold(rule, value: float) -> bool:
    """Sums in another order may differ in the last bit exactly at a threshold."""
    edges = [b.value + s * rule.clear_margin for b in rule.bands for s in (-1, 0, 1)]
    return any(math.isclose(value, e, rel_tol=1e-9, abs_tol=1e-9) for e in edges)


def check(protocol: Protocol, patients, overrides, now, started=None) -> None:
    started = started or [NO_TIME] * len(patients)
    compiled = compile_protocol(protocol, len(patients), overrides, np.array(started))
    results = evaluate(compiled, windows_from_patients(patients, list(METRICS)), now)
    for index, readings in enumerate(patients):
        own = apply_override(protocol, overrides.get(index))
        expected = evaluate_patient(own, readings, now, started[index])
        for key, result in results.items():
            e = expected[key]
            got = (
                int(result.level[index]),
                int(result.hold_level[index]),
                result.reason_of(index),
            )
            where = f"patient {index} rule {key}: {got} vs {e}"
            if got != (e.level, e.hold_level, e.reason):
                assert near_a_threshold(own.rule(key), e.value), where
            assert int(result.at[index]) == e.at, where
            # The readings a confirmation counts: exact, being times and band membership.
            run = (None, NO_TIME) if result.streaks is None else result.streaks.of(index)
            assert run == (e.run, e.broken_at), where
            value = float(result.value[index])
            if math.isnan(e.value):
                assert math.isnan(value), where
            else:
                assert math.isclose(value, e.value, rel_tol=1e-9, abs_tol=1e-9), where


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohorts())
def test_vectorised_equals_reference(case):
    check(*case)


def test_dense_random_cohort_all_protocols():
    """A larger cohort than hypothesis draws, with plenty of readings per patient."""
    rng = np.random.default_rng(7)
    patients = []
    for _ in range(150):
        readings = {}
        for metric, (low, high, step) in RANGES.items():
            n = int(rng.integers(0, 30))
            t = NOW - rng.integers(-4, 10 * 96, n) * 900
            v = np.round(low + rng.integers(0, round((high - low) / step) + 1, n) * step, 1)
            ok = rng.random(n) > 0.1
            readings[metric] = list(zip(t.tolist(), v.tolist(), ok.tolist(), strict=True))
        patients.append(readings)
    scale_2 = PatientOverride(rules={"news2_partial": RuleOverride(spo2_scale=2)})
    started = (NOW - rng.integers(0, 10 * 96, 150) * 900).tolist()
    for protocol in PROTOCOLS.values():
        has_score = any(r.kind == "score" for r in protocol.rules)
        overrides = {i: scale_2 for i in range(0, 150, 7)} if has_score else {}
        check(protocol, patients, overrides, NOW, started)
