"""The evidence of findings made by the real evaluator over the shipped protocols."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.evaluate import evaluate
from alerts.evidence import evidence_of
from alerts.protocol import Band, PatientOverride, RuleOverride, load_protocols
from alerts.tables import compile_protocol
from alerts.windows import Reading, windows_from_patients
from telemon.findings import (
    Evidence,
    Mean,
    Missing,
    Parameter,
    Score,
    Threshold,
    Trend,
    evidence_json,
    parse_evidence,
)
from telemon.metrics import METRICS

H, D = 3600, 86400
NOW = 1_767_225_600 + 10 * D + 9 * H  # 2026-01-11 09:00 UTC, 10:00 in Rome
ROME = ZoneInfo("Europe/Rome")
PROTOCOLS = load_protocols()


def at(hours_ago: float, value: float, reliable: bool = True) -> Reading:
    return (NOW - int(hours_ago * H), value, reliable)


def utc(hours_ago: float) -> datetime:
    return datetime.fromtimestamp(NOW - int(hours_ago * H), UTC)


def local(day: int, hour: int) -> int:
    """Epoch seconds of 2026-01-<day> at ``hour``:00 in Rome."""
    return int(datetime(2026, 1, day, hour, tzinfo=ROME).timestamp())


def findings(
    protocol: str,
    *patients: Mapping[str, Sequence[Reading]],
    overrides: Mapping[int, PatientOverride] | None = None,
) -> list[dict[str, Evidence | None]]:
    """Per patient, every rule's evidence from one evaluation of the whole cohort at NOW."""
    compiled = compile_protocol(PROTOCOLS[protocol], len(patients), overrides)
    results = evaluate(compiled, windows_from_patients(patients, list(METRICS)), NOW)
    return [
        {
            rule.key: evidence_of(rule, results[rule.key], p, protocol=protocol, now=NOW)
            for rule in compiled.rules
        }
        for p in range(len(patients))
    ]


def test_red_spo2_confirmed_by_two_readings():
    [patient] = findings("covid19_home_oximetry", {"spo2": [at(20, 97), at(0.5, 91), at(0.2, 90)]})
    assert patient["spo2_low"] == Threshold(
        rule="spo2_low",
        protocol="covid19_home_oximetry",
        level=2,
        at=utc(0.2),
        metric="spo2",
        value=90,
        values={"spo2": 90},
        op="<=",
        threshold=92,
        confirmed_by=2,
        confirm_span_s=1080,
    )


def test_confirmation_counts_the_readings_in_the_findings_own_band():
    # 94 and 93 are amber; the two readings at 92 and below, the second one stored twice (two
    # gateways relayed it), make the red finding: two readings, 30 minutes apart.
    spo2 = [at(3, 97), at(2, 94), at(1.5, 93), at(1, 92), at(0.5, 91), at(0.5, 91)]
    [red] = findings("covid19_home_oximetry", {"spo2": spo2})
    evidence = red["spo2_low"]
    assert isinstance(evidence, Threshold)
    assert (evidence.level, evidence.confirmed_by, evidence.confirm_span_s) == (2, 2, 1800)
    # Unreliable readings are no confirmation either.
    [one] = findings("covid19_home_oximetry", {"spo2": [at(1, 90, False), at(0.5, 91)]})
    assert (one["spo2_low"].confirmed_by, one["spo2_low"].confirm_span_s) == (1, 0)


@pytest.mark.parametrize(
    ("systolic", "diastolic", "metric", "value", "threshold"),
    [(185, 100, "systolic", 185, 180), (170, 112, "diastolic", 112, 110)],
)
def test_severe_bp_names_the_pressure_that_crossed_and_keeps_both(
    systolic, diastolic, metric, value, threshold
):
    [patient] = findings(
        "hypertension", {"systolic": [at(1, systolic)], "diastolic": [at(1, diastolic)]}
    )
    assert patient["bp_severe"] == Threshold(
        rule="bp_severe",
        protocol="hypertension",
        level=2,
        at=utc(1),
        metric=metric,
        value=value,
        values={"systolic": systolic, "diastolic": diastolic},
        op=">=",
        threshold=threshold,
    )


