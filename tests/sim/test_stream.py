"""The measurement stream: replayable, plausible, at device resolution, on schedule."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_sim.physiology import PatientModel, PatientProfile
from firmware_sim.physiology_conditions import Condition
from firmware_sim.physiology_devices import DEVICES
from firmware_sim.physiology_schedule import SCHEDULE, OximeterMode
from firmware_sim.scenarios import SCENARIOS, get_scenario
from telemon.device_kinds import DeviceKind
from telemon.metrics import METRICS

ALL_CONDITIONS = frozenset(Condition) - {Condition.COPD}


def fingerprint(model: PatientModel, days: int) -> list[tuple]:
    return [
        (m.device, m.measured_at, tuple(sorted(m.values.items())), m.flags, m.battery_level)
        for m in model.measurements(model.origin, model.origin + timedelta(days=days))
    ]


# --- determinism ----------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_seed_replays_the_same_stream(make_model, scenario):
    first = fingerprint(make_model(scenario, 11), 7)
    again = fingerprint(make_model(scenario, 11), 7)

    assert first
    assert first == again


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_different_seeds_give_different_patients(make_model, scenario):
    a, b = make_model(scenario, 11), make_model(scenario, 12)

    assert a.baseline != b.baseline
    assert fingerprint(a, 7) != fingerprint(b, 7)


def test_any_window_gives_the_same_readings(make_model, run):
    model = make_model("sensor_problems", 5)
    whole = run(model, days=7)
    cut = model.origin + timedelta(days=3, hours=7, minutes=31)
    first = list(model.measurements(model.origin, cut))
    rest = list(model.measurements(cut, model.origin + timedelta(days=7)))

    assert first + rest == whole
    assert first and rest


def test_stream_is_in_time_order_within_the_window(make_model, run):
    model = make_model("stable", 3, frozenset({Condition.HEART_FAILURE, Condition.DIABETES}))
    stream = run(model, days=7)
    times = [m.measured_at for m in stream]

    assert times == sorted(times)
    assert times[0] >= model.profile.enrolled_at  # no reading before the devices arrive
    assert times[-1] < model.origin + timedelta(days=7)


def test_replay_does_not_depend_on_the_process(make_model):
    """Python salts str hashes per process: the stream must not depend on them."""
    script = (
        "from datetime import timedelta\n"
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from conftest import _make_model\n"
        "m = _make_model('covid_deterioration', 4)\n"
        "for r in m.measurements(m.origin, m.origin + timedelta(days=3)):\n"
        "    print(r.measured_at.isoformat(), sorted(r.values.items()))\n"
    )
    here = str(Path(__file__).parent)
    model = make_model("covid_deterioration", 4)
    expected = "".join(
        f"{r.measured_at.isoformat()} {sorted(r.values.items())}\n"
        for r in model.measurements(model.origin, model.origin + timedelta(days=3))
    )
    for hash_seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script, here],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": hash_seed, "PATH": ""},
            cwd=Path(__file__).parents[2],
        )
        assert out.stdout == expected


def test_vitals_at_is_a_pure_function_of_time(make_model):
    model = make_model("covid_deterioration", 2)
    t = model.origin + timedelta(days=4, hours=3, seconds=17)

    assert model.vitals_at(t) == model.vitals_at(t)
    assert model.vitals_at(t) == make_model("covid_deterioration", 2).vitals_at(t)
    assert model.vitals_at(t) != model.vitals_at(t + timedelta(minutes=30))


def test_naive_times_are_refused(make_model):
    model = make_model("stable", 1)

    with pytest.raises(ValueError, match="timezone-aware"):
        model.vitals_at(datetime(2025, 3, 4, 8, 0))


def test_scenario_must_fit_the_patient():
    profile = PatientProfile("p", frozenset({Condition.HYPERTENSION}), datetime.now(UTC))

    with pytest.raises(ValueError, match="covid"):
        PatientModel(profile, get_scenario("covid_deterioration"), 1)


# --- plausibility and resolution ------------------------------------------------------------


def on_resolution(value: float, resolution: float) -> bool:
    steps = value / resolution
    return math.isclose(steps, round(steps), abs_tol=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63 - 1), scenario=st.sampled_from(sorted(SCENARIOS))
)
def test_readings_are_plausible_and_at_device_resolution(seed, scenario):
    chosen = get_scenario(scenario)
    conditions = chosen.conditions or ALL_CONDITIONS
    profile = PatientProfile("p", frozenset(conditions), datetime(2025, 6, 1, tzinfo=UTC))
    model = PatientModel(profile, chosen, seed)

    for m in model.measurements(model.origin, model.origin + timedelta(days=chosen.days)):
        resolution = {c.metric: c.resolution for c in DEVICES[m.device].channels}
        resolution["mean_arterial_pressure"] = 1.0
        assert set(m.values) <= set(resolution)
        for metric, value in m.values.items():
            assert METRICS[metric].is_plausible(value), (metric, value)
            assert on_resolution(value, resolution[metric]), (metric, value)
        if "systolic" in m.values:
            assert m.values["diastolic"] < m.values["mean_arterial_pressure"]
            assert m.values["mean_arterial_pressure"] < m.values["systolic"]
        assert 0 <= m.battery_level <= 100
        assert m.measured_at.tzinfo is UTC


# --- schedule -------------------------------------------------------------------------------


def readings_per_local_day(model: PatientModel, days: int) -> Counter:
    stream = model.measurements(model.origin, model.origin + timedelta(days=days))
    zone = model.profile.zone
    return Counter((m.device, m.measured_at.astimezone(zone).date()) for m in stream)


EXPECTED_PER_DAY = {
    DeviceKind.PULSE_OXIMETER: 3,
    DeviceKind.BLOOD_PRESSURE: 4,  # two sessions of two readings
    DeviceKind.GLUCOMETER: 3,
    DeviceKind.THERMOMETER: 2,
    DeviceKind.WEIGHT_SCALE: 1,
}


def test_a_fully_adherent_patient_follows_the_schedule_exactly(make_model):
    model = make_model("stable", 8, ALL_CONDITIONS, adherence=1.0)
    counts = readings_per_local_day(model, 8)
    first_full_day = model.origin.astimezone(model.profile.zone).date() + timedelta(days=1)

    for device, per_day in EXPECTED_PER_DAY.items():
        for n in range(1, 7):
            assert counts[(device, first_full_day + timedelta(days=n))] == per_day, device


@pytest.mark.parametrize("seed", range(1, 6))
def test_some_readings_are_missed(make_model, seed):
    model = make_model("stable", seed, ALL_CONDITIONS)
    counts = readings_per_local_day(model, 29)
    zone = model.profile.zone
    first_full_day = model.origin.astimezone(zone).date() + timedelta(days=1)
    days = [first_full_day + timedelta(days=n) for n in range(27)]

    planned = taken = 0
    for device, per_day in EXPECTED_PER_DAY.items():
        on_device = sum(counts[(device, day)] for day in days)
        assert 0.85 * per_day * len(days) <= on_device <= per_day * len(days), device
        planned += per_day * len(days)
        taken += on_device
    assert taken < planned


def test_sessions_happen_around_their_local_time_across_a_dst_change(make_model):
    # Europe/Rome moves to summer time on 30 March 2025: the scale is still used at ~07:15.
    model = make_model("stable", 4, frozenset({Condition.HEART_FAILURE}), adherence=1.0)
    zone = model.profile.zone
    start = datetime(2025, 3, 27, tzinfo=UTC)
    weighings = [
        m.measured_at.astimezone(zone)
        for m in model.measurements(start, start + timedelta(days=7))
        if m.device is DeviceKind.WEIGHT_SCALE
    ]
    session = SCHEDULE[DeviceKind.WEIGHT_SCALE][0]

    assert len(weighings) == 7
    assert {w.utcoffset() for w in weighings} == {timedelta(hours=1), timedelta(hours=2)}
    for w in weighings:
        minutes_off = (w.hour * 60 + w.minute) - (session.at.hour * 60 + session.at.minute)
        assert abs(minutes_off) <= session.jitter.total_seconds() / 60 + 1


def test_glucose_is_measured_before_meals(make_model, run):
    model = make_model("stable", 6, frozenset({Condition.DIABETES}))
    zone = model.profile.zone
    sessions = Counter(
        (m.session, m.measured_at.astimezone(zone).hour)
        for m in run(model, days=7)
        if m.device is DeviceKind.GLUCOMETER
    )

    assert {session for session, _ in sessions} == {
        "before_breakfast",
        "before_lunch",
        "before_dinner",
    }
    assert {hour for (session, hour) in sessions if session == "before_breakfast"} <= {7}


def test_blood_pressure_comes_in_pairs_a_minute_apart(make_model, run):
    model = make_model("stable", 2, frozenset({Condition.HYPERTENSION}), adherence=1.0)
    cuff = [m.measured_at for m in run(model, days=4)]
    gaps = [b - a for a, b in zip(cuff[::2], cuff[1::2], strict=True)]

    assert set(gaps) == {timedelta(minutes=1)}


def test_continuous_oximeter_samples_at_1_hz_while_worn(make_model):
    model = make_model(
        "stable", 3, frozenset({Condition.COPD}), oximeter_mode=OximeterMode.CONTINUOUS
    )
    zone = model.profile.zone
    night = datetime(2025, 3, 5, 23, 0, tzinfo=zone)
    samples = [
        m
        for m in model.measurements(night, night + timedelta(minutes=10))
        if m.device is DeviceKind.PULSE_OXIMETER
    ]

    assert len(samples) == 600
    assert {b.measured_at - a.measured_at for a, b in itertools.pairwise(samples)} == {
        timedelta(seconds=1)
    }
    assert {m.session for m in samples} == {"continuous"}
    # Averaged over seconds, the display moves by a point or so, it does not jump about.
    steps = [abs(b.values["spo2"] - a.values["spo2"]) for a, b in itertools.pairwise(samples)]
    assert max(steps) <= 1
    afternoon = datetime(2025, 3, 5, 15, 0, tzinfo=zone)
    day = model.measurements(afternoon, afternoon + timedelta(hours=2))
    assert not [m for m in day if m.device is DeviceKind.PULSE_OXIMETER]  # taken off by day


def test_reading_at_matches_the_stream(make_model, run):
    model = make_model("stable", 9, frozenset({Condition.COVID}))
    stream = run(model, days=3)

    for m in stream:
        assert model.reading_at(m.device, m.measured_at, m.session) == m


# --- daily rhythm ---------------------------------------------------------------------------


def mean_at_hour(model: PatientModel, metric: str, hour: int, days: int = 14) -> float:
    zone = model.profile.zone
    first = model.origin.astimezone(zone).date()
    return (
        sum(
            model.vitals_at(
                datetime.combine(first + timedelta(days=d), datetime.min.time(), zone)
                + timedelta(hours=hour)
            )[metric]
            for d in range(days)
        )
        / days
    )


@pytest.mark.parametrize(
    ("metric", "higher_hour", "lower_hour", "at_least"),
    [
        ("systolic", 16, 3, 8.0),
        ("diastolic", 16, 3, 5.0),
        ("pulse_rate", 15, 3, 7.0),
        ("body_temperature", 18, 5, 0.3),
        ("body_weight", 21, 7, 0.4),
    ],
)
def test_daily_rhythm(make_model, metric, higher_hour, lower_hour, at_least):
    model = make_model("stable", 7, ALL_CONDITIONS)

    difference = mean_at_hour(model, metric, higher_hour) - mean_at_hour(model, metric, lower_hour)
    assert difference >= at_least


# --- device trouble -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(1, 6))
def test_sensor_problems_are_flagged(make_model, run, seed):
    model = make_model("sensor_problems", seed)
    stream = run(model)
    flagged = Counter(flag for m in stream for flag in m.flags)

    assert {"sensor_unconnected_to_user", "cuff_too_loose", "body_movement"} <= set(flagged)
    for i, m in enumerate(stream):
        if "sensor_unconnected_to_user" in m.flags:
            assert not m.values  # finger out: no valid value
            retry = next(r for r in stream[i + 1 :] if r.device is m.device)
            assert retry.values and not retry.flags
            assert retry.measured_at - m.measured_at < timedelta(minutes=2)
        if "cuff_too_loose" in m.flags:
            assert {"systolic", "diastolic"} <= set(m.values)  # a value, but not to be trusted
    for fault in model.scenario.faults:
        for day, session in fault.certain_on:
            hit = [
                m
                for m in stream
                if m.device is fault.device
                and m.session == session
                and model.day_of(m.measured_at) == day
                and m.flags
            ]
            assert all(m.flags == fault.flags for m in hit)
            assert hit or model.profile.adherence < 1.0  # only a missed session escapes


@pytest.mark.parametrize("seed", range(1, 4))
def test_everyday_artefacts_are_silent_and_measured_again(make_model, run, seed):
    model = make_model("stable_artefacts", seed, frozenset({Condition.COVID}))
    stream = run(model, days=30)
    oximetry = [m for m in stream if m.device is DeviceKind.PULSE_OXIMETER]
    low = [
        (i, m)
        for i, m in enumerate(oximetry)
        if model.vitals_at(m.measured_at).spo2 - m.values["spo2"] >= 4.5
    ]

    assert low, "30 days of three readings a day show a few cold fingers"
    assert not [m for m in stream if m.flags]  # real devices do not notice
    for i, m in low:
        off = model.vitals_at(m.measured_at).spo2 - m.values["spo2"]
        assert 4.5 <= off <= 15.5
        again = oximetry[i + 1]
        assert again.measured_at - m.measured_at == timedelta(minutes=5)
        assert abs(model.vitals_at(again.measured_at).spo2 - again.values["spo2"]) < 3


def test_loose_cuff_reads_high(make_model, run):
    loose, fitted = [], []
    for seed in range(1, 9):
        for m in run(make_model("sensor_problems", seed)):
            if m.device is DeviceKind.BLOOD_PRESSURE:
                true = make_model("sensor_problems", seed).vitals_at(m.measured_at).systolic
                (loose if "cuff_too_loose" in m.flags else fitted).append(
                    m.values["systolic"] - true
                )

    assert sum(loose) / len(loose) - sum(fitted) / len(fitted) >= 6


@pytest.mark.parametrize("scenario", ["stable", "covid_deterioration", "hypoglycaemia"])
def test_without_trouble_there_are_no_trouble_flags(make_model, run, scenario):
    stream = run(make_model(scenario, 3))

    assert not [m for m in stream if m.flags]
    assert all(m.reachable and m.delivered_at == m.measured_at for m in stream)


def test_out_of_range_readings_are_stored_or_lost(make_model, run):
    model = make_model("out_of_range", 4, ALL_CONDITIONS)
    outage = model.scenario.outages[0]
    gone = model.local_instant(outage.day, outage.at)
    back = gone + outage.duration
    stream = run(model)
    unreachable = [m for m in stream if not m.reachable]

    assert {m.device for m in unreachable} == set(model.profile.device_kinds)
    for m in stream:
        assert m.reachable == (not gone <= m.measured_at < back)
        if m.reachable:
            assert m.delivered_at == m.measured_at
        elif DEVICES[m.device].stores_readings:
            assert m.delivered_at == back
        else:
            assert m.delivered_at is None
    assert model.is_reachable(DeviceKind.GLUCOMETER, back)
    assert not model.is_reachable(DeviceKind.GLUCOMETER, back - timedelta(seconds=1))


def test_low_battery_runs_down_below_10_percent(make_model, run):
    model = make_model("low_battery", 5, ALL_CONDITIONS)
    stream = run(model)

    for device in model.profile.device_kinds:
        levels = [m.battery_level for m in stream if m.device is device]
        assert levels == sorted(levels, reverse=True)
        assert levels[0] > 40
        assert levels[-1] < 10
    for m in stream:
        assert ("battery_low" in m.flags) == (m.battery_level < 10)


def test_batteries_last_in_the_stable_scenario(make_model, run):
    model = make_model("stable", 5, ALL_CONDITIONS)

    assert min(m.battery_level for m in run(model, days=14)) >= 45
