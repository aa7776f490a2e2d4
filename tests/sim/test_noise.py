from __future__ import annotations

import statistics

from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.physiology_noise import normal, uniform, value_noise

seeds = st.integers(min_value=0, max_value=2**64 - 1)


@given(seed=seeds, key=st.text(max_size=20), index=st.integers())
def test_draws_are_pure_and_bounded(seed, key, index):
    u = uniform(seed, key, index)

    assert u == uniform(seed, key, index)
    assert 0.0 < u < 1.0
    assert abs(normal(seed, key, index, limit=2.5)) <= 2.5


def test_keys_separate_streams():
    assert uniform(1, "spo2", 5) != uniform(1, "spo2", 6)
    assert uniform(1, "spo2", 5) != uniform(1, "pulse_rate", 5)
    assert uniform(1, "spo2", 5) != uniform(2, "spo2", 5)


def test_normal_has_unit_scale():
    draws = [normal(7, "check", i) for i in range(20_000)]

    assert abs(statistics.fmean(draws)) < 0.03
    assert 0.95 < statistics.stdev(draws) < 1.03


@given(seed=seeds, seconds=st.floats(min_value=0, max_value=1e9))
def test_value_noise_is_continuous(seed, seconds):
    here = value_noise(seed, "s", seconds, 60.0)
    nearby = value_noise(seed, "s", seconds + 0.01, 60.0)

    assert abs(here) <= 3.0
    assert abs(nearby - here) < 0.01