def test_override_gives_the_patients_own_threshold():
    # A patient whose usual SpO2 is low: the GP moves the bands down for them alone.
    own = PatientOverride(
        rules={
            "spo2_low": RuleOverride(
                bands=(
                    Band(level="amber", op="<=", value=90),
                    Band(level="red", op="<=", value=88),
                )
            )
        }
    )
    readings = {"spo2": [at(0.5, 89), at(0.2, 89)]}
    default, overridden = findings("covid19_home_oximetry", readings, readings, overrides={1: own})
    assert (default["spo2_low"].level, default["spo2_low"].threshold) == (2, 92)
    assert (overridden["spo2_low"].level, overridden["spo2_low"].threshold) == (1, 90)
    assert overridden["spo2_low"].op == "<="


def test_partial_news2_names_three_of_five_parameters_with_their_age():
    [patient] = findings(
        "covid19_home_oximetry",
        {
            "spo2": [at(2, 93)],
            "pulse_rate": [at(3, 112)],
            "body_temperature": [at(7, 36.8), at(5, 39.2)],
        },
    )
    assert patient["news2_partial"] == Score(
        rule="news2_partial",
        protocol="covid19_home_oximetry",
        level=1,
        at=utc(2),
        total=6,
        on="total",
        op=">=",
        threshold=5,
        parameters=(
            Parameter(metric="spo2", value=93, points=2, age_s=2 * H),
            Parameter(metric="pulse_rate", value=112, points=2, age_s=3 * H),
            Parameter(metric="body_temperature", value=39.2, points=2, age_s=5 * H),
        ),
        of=5,
        min_parameters=3,
    )


def test_news2_single_parameter_band_on_scale_2_with_oxygen():
    oxygen = PatientOverride(rules={"news2_partial": RuleOverride(supplemental_oxygen=True)})
    [patient] = findings(
        "copd",
        {"spo2": [at(1, 90)], "systolic": [at(1, 125)], "pulse_rate": [at(1, 35)]},
        overrides={0: oxygen},
    )
    # Scale 2 on oxygen: 90 % scores 0; pulse 35 scores 3; oxygen adds 2: total 5 (amber) and
    # one parameter at 3 (amber): the earlier channel, the total, sets the band.
    evidence = patient["news2_partial"]
    assert isinstance(evidence, Score)
    assert (evidence.total, evidence.on, evidence.threshold, evidence.level) == (5, "total", 5, 1)
    assert (evidence.spo2_scale, evidence.supplemental_oxygen) == (2, True)
    assert [(p.metric, p.points) for p in evidence.parameters] == [
        ("spo2", 0),
        ("systolic", 0),
        ("pulse_rate", 3),
    ]


def test_news2_on_one_parameter_scoring_three():
    [patient] = findings(
        "covid19_home_oximetry",
        {"spo2": [at(1, 91)], "systolic": [at(1, 125)], "pulse_rate": [at(1, 80)]},
    )
    evidence = patient["news2_partial"]
    assert isinstance(evidence, Score)
    assert (evidence.total, evidence.on, evidence.op, evidence.threshold) == (
        3,
        "max_parameter",
        ">=",
        3,
    )


def test_never_measured_and_stale():
    never, stale = findings("covid19_home_oximetry", {}, {"spo2": [at(22, 96)]})
    rule = PROTOCOLS["covid19_home_oximetry"].rule("spo2_not_measuring")
    assert never["spo2_not_measuring"] == Missing(
        rule="spo2_not_measuring",
        protocol="covid19_home_oximetry",
        level=2,
        at=utc(0),
        metric="spo2",
        hours=None,
        op=">",
        threshold=36,
        expected_every_s=rule.expected_every,
    )
    assert rule.expected_every == 8 * H
    evidence = stale["spo2_not_measuring"]
    assert isinstance(evidence, Missing)
    assert (evidence.level, evidence.hours, evidence.threshold) == (1, 22.0, 20)


def test_weight_gain_compares_two_weighings():
    rule = PROTOCOLS["heart_failure"].rule("weight_gain")
    weights = [at(71, 80.25), at(47, 80.5), at(23, 81.75), at(1, 82.5)]
    [patient] = findings("heart_failure", {"body_weight": weights})
    assert patient["weight_gain"] == Trend(
        rule="weight_gain",
        protocol="heart_failure",
        level=1,
        at=utc(1),
        metric="body_weight",
        change=2.25,
        window_s=rule.window,
        method="delta",
        points=4,
        span_s=70 * H,
        op=">",
        threshold=2.0,
        first_value=80.25,
        last_value=82.5,
    )


