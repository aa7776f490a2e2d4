"""Each scenario crosses the clinical thresholds it is built for, at the right pace, and the
stable scenario crosses none of them (docs/clinical-references.md#simulated-patients)."""

from __future__ import annotations

import statistics
from collections import defaultdict

import pytest

from firmware_sim.physiology import PatientModel, SimulatedMeasurement
from firmware_sim.physiology_conditions import Condition
from telemon.device_kinds import DeviceKind

SEEDS = range(1, 9)
OXIMETER = DeviceKind.PULSE_OXIMETER
CUFF = DeviceKind.BLOOD_PRESSURE


def series(
    model: PatientModel, stream: list[SimulatedMeasurement], device: DeviceKind, metric: str
) -> list[tuple[float, float]]:
    """(scenario day, value) of every valid reading of ``metric`` by ``device``."""
    return [
        (model.day_number(m.measured_at), m.values[metric])
        for m in stream
        if m.device is device and metric in m.values
    ]


def by_day(points: list[tuple[float, float]]) -> dict[int, list[float]]:
    days: dict[int, list[float]] = defaultdict(list)
    for day, value in points:
        days[int(day)].append(value)
    return days


def median_over(points: list[tuple[float, float]], first_day: float, last_day: float) -> float:
    return statistics.median(v for d, v in points if first_day <= d < last_day)


def weight_gains_within_3_days(points: list[tuple[float, float]]) -> list[float]:
    # Morning weights compared by calendar day, as a patient's diary would.
    return [
        later - earlier
        for i, (d0, earlier) in enumerate(points)
        for d1, later in points[i + 1 :]
        if int(d1) - int(d0) <= 3
    ]


# --- COVID: NHS CO@h bands ≥95 / 93–94 / ≤92 ------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_covid_deterioration_falls_through_amber_to_red(make_model, run, seed):
    model = make_model("covid_deterioration", seed)
    spo2 = series(model, run(model), OXIMETER, "spo2")

    assert median_over(spo2, 0, 2) >= 95  # starts green
    assert min(v for d, v in spo2 if d < 2.0) > 92
    first_red = min(d for d, v in spo2 if v <= 92)
    assert 3.0 <= first_red <= 8.0  # "slow": days, not hours
    # The day before the first red reading the patient was amber or green, not already red.
    assert median_over(spo2, first_red - 1.0, first_red) >= 93


@pytest.mark.parametrize("seed", SEEDS)
def test_covid_deterioration_raises_pulse_and_temperature(make_model, run, seed):
    model = make_model("covid_deterioration", seed)
    stream = run(model)
    pulse = series(model, stream, OXIMETER, "pulse_rate")
    temperature = series(model, stream, DeviceKind.THERMOMETER, "body_temperature")

    assert median_over(pulse, 7, 14) - median_over(pulse, 0, 2) >= 10
    assert max(v for _, v in temperature) >= 38.1  # NEWS2 scores temperature from 38.1


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "conditions",
    [frozenset({Condition.COVID}), frozenset({Condition.HEART_FAILURE, Condition.DIABETES})],
    ids=["covid", "heart_failure+diabetes"],
)
def test_stable_spo2_never_reaches_red(make_model, run, seed, conditions):
    model = make_model("stable", seed, conditions)
    spo2 = series(model, run(model, days=7), OXIMETER, "spo2")

    assert len(spo2) >= 15
    assert min(v for _, v in spo2) > 92


# --- COPD: chronic 88–92 %, NEWS2 scale 2 ----------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_copd_baseline_sits_in_its_target_range(make_model, run, seed):
    model = make_model("stable", seed, frozenset({Condition.COPD}))
    spo2 = series(model, run(model, days=10), OXIMETER, "spo2")

    for values in by_day(spo2).values():
        assert 86 <= statistics.median(values) <= 94


@pytest.mark.parametrize("seed", SEEDS)
def test_copd_exacerbation_falls_below_the_chronic_baseline(make_model, run, seed):
    model = make_model("copd_exacerbation", seed)
    stable = make_model("stable", seed, frozenset({Condition.COPD}))
    spo2 = series(model, run(model), OXIMETER, "spo2")
    usual = series(stable, run(stable, days=10), OXIMETER, "spo2")

    assert median_over(spo2, 0, 3) == median_over(usual, 0, 3)  # same patient before onset
    assert median_over(usual, 6, 10) - median_over(spo2, 6, 10) >= 4
    assert min(v for _, v in spo2) <= 85  # NEWS2 scale 2 scores ≤85 with 2 or more


