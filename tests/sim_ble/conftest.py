"""Fixtures for the simulated devices: a fresh bumble link per test, devices on it, and the
patient model whose measurements they deliver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from bumble.link import LocalLink

from firmware_sim.devices import SimulatedDevice, make_device
from firmware_sim.physiology import PatientModel, PatientProfile, SimulatedMeasurement
from firmware_sim.physiology_conditions import Condition
from firmware_sim.scenarios import get_scenario
from telemon.device_kinds import DeviceKind

ENROLLED_AT = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)

DeviceFactory = Callable[..., Awaitable[SimulatedDevice]]


@pytest_asyncio.fixture(loop_scope="function")
async def make(link: LocalLink) -> AsyncIterator[DeviceFactory]:
    """Start a device of a kind (``make(kind, **options)``); each is stopped after the test."""
    started: list[SimulatedDevice] = []

    async def start(kind: DeviceKind, device_class: type | None = None, **options):
        if device_class is not None:
            device = device_class(link, **options)
        else:
            device = make_device(kind, link, **options)
        started.append(device)
        await device.start()
        return device

    yield start
    for device in started:
        await device.stop()


def patient_model(scenario: str = "stable", seed: int = 7) -> PatientModel:
    conditions = frozenset({Condition.HEART_FAILURE, Condition.DIABETES, Condition.HYPERTENSION})
    profile = PatientProfile(
        f"patient-{seed}", conditions, ENROLLED_AT, devices=frozenset(DeviceKind)
    )
    return PatientModel(profile, get_scenario(scenario), seed)


def readings_of(
    kind: DeviceKind, count: int, scenario: str = "stable", *, flagged: bool = False
) -> list[SimulatedMeasurement]:
    """The first ``count`` measurements the model makes with ``kind`` (only flagged ones if
    ``flagged``)."""
    model = patient_model(scenario)
    found = []
    for measurement in model.measurements(model.origin, model.origin + timedelta(days=21)):
        if measurement.device is kind and (measurement.flags or not flagged):
            found.append(measurement)
            if len(found) == count:
                break
    assert len(found) == count
    return found


@pytest.fixture
def model() -> PatientModel:
    return patient_model()