@pytest.mark.parametrize("protocol", ["covid19_home_oximetry", "copd"])
def test_fitted_spo2_fall(protocol):
    # A steady fall of 1 point every 6 h: least squares and Theil-Sen both read -4 per 24 h.
    rule = PROTOCOLS[protocol].rule("spo2_falling")
    spo2 = [at(20, 95), at(14, 94), at(8, 93), at(2, 92)]
    evidence = findings(protocol, {"spo2": spo2})[0]["spo2_falling"]
    assert isinstance(evidence, Trend)
    assert evidence.change == pytest.approx(-4.0)
    assert evidence.model_dump(exclude={"change"}) == {
        "rule": "spo2_falling",
        "protocol": protocol,
        "level": 1,
        "at": utc(2),
        "kind": "trend",
        "metric": "spo2",
        "window_s": 24 * H,
        "method": rule.method,
        "points": 4,
        "span_s": 18 * H,
        "op": "<=",
        "threshold": -3.0,
        "first_value": None,
        "last_value": None,
    }


def home_bp_series() -> dict[str, list[Reading]]:
    """Mornings and evenings from 6 to 11 January at 142/88, the first day (discarded) high."""
    systolic = [(local(6, 8), 170, True)]
    diastolic = [(local(6, 8), 100, True)]
    for day in range(7, 12):
        for hour in (8, 20) if day < 11 else (8,):  # NOW is the 11th at 10:00
            systolic.append((local(day, hour), 142, True))
            diastolic.append((local(day, hour), 88, True))
    return {"systolic": systolic, "diastolic": diastolic}


def test_home_bp_mean_gives_both_means_and_thresholds():
    [patient] = findings("hypertension", home_bp_series())
    assert patient["home_bp_mean"] == Mean(
        rule="home_bp_mean",
        protocol="hypertension",
        level=1,
        at=datetime.fromtimestamp(local(11, 8), UTC),
        metric="systolic",
        means={"systolic": 142, "diastolic": 88},
        op=">=",
        thresholds={"systolic": 135, "diastolic": 85},
        days=7,
        days_measured=5,
    )


def test_no_evidence_in_range_or_without_data():
    [patient] = findings("covid19_home_oximetry", {"spo2": [at(1, 97), at(0.5, 98)]})
    assert patient["spo2_low"] is None  # in range
    assert patient["news2_partial"] is None  # one parameter of the three needed: not scored
    assert patient["spo2_falling"] is None  # too few points


def test_an_alert_held_by_the_clear_margin_rests_on_its_own_band():
    # Red, then 94.5: in range for the bands but within the clear margin (1) of amber's 94,
    # so the open alert is downgraded to amber, not cleared.
    protocol = PROTOCOLS["covid19_home_oximetry"]
    compiled = compile_protocol(protocol, 1)
    rule = compiled.rule("spo2_low")
    windows = windows_from_patients([{"spo2": [at(1, 91), at(0.5, 94.5)]}], list(METRICS))
    result = evaluate(compiled, windows, NOW)["spo2_low"]
    assert (int(result.level[0]), int(result.hold_level[0])) == (0, 1)
    assert evidence_of(rule, result, 0, protocol=protocol.key, now=NOW) is None
    held = evidence_of(rule, result, 0, protocol=protocol.key, now=NOW, level=1)
    assert isinstance(held, Threshold)
    assert (held.level, held.value, held.op, held.threshold, held.at) == (
        1,
        94.5,
        "<=",
        94,
        utc(0.5),
    )


def test_evidence_round_trips_through_json():
    covid, never = findings(
        "covid19_home_oximetry",
        {"spo2": [at(20, 95), at(14, 94), at(8, 93), at(2.5, 92), at(2, 92)], "pulse_rate": [
            at(1, 112)], "body_temperature": [at(1, 39.2)]},
        {},
    )  # fmt: skip
    [hf] = findings("heart_failure", {"body_weight": [at(47, 80.0), at(1, 82.5)]})
    [bp] = findings("hypertension", home_bp_series())
    made = [*covid.values(), never["spo2_not_measuring"], hf["weight_gain"], bp["home_bp_mean"]]
    kinds = [e.kind for e in made if e is not None]
    assert kinds == ["threshold", "trend", "score", "missing_data", "trend", "aggregate"]
    for evidence in made:
        if evidence is None:
            continue
        stored = evidence_json(evidence)
        assert parse_evidence(stored) == evidence
        assert parse_evidence(json.dumps(stored)) == evidence
