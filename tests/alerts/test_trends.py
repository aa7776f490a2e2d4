"""Trend estimators against independent implementations, and the trend rules' boundaries."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from alerts.trends import deltas, ols_slopes, theil_sen_slopes
from alerts.windows import MetricWindow

H = 3600
NOW = 1_767_225_600 + 10 * 86400 + 9 * H


def random_window(rng: np.random.Generator, n_patients: int) -> MetricWindow:
    counts = rng.integers(0, 12, n_patients)
    patient = np.repeat(np.arange(n_patients), counts)
    t = NOW - rng.integers(0, 3 * 86400, patient.size)
    v = rng.normal(95, 2, patient.size).round(1)
    reliable = rng.random(patient.size) > 0.15
    return MetricWindow.from_arrays(patient, t, v, reliable, n_patients=n_patients)


def segments(w: MetricWindow, mask: np.ndarray):
    for p in range(w.n_patients):
        sl = slice(w.offsets[p], w.offsets[p + 1])
        yield p, w.t[sl][mask[sl]], w.v[sl][mask[sl]]


def test_ols_matches_polyfit_per_patient():
    w = random_window(np.random.default_rng(1), 300)
    slopes = ols_slopes(w.offsets, w.t, w.v, w.reliable, NOW)
    for p, t, v in segments(w, w.reliable):
        if len(t) >= 2 and np.ptp(t) > 0:
            assert slopes[p] == pytest.approx(np.polyfit(t - NOW, v, 1)[0], rel=1e-7, abs=1e-12)
        else:
            assert np.isnan(slopes[p])


def test_ols_is_exact_on_a_line_at_epoch_scale():
    t = np.array([NOW - 2 * H, NOW - H, NOW], dtype=np.int64)
    w = MetricWindow(np.array([0, 3]), t, 97 - (t - t[0]) * (1.5 / H))
    assert ols_slopes(w.offsets, w.t, w.v, w.reliable, NOW)[0] * H == pytest.approx(-1.5)


@pytest.mark.parametrize("max_points", [4, 32])
def test_theil_sen_matches_scipy(max_points):
    w = random_window(np.random.default_rng(2), 200)
    slopes = theil_sen_slopes(w.offsets, w.t, w.v, w.reliable, NOW, max_points, chunk_cells=5000)
    for p, t, v in segments(w, w.reliable):
        t, v = t[-max_points:], v[-max_points:]
        if len(t) >= 2 and np.ptp(t) > 0:
            expected = stats.theilslopes(v, (t - NOW).astype(float)).slope
            assert slopes[p] == pytest.approx(expected, rel=1e-9, abs=1e-15)
        else:
            assert np.isnan(slopes[p])


def test_theil_sen_shrugs_off_an_outlier_that_drags_ols():
    t = NOW - np.arange(6)[::-1] * 4 * H
    v = np.array([96.0, 96, 96, 96, 96, 80])  # last reading: probe slipped
    w = MetricWindow(np.array([0, 6]), t, v)
    assert theil_sen_slopes(w.offsets, w.t, w.v, w.reliable, NOW)[0] == 0
    assert ols_slopes(w.offsets, w.t, w.v, w.reliable, NOW)[0] < 0


def test_deltas_use_first_and_last_selected_reading():
    w = MetricWindow(np.array([0, 3, 3, 4]), np.array([1, 2, 3, 5]), np.array([80.0, 81, 83, 70]))
    mask = np.array([True, True, False, True])
    change, first, last = deltas(w.offsets, w.v, mask)
    assert change[0] == 1 and np.isnan(change[1]) and np.isnan(change[2])
    assert first.tolist() == [0, -1, 3] and last.tolist() == [1, -1, 3]


def spo2(*points: tuple[float, float]) -> list[tuple[int, float, bool]]:
    return [(NOW - int(h * H), v, True) for h, v in points]


@pytest.mark.parametrize(("drop", "level"), [(0, 0), (2.9, 0), (3.0, 1), (5, 1)])
def test_spo2_falling_by_three_points_in_24h(one, drop, level):
    # A straight line losing ``drop`` points per 24 h, inside the window (now - 24 h, now].
    readings = spo2(*[(h, 97 - drop * (23 - h) / 24) for h in (23, 11.5, 0)])
    outcome = one("covid19_home_oximetry", spo2=readings)["spo2_falling"]
    assert outcome.level == level
    assert outcome.value == pytest.approx(-drop, abs=1e-9)


def test_spo2_trend_needs_points_and_span(one):
    two_points = spo2((20, 97), (0, 90))
    assert one("covid19_home_oximetry", spo2=two_points)["spo2_falling"].level == -1
    bunched = spo2((3, 97), (2, 95), (0, 90))  # under the 8 h minimum span
    assert one("covid19_home_oximetry", spo2=bunched)["spo2_falling"].level == -1


def test_copd_trend_is_robust(one):
    readings = spo2((22, 90), (18, 90), (14, 90), (10, 90), (6, 90), (2, 80))
    assert one("copd", spo2=readings)["spo2_falling"].level == 0
    falling = spo2((22, 92), (18, 91), (14, 90), (10, 89), (6, 88), (2, 87))
    assert one("copd", spo2=falling)["spo2_falling"].level == 1
