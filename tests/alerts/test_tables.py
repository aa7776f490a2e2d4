"""Compiling a protocol with per-patient overrides into arrays."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.evaluate import evaluate
from alerts.protocol import PatientOverride, RuleOverride
from alerts.tables import compile_protocol
from alerts.windows import windows_from_patients

NOW = 1_767_225_600


def test_overrides_become_per_patient_arrays(protocols):
    copd_like = PatientOverride(
        rules={
            "spo2_low": RuleOverride(
                bands=({"level": "red", "op": "<", "value": 85},), confirm={"count": 1}
            ),
            "news2_partial": RuleOverride(spo2_scale=2, supplemental_oxygen=True),
            "spo2_falling": RuleOverride(enabled=False),
        }
    )
    compiled = compile_protocol(protocols["covid19_home_oximetry"], 4, {1: copd_like, 3: copd_like})
    spo2_low = compiled.rule("spo2_low")
    by_slot = {(s.on, s.level, s.op): s.threshold for s in spo2_low.slots}
    np.testing.assert_array_equal(by_slot["spo2", 1, "<="], [94, np.nan, 94, np.nan])
    np.testing.assert_array_equal(by_slot["spo2", 2, "<="], [92, np.nan, 92, np.nan])
    np.testing.assert_array_equal(by_slot["spo2", 2, "<"], [np.nan, 85, np.nan, 85])
    assert spo2_low.confirm_count.tolist() == [2, 1, 2, 1]
    news2 = compiled.rule("news2_partial")
    assert news2.spo2_scale.tolist() == [1, 2, 1, 2]
    assert news2.supplemental_oxygen.tolist() == [False, True, False, True]
    assert compiled.rule("spo2_falling").enabled.tolist() == [True, False, True, False]

    readings = [{"spo2": [(NOW - 60, 90.0, True)]}] * 4
    results = evaluate(compiled, windows_from_patients(readings, ["spo2"]), NOW)
    assert results["spo2_low"].level.tolist() == [2, 0, 2, 0]
    assert results["spo2_falling"].reason.tolist() == ["no_data", "disabled"] * 2


def test_override_index_must_be_a_patient(protocols):
    with pytest.raises(IndexError, match="patient index 5"):
        compile_protocol(protocols["diabetes"], 5, {5: PatientOverride()})


def test_windows_must_match_the_cohort(protocols):
    compiled = compile_protocol(protocols["diabetes"], 3)
    windows = windows_from_patients([{}, {}], ["glucose"])
    with pytest.raises(ValueError, match="2 patients, expected 3"):
        evaluate(compiled, windows, NOW)
