"""NEWS2 chart 1 (RCP 2017) at every boundary, and the partial score rule."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.protocol import PatientOverride, RuleOverride
from alerts.scores import news2_points

H = 3600
NOW = 1_767_225_600 + 10 * 86400 + 9 * H

# (value, points) straight from the chart rows, both sides of every boundary.
CHART = {
    "respiratory_rate": [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)],
    "systolic": [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
    "pulse_rate": [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2),
                   (130, 2), (131, 3)],
    "body_temperature": [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1),
                         (39.0, 1), (39.1, 2)],
}  # fmt: skip
SPO2_SCALE_1 = [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
SPO2_SCALE_2_AIR = [(83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (99, 0)]
SPO2_SCALE_2_O2 = [(83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 1),
                   (94, 1), (95, 2), (96, 2), (97, 3)]  # fmt: skip


@pytest.mark.parametrize(
    ("metric", "value", "points"), [(m, v, p) for m, rows in CHART.items() for v, p in rows]
)
def test_chart_rows(metric, value, points):
    assert news2_points(metric, np.array([value]))[0] == points


@pytest.mark.parametrize(
    ("scale", "oxygen", "rows"),
    [(1, False, SPO2_SCALE_1), (1, True, SPO2_SCALE_1), (2, False, SPO2_SCALE_2_AIR),
     (2, True, SPO2_SCALE_2_O2)],
)  # fmt: skip
def test_spo2_scales(scale, oxygen, rows):
    values = np.array([v for v, _ in rows], dtype=float)
    assert news2_points("spo2", values, scale, oxygen).tolist() == [p for _, p in rows]


def test_scale_varies_per_patient_and_nan_means_not_measured():
    values = np.array([93.0, 93.0, np.nan])
    points = news2_points("spo2", values, np.array([1, 2, 2]), np.array([False, True, False]))
    assert points.tolist() == [2, 1, -1]


def vitals(rr=None, spo2=None, systolic=None, pulse=None, temp=None) -> dict:
    chosen = {
        "respiratory_rate": rr,
        "spo2": spo2,
        "systolic": systolic,
        "pulse_rate": pulse,
        "body_temperature": temp,
    }
    return {m: [(NOW - H, float(v), True)] for m, v in chosen.items() if v is not None}


@pytest.mark.parametrize(
    ("readings", "total", "level", "reason"),
    [
        (vitals(spo2=97, systolic=130, pulse=70, temp=36.8), 0, 0, "ok"),
        (vitals(spo2=95, systolic=105, pulse=95, temp=38.2), 4, 0, "ok"),
        (vitals(spo2=95, systolic=105, pulse=112, temp=38.2), 5, 1, "total:amber"),
        (vitals(rr=22, spo2=93, systolic=105, pulse=95), 6, 1, "total:amber"),
        (vitals(rr=22, spo2=93, systolic=100, pulse=95), 7, 2, "total:red"),
        # A single parameter scoring 3 is amber even with a low total.
        (vitals(spo2=97, systolic=130, pulse=131), 3, 1, "max_parameter:amber"),
    ],
)
def test_partial_news2_triggers(one, readings, total, level, reason):
    outcome = one("covid19_home_oximetry", **readings)["news2_partial"]
    assert (outcome.level, outcome.reason) == (level, reason)
    assert outcome.value == (total if reason != "max_parameter:amber" else 3)


def test_partial_news2_needs_three_parameters(one):
    assert one("covid19_home_oximetry", **vitals(spo2=80, pulse=150))["news2_partial"].level == -1
    stale = vitals(spo2=80, pulse=150, systolic=85)
    stale["systolic"] = [(NOW - 7 * H, 85.0, True)]  # outside the 6 h lookback
    assert one("covid19_home_oximetry", **stale)["news2_partial"].level == -1


def test_copd_scale_2_and_home_oxygen_override(one):
    readings = vitals(spo2=89, systolic=130, pulse=80, temp=37)
    assert one("copd", **readings)["news2_partial"].value == 0
    assert one("covid19_home_oximetry", **readings)["news2_partial"].value == 3
    on_oxygen = PatientOverride(rules={"news2_partial": RuleOverride(supplemental_oxygen=True)})
    assert one("copd", override=on_oxygen, **readings)["news2_partial"].value == 2
    high_on_oxygen = vitals(spo2=97, systolic=130, pulse=80, temp=37)
    outcome = one("copd", override=on_oxygen, **high_on_oxygen)["news2_partial"]
    assert (outcome.value, outcome.reason) == (5, "total:amber")
