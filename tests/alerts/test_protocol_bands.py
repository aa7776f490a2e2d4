"""Each shipped protocol's bands at and around every boundary, checked both ways."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alerts.protocol import PatientOverride, RuleOverride

H, D = 3600, 86400
NOW = 1_767_225_600 + 10 * D + 9 * H  # 2026-01-11 09:00 UTC, 10:00 in Rome
ROME = ZoneInfo("Europe/Rome")


def at(hours_ago: float, value: float, reliable: bool = True) -> tuple[int, float, bool]:
    return (NOW - int(hours_ago * H), value, reliable)


def local(day: int, hour: int, minute: int = 0) -> int:
    """Epoch seconds of 2026-01-<day> hour:minute in Rome."""
    return int(datetime(2026, 1, day, hour, minute, tzinfo=ROME).timestamp())


@pytest.mark.parametrize(
    ("spo2", "level"), [(96, 0), (95, 0), (94.5, 0), (94, 1), (93, 1), (92.5, 1), (92, 2), (85, 2)]
)
def test_covid_oximetry_spo2_bands(one, spo2, level):
    # Bands read as written in the source ("93-94", "<=92"): a value between 94 and 95 is green.
    outcome = one("covid19_home_oximetry", spo2=[at(1, spo2)])["spo2_low"]
    assert outcome.level == level
    assert outcome.value == spo2
    assert outcome.reason == {0: "ok", 1: "spo2:amber", 2: "spo2:red"}[level]


def test_threshold_uses_latest_reliable_reading_within_lookback(one):
    spo2 = [at(30, 80), at(3, 91), at(2, 97), at(0.5, 88, reliable=False)]
    outcome = one("covid19_home_oximetry", spo2=spo2)["spo2_low"]
    assert (outcome.level, outcome.value, outcome.at) == (0, 97, NOW - 2 * H)
    stale = one("covid19_home_oximetry", spo2=[at(25, 80)])["spo2_low"]
    assert (stale.level, stale.reason) == (-1, "no_data")
    future = one("covid19_home_oximetry", spo2=[at(-1, 80)])["spo2_low"]
    assert future.level == -1


@pytest.mark.parametrize(
    ("spo2", "level"), [(92, 0), (88, 0), (87.5, 0), (87, 1), (84, 1), (83.5, 1), (83, 2)]
)
def test_copd_spo2_target_88_92(one, spo2, level):
    assert one("copd", spo2=[at(1, spo2)])["spo2_low"].level == level


@pytest.mark.parametrize(
    ("glucose", "level", "reason"),
    [(71, 0, "ok"), (70, 0, "ok"), (69.9, 1, "glucose:amber"), (54, 1, "glucose:amber"),
     (53.9, 2, "glucose:red"), (30, 2, "glucose:red")],
)  # fmt: skip
def test_ada_hypoglycaemia_levels(one, glucose, level, reason):
    outcome = one("diabetes", glucose=[at(1, glucose)])["glucose_low"]
    assert (outcome.level, outcome.reason) == (level, reason)


@pytest.mark.parametrize(
    ("glucose", "level"), [(180, 0), (250, 0), (250.5, 1), (600, 1), (600.5, 2)]
)
def test_hyperglycaemia_levels(one, glucose, level):
    assert one("diabetes", glucose=[at(1, glucose)])["glucose_high"].level == level


@pytest.mark.parametrize(
    ("systolic", "diastolic", "level", "reason"),
    [(179, 109, 0, "ok"), (180, 100, 2, "systolic:red"), (150, 110, 2, "diastolic:red"),
     (200, 120, 2, "systolic:red")],
)  # fmt: skip
def test_severe_single_bp_reading(one, systolic, diastolic, level, reason):
    outcome = one("hypertension", systolic=[at(1, systolic)], diastolic=[at(1, diastolic)])[
        "bp_severe"
    ]
    assert (outcome.level, outcome.reason) == (level, reason)
    assert outcome.value == (diastolic if reason.startswith("diastolic") else systolic)


def _bp_series(morning: float, evening: float, first_day: float) -> list[tuple[int, float, bool]]:
    """Jan 4 (day 1, discarded) to Jan 10, morning 07:30 and evening 20:00 local."""
    series = [(local(4, 7, 30), first_day, True), (local(4, 20), first_day, True)]
    for day in range(5, 11):
        series += [(local(day, 7, 30), morning, True), (local(day, 20), evening, True)]
    return series


@pytest.mark.parametrize(
    ("morning", "evening", "level"),
    [(134, 135.8, 0), (134, 136, 1), (135, 135, 1), (149, 150.8, 1), (150, 150, 2)],
)
def test_esh_home_bp_mean_systolic_with_day_one_discarded(one, morning, evening, level):
    systolic = _bp_series(morning, evening, first_day=220)  # day 1 would push any mean up
    outcome = one("hypertension", systolic=systolic, diastolic=_bp_series(70, 70, 70))
    result = outcome["home_bp_mean"]
    assert result.level == level
    assert result.value == pytest.approx((morning + evening) / 2)


def test_esh_mean_of_exactly_135_is_amber_whatever_the_float_sum_leaves(one):
    # These ten average exactly 135.0 mmHg, but added in floating point they give
    # 134.99999999999997: means are settled to a millionth of a unit before the bands.
    readings = [132.1, 138.8, 140.2, 128.6, 136.6, 128.6, 138.1, 132.6, 140.3, 134.1]
    # Jan 5 is day 1 of the seven (discarded); then Jan 6 to 10, morning and evening.
    days = [(local(5, 7, 30), 220.0, True), (local(5, 20), 220.0, True)]
    times = [local(day, hour) for day in range(6, 11) for hour in (8, 20)]
    systolic = days + [(t, v, True) for t, v in zip(times, readings, strict=True)]
    outcome = one("hypertension", systolic=systolic, diastolic=_bp_series(70, 70, 70))
    assert (outcome["home_bp_mean"].level, outcome["home_bp_mean"].value) == (1, 135.0)


@pytest.mark.parametrize(("diastolic", "level"), [(84.9, 0), (85, 1), (94, 1), (95, 2)])
def test_esh_home_bp_mean_diastolic(one, diastolic, level):
    outcome = one(
        "hypertension",
        systolic=_bp_series(120, 120, 120),
        diastolic=_bp_series(diastolic, diastolic, 60),
    )["home_bp_mean"]
    assert outcome.level == level
    assert outcome.reason == ("ok" if level == 0 else f"diastolic:{('', 'amber', 'red')[level]}")


def test_esh_mean_ignores_midday_readings_and_needs_three_days(one):
    midday = [(local(day, 14), 200.0, True) for day in range(5, 11)]
    systolic = sorted(_bp_series(120, 120, 120) + midday)
    outcome = one("hypertension", systolic=systolic)["home_bp_mean"]
    assert (outcome.level, outcome.value) == (0, 120)
    # Day 1 plus two days: two days are left after the discard, fewer than the minimum three.
    short = [(local(day, 8), 160.0, True) for day in (8, 9, 10)]
    assert one("hypertension", systolic=short)["home_bp_mean"].level == -1
    enough = [(local(day, 8), 160.0, True) for day in (7, 8, 9, 10)]
    assert one("hypertension", systolic=enough)["home_bp_mean"].level == 2


def test_esh_window_is_the_last_seven_local_days(one):
    old = [(local(day, 8), 180.0, True) for day in range(1, 5)]  # before Jan 5: outside
    recent = [(local(day, 8), 125.0, True) for day in range(5, 12)]
    outcome = one("hypertension", systolic=old + recent)["home_bp_mean"]
    assert (outcome.level, outcome.value) == (0, 125)


@pytest.mark.parametrize(("gain", "level"), [(1.5, 0), (2.0, 0), (2.1, 1), (3.5, 1)])
def test_heart_failure_weight_gain_over_three_days(one, gain, level):
    weights = [at(70, 80.0), at(48, 80.4), at(24, 80.0 + gain / 2), at(1, 80.0 + gain)]
    outcome = one("heart_failure", body_weight=weights)["weight_gain"]
    assert outcome.level == level
    assert outcome.value == pytest.approx(gain)


def test_heart_failure_weight_gain_needs_a_day_between_readings(one):
    same_morning = [at(3, 80.0), at(1, 83.0)]
    assert one("heart_failure", body_weight=same_morning)["weight_gain"].level == -1
    older_than_window = [at(80, 77.0), at(1, 80.0)]  # the 80 h reading falls outside 3 days
    assert one("heart_failure", body_weight=older_than_window)["weight_gain"].level == -1


@pytest.mark.parametrize(
    ("hours", "level"), [(19.9, 0), (20, 0), (20.1, 1), (36, 1), (36.1, 2), (None, 2)]
)
def test_missing_spo2_is_a_centre_task(one, protocols, hours, level):
    spo2 = [] if hours is None else [at(hours, 97)]
    outcome = one("covid19_home_oximetry", spo2=spo2)["spo2_not_measuring"]
    assert outcome.level == level
    assert outcome.at == NOW
    assert protocols["covid19_home_oximetry"].rule("spo2_not_measuring").routing == "centre_task"


def test_missing_data_ignores_unreliable_readings(one):
    outcome = one("diabetes", glucose=[at(80, 100), at(1, 100, reliable=False)])
    assert outcome["glucose_not_measuring"].level == 1
    assert outcome["glucose_not_measuring"].value == pytest.approx(80)


def test_copd_override_on_covid_protocol(one):
    copd_like = PatientOverride(
        rules={
            "spo2_low": RuleOverride(
                bands=(
                    {"level": "amber", "op": "<=", "value": 87},
                    {"level": "red", "op": "<=", "value": 83},
                ),
                reason="known COPD, usual SpO2 89 %",
            ),
            "news2_partial": RuleOverride(spo2_scale=2),
        }
    )
    readings = {"spo2": [at(1, 89)], "pulse_rate": [at(1, 80)], "systolic": [at(1, 130)]}
    plain = one("covid19_home_oximetry", **readings)
    overridden = one("covid19_home_oximetry", override=copd_like, **readings)
    assert (plain["spo2_low"].level, overridden["spo2_low"].level) == (2, 0)
    assert (plain["news2_partial"].value, overridden["news2_partial"].value) == (3, 0)