# --- Heart failure: > 2 kg in 3 days ---------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_heart_failure_decompensation_gains_over_2kg_in_3_days(make_model, run, seed):
    model = make_model("heart_failure_decompensation", seed)
    stable = make_model("stable", seed, frozenset({Condition.HEART_FAILURE}))
    stream, usual = run(model), run(stable, days=10)
    weight = series(model, stream, DeviceKind.WEIGHT_SCALE, "body_weight")

    assert max(weight_gains_within_3_days(weight)) > 2.0
    pulse_rise = median_over(series(model, stream, CUFF, "pulse_rate"), 6, 10) - median_over(
        series(stable, usual, CUFF, "pulse_rate"), 6, 10
    )
    spo2_fall = median_over(series(stable, usual, OXIMETER, "spo2"), 6, 10) - median_over(
        series(model, stream, OXIMETER, "spo2"), 6, 10
    )
    assert pulse_rise >= 8
    assert 1 <= spo2_fall <= 4  # "a little"


@pytest.mark.parametrize("seed", SEEDS)
def test_stable_heart_failure_weight_never_gains_2kg_in_3_days(make_model, run, seed):
    model = make_model("stable", seed, frozenset({Condition.HEART_FAILURE}))
    weight = series(model, run(model, days=14), DeviceKind.WEIGHT_SCALE, "body_weight")

    assert len(weight) >= 10
    assert max(weight_gains_within_3_days(weight)) <= 2.0


# --- Hypertension: home mean ≥135/85, severe ≥180/110 ----------------------------------------


def home_bp_mean(model: PatientModel, stream: list[SimulatedMeasurement]) -> tuple[float, float]:
    # NICE protocol: discard day 1, average the rest of the week.
    systolic = [v for d, v in series(model, stream, CUFF, "systolic") if 1 <= d < 8]
    diastolic = [v for d, v in series(model, stream, CUFF, "diastolic") if 1 <= d < 8]
    return statistics.fmean(systolic), statistics.fmean(diastolic)


@pytest.mark.parametrize("seed", SEEDS)
def test_hypertensive_crisis_home_mean_and_severe_readings(make_model, run, seed):
    model = make_model("hypertensive_crisis", seed)
    stream = run(model)

    systolic, diastolic = home_bp_mean(model, stream)
    assert systolic > 135
    assert diastolic > 85
    severe = [
        m for m in stream if m.values.get("systolic", 0) >= 180 and m.values["diastolic"] >= 110
    ]
    assert {int(model.day_number(m.measured_at)) for m in severe} == {3, 5}


@pytest.mark.parametrize("seed", SEEDS)
def test_stable_hypertension_has_no_severe_reading(make_model, run, seed):
    model = make_model("stable", seed, frozenset({Condition.HYPERTENSION}))
    stream = run(model, days=8)

    assert not [m for m in stream if m.values.get("systolic", 0) >= 180]
    assert not [m for m in stream if m.values.get("diastolic", 0) >= 110]
    assert home_bp_mean(model, stream)[0] < 145


# --- Glucose: ADA level 1 <70, level 2 <54 mg/dL ---------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_hypoglycaemia_reaches_level_1_and_level_2(make_model, run, seed):
    model = make_model("hypoglycaemia", seed)
    glucose = series(model, run(model), DeviceKind.GLUCOMETER, "glucose")

    level_1_days = {int(d) for d, v in glucose if 54 <= v < 70}
    level_2_days = {int(d) for d, v in glucose if v < 54}
    assert len(level_1_days) >= 1
    assert level_2_days >= {3, 6}


@pytest.mark.parametrize("seed", SEEDS)
def test_hypoglycaemia_recheck_shows_recovery(make_model, run, seed):
    model = make_model("hypoglycaemia", seed)
    checks = [m for m in run(model) if m.session == "symptom_check"]

    assert len(checks) == 8  # four episodes, checked and re-checked
    first = statistics.fmean(m.values["glucose"] for m in checks[::2])
    recheck = statistics.fmean(m.values["glucose"] for m in checks[1::2])
    assert recheck - first >= 10


@pytest.mark.parametrize("seed", SEEDS)
def test_stable_diabetes_is_never_level_2(make_model, run, seed):
    model = make_model("stable", seed, frozenset({Condition.DIABETES}))
    glucose = series(model, run(model, days=14), DeviceKind.GLUCOMETER, "glucose")

    assert len(glucose) >= 30
    assert min(v for _, v in glucose) >= 54
