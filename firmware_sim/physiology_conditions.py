"""Chronic conditions and what they mean for a simulated patient: usual vitals and device kit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from firmware_sim.physiology_noise import normal
from telemon.device_kinds import DeviceKind


class Condition(StrEnum):
    COPD = "copd"
    HEART_FAILURE = "heart_failure"
    HYPERTENSION = "hypertension"
    DIABETES = "diabetes"
    COVID = "covid"


@dataclass(frozen=True, slots=True)
class Baseline:
    """A vital's usual level across patients (``mean`` ± ``between_sd``) and how much it wanders
    within one patient over hours and days (``within_sd``)."""

    mean: float
    between_sd: float
    within_sd: float


# Adults without the conditions below; canonical units of telemon.metrics. Mean arterial
# pressure is derived from systolic and diastolic, never drawn.
GENERAL_BASELINES: MappingProxyType[str, Baseline] = MappingProxyType(
    {
        "spo2": Baseline(97.0, 0.8, 0.3),
        "pulse_rate": Baseline(72.0, 7.0, 4.0),
        "systolic": Baseline(122.0, 8.0, 5.0),
        "diastolic": Baseline(76.0, 5.0, 3.5),
        "glucose": Baseline(92.0, 5.0, 5.0),
        "body_temperature": Baseline(36.6, 0.2, 0.12),
        "body_weight": Baseline(74.0, 12.0, 0.2),
        "respiratory_rate": Baseline(15.0, 1.5, 1.0),
    }
)

# Applied in this order, so a later condition wins where two disagree: COPD comes last
# because its chronically low saturation (target 88–92 %, NEWS2 scale 2) overrides any other.
CONDITION_BASELINES: MappingProxyType[Condition, Mapping[str, Baseline]] = MappingProxyType(
    {
        Condition.HEART_FAILURE: {
            "pulse_rate": Baseline(78.0, 8.0, 4.0),
            "body_weight": Baseline(82.0, 14.0, 0.2),
            "spo2": Baseline(96.5, 0.5, 0.3),
        },
        Condition.HYPERTENSION: {
            # Treated, reasonably controlled: the crisis scenario provides the loss of control.
            "systolic": Baseline(128.0, 6.0, 5.0),
            "diastolic": Baseline(80.0, 4.0, 3.5),
            "body_weight": Baseline(84.0, 14.0, 0.2),
        },
        Condition.DIABETES: {
            "glucose": Baseline(140.0, 12.0, 15.0),
            "body_weight": Baseline(88.0, 15.0, 0.2),
        },
        Condition.COVID: {
            "pulse_rate": Baseline(80.0, 8.0, 4.0),
            "body_temperature": Baseline(36.9, 0.25, 0.15),
            "respiratory_rate": Baseline(17.0, 1.5, 1.0),
        },
        Condition.COPD: {
            "spo2": Baseline(90.0, 1.0, 0.5),
            "pulse_rate": Baseline(84.0, 7.0, 4.0),
            "respiratory_rate": Baseline(19.0, 1.5, 1.2),
        },
    }
)

DEVICE_KITS: MappingProxyType[Condition, frozenset[DeviceKind]] = MappingProxyType(
    {
        Condition.COPD: frozenset(
            {
                DeviceKind.PULSE_OXIMETER,
                DeviceKind.THERMOMETER,
                DeviceKind.BLOOD_PRESSURE,
            }
        ),
        Condition.HEART_FAILURE: frozenset(
            {
                DeviceKind.WEIGHT_SCALE,
                DeviceKind.BLOOD_PRESSURE,
                DeviceKind.PULSE_OXIMETER,
            }
        ),
        Condition.HYPERTENSION: frozenset({DeviceKind.BLOOD_PRESSURE}),
        Condition.DIABETES: frozenset({DeviceKind.GLUCOMETER, DeviceKind.BLOOD_PRESSURE}),
        Condition.COVID: frozenset({DeviceKind.PULSE_OXIMETER, DeviceKind.THERMOMETER}),
    }
)

# Patients differ, but not beyond what the condition implies: two standard deviations.
_BETWEEN_PATIENT_LIMIT = 2.0


def baselines_for(conditions: Iterable[Condition]) -> MappingProxyType[str, Baseline]:
    present = set(conditions)
    merged = dict(GENERAL_BASELINES)
    for condition, overrides in CONDITION_BASELINES.items():
        if condition in present:
            merged.update(overrides)
    return MappingProxyType(merged)


@lru_cache(maxsize=256)
def draw_baseline(conditions: frozenset[Condition], seed: int) -> MappingProxyType[str, float]:
    """The usual level of each vital for the patient that ``seed`` identifies."""
    return MappingProxyType(
        {
            metric: b.mean
            + b.between_sd * normal(seed, "baseline", metric, limit=_BETWEEN_PATIENT_LIMIT)
            for metric, b in baselines_for(conditions).items()
        }
    )


def device_kit(conditions: Iterable[Condition]) -> frozenset[DeviceKind]:
    kit: set[DeviceKind] = set()
    for condition in conditions:
        kit |= DEVICE_KITS[condition]
    return frozenset(kit)
