"""The scenario catalogue only speaks the shared vocabulary of telemon.metrics and flags."""

from __future__ import annotations

import pytest

from firmware_sim.physiology_conditions import CONDITION_BASELINES, GENERAL_BASELINES
from firmware_sim.physiology_devices import DEVICES
from firmware_sim.physiology_rhythm import CIRCADIAN, VARIABILITY_TIMESCALE
from firmware_sim.physiology_schedule import SCHEDULE
from firmware_sim.scenarios import SCENARIOS, Fault, UnknownScenarioError, get_scenario
from telemon.device_kinds import DeviceKind
from telemon.flags import FLAGS
from telemon.metrics import METRICS

MODELLED = set(GENERAL_BASELINES)


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=list(SCENARIOS))
def test_scenarios_use_known_metrics_flags_and_devices(scenario):
    assert scenario.description
    assert scenario.days >= 1
    for drift in scenario.drifts:
        assert drift.metric in MODELLED
        assert drift.ramp_days > 0
    for episode in scenario.episodes:
        assert set(episode.targets) <= MODELLED
        for metric, target in episode.targets.items():
            assert METRICS[metric].is_plausible(target)
        assert 0 <= episode.day < scenario.days
    for fault in scenario.faults:
        assert fault.key
        assert set(fault.flags) <= set(FLAGS)
        assert 0.0 <= fault.probability <= 1.0
        assert set(fault.bias) <= set(DEVICES[fault.device].metrics)
        session_names = {s.name for s in SCHEDULE[fault.device]}
        assert {session for _, session in fault.certain_on} <= session_names
    for outage in scenario.outages:
        assert outage.duration.total_seconds() > 0


def test_every_scenario_but_stable_changes_something():
    for name, s in SCENARIOS.items():
        changes = s.drifts or s.episodes or s.faults or s.outages or s.battery
        assert bool(changes) == (name != "stable"), name
        quiet = {"stable", "stable_artefacts", "sensor_problems", "low_battery"}
        assert (s.onset_day is None) == (name in quiet)


def test_modelled_metrics_all_have_a_rhythm_and_a_timescale():
    assert set(CIRCADIAN) == MODELLED == set(VARIABILITY_TIMESCALE)
    assert set(METRICS) >= MODELLED
    for overrides in CONDITION_BASELINES.values():
        assert set(overrides) <= MODELLED


def test_every_device_has_channels_and_a_schedule():
    for kind in DeviceKind:
        assert set(DEVICES[kind].metrics) <= MODELLED
        assert SCHEDULE[kind]


def test_unknown_scenario_names_the_known_ones():
    with pytest.raises(UnknownScenarioError, match="covid_deterioration"):
        get_scenario("covid")


def test_a_fault_the_device_does_not_flag_needs_a_name():
    with pytest.raises(ValueError, match="name"):
        Fault(DeviceKind.PULSE_OXIMETER, (), probability=0.1)

    assert Fault(DeviceKind.PULSE_OXIMETER, (), probability=0.1, name="cold_finger").key == (
        "cold_finger"
    )
    assert Fault(DeviceKind.PULSE_OXIMETER, ("body_movement",), 0.1).key == "body_movement"
