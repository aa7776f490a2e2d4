from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from firmware_sim.physiology import PatientModel, PatientProfile, SimulatedMeasurement
from firmware_sim.physiology_conditions import Condition
from firmware_sim.scenarios import get_scenario

ENROLLED_AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # a Monday, 10:00 in Rome


def _make_model(
    scenario: str,
    seed: int,
    conditions: frozenset[Condition] | None = None,
    **profile_options: object,
) -> PatientModel:
    chosen = get_scenario(scenario)
    if conditions is None:
        conditions = chosen.conditions or frozenset({Condition.HEART_FAILURE})
    profile = PatientProfile(f"patient-{seed}", conditions, ENROLLED_AT, **profile_options)
    return PatientModel(profile, chosen, seed)


def _run(model: PatientModel, days: float | None = None) -> list[SimulatedMeasurement]:
    """The whole stream from day 0 for ``days`` (the scenario's own length by default)."""
    span = timedelta(days=model.scenario.days if days is None else days)
    return list(model.measurements(model.origin, model.origin + span))


@pytest.fixture
def make_model() -> Callable[..., PatientModel]:
    return _make_model


@pytest.fixture
def run() -> Callable[..., list[SimulatedMeasurement]]:
    return _run
