"""The alert-quality cohort and its ground truth. Pure: no database.

Patients follow the five care protocols in a fixed mix. Most are stable, with the artefacts of
everyday use (firmware_sim's ``stable_artefacts``); about one in eight deteriorates on the
scenario matching their protocol, enrolled on a staggered day so that the whole story fits in
the run. When a deterioration becomes clinically significant is read off the model's true,
noise-free vitals against the published criterion below, not off what any device reported.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import numpy as np

from alerts.protocol import COMPARE
from console.cohort import CARE_PLANS
from firmware_sim.home import PROTOCOL_CONDITIONS
from firmware_sim.physiology import PatientModel, PatientProfile
from firmware_sim.physiology_noise import uniform
from firmware_sim.scenarios import get_scenario
from telemon.device_kinds import DeviceKind

STABLE = "stable_artefacts"
DETERIORATING_SHARE = 0.12
# Share of the cohort per protocol (as bench/alerts.py), and the scenario of those deteriorating.
PROTOCOL_MIX: Mapping[str, tuple[float, str]] = MappingProxyType(
    {
        "covid19_home_oximetry": (0.35, "covid_deterioration"),
        "copd": (0.20, "copd_exacerbation"),
        "heart_failure": (0.15, "heart_failure_decompensation"),
        "hypertension": (0.20, "hypertensive_crisis"),
        "diabetes": (0.10, "hypoglycaemia"),
    }
)
# Adherence is drawn per patient in this range: a missed session now and then, as in real use.
ADHERENCE = (0.85, 0.99)
# Nurses enrol patients during the working day (local time).
ENROLMENT_HOURS = (9.0, 17.0)
# A stable patient is enrolled early enough to be watched at least this long.
STABLE_MIN_DAYS = 7
ZONE = ZoneInfo("Europe/Rome")


@dataclass(frozen=True, slots=True)
class Criterion:
    """When a vital, as the body has it, says the deterioration matters clinically.

    The value compared is the vital itself, its rise over ``change_over``, or its mean over the
    trailing ``mean_over``; it is sampled every ``grid``, which bounds the error on the time.
    """

    metric: str
    op: str
    value: float
    source: str
    change_over: timedelta | None = None
    mean_over: timedelta | None = None
    grid: timedelta = timedelta(minutes=15)

    @property
    def lookbehind(self) -> timedelta:
        return self.change_over or self.mean_over or timedelta(0)


SIGNIFICANCE: Mapping[str, tuple[Criterion, ...]] = MappingProxyType(
    {
        "covid_deterioration": (
            Criterion(
                "spo2",
                "<=",
                94,
                "NHS COVID Oximetry @home: SpO2 93-94 % asks for a clinical review by the GP",
            ),
        ),
        "copd_exacerbation": (
            Criterion(
                "spo2",
                "<=",
                87,
                "RCP NEWS2 scale 2: below the prescribed 88-92 % target (86-87 % scores 1)",
            ),
        ),
        "heart_failure_decompensation": (
            Criterion(
                "body_weight",
                ">",
                2.0,
                "ESC/HFA: weight up by more than 2 kg in 3 days (heartfailurematters.org)",
                change_over=timedelta(days=3),
                grid=timedelta(minutes=30),
            ),
        ),
        "hypertensive_crisis": (
            Criterion(
                "systolic",
                ">=",
                180,
                "NICE / ESH: severe hypertension, systolic >= 180 mmHg",
                grid=timedelta(minutes=10),
            ),
            Criterion(
                "diastolic",
                ">=",
                110,
                "NICE / ESH: severe hypertension, diastolic >= 110 mmHg",
                grid=timedelta(minutes=10),
            ),
            Criterion(
                "systolic",
                ">=",
                135,
                "ESH: home blood pressure >= 135/85 mmHg (here the day's mean systolic)",
                mean_over=timedelta(days=1),
                grid=timedelta(minutes=30),
            ),
            Criterion(
                "diastolic",
                ">=",
                85,
                "ESH: home blood pressure >= 135/85 mmHg (here the day's mean diastolic)",
                mean_over=timedelta(days=1),
                grid=timedelta(minutes=30),
            ),
        ),
        "hypoglycaemia": (
            Criterion(
                "glucose",
                "<",
                70,
                "ADA Standards of Care, table 6.3: level 1 hypoglycaemia < 70 mg/dL",
                grid=timedelta(minutes=5),
            ),
        ),
    }
)


@dataclass(frozen=True, slots=True)
class BenchPatient:
    code: str
    protocol: str
    model: PatientModel

    @property
    def scenario(self) -> str:
        return self.model.scenario.name

    @property
    def deteriorating(self) -> bool:
        return self.scenario != STABLE

    @property
    def enrolled_at(self) -> datetime:
        return self.model.profile.enrolled_at

    @property
    def onset_at(self) -> datetime | None:
        """When the deterioration starts, by the scenario (never before enrolment)."""
        day = self.model.scenario.onset_day
        if day is None or not self.deteriorating:
            return None
        return max(self.model.origin + timedelta(days=day), self.enrolled_at)


def protocol_devices(protocol: str) -> frozenset[DeviceKind]:
    """The devices the demo's care plans give a patient on ``protocol`` (all of its plans)."""
    return frozenset(kind for key, _, kinds in CARE_PLANS if key == protocol for kind in kinds)


def cohort_counts(patients: int) -> dict[str, tuple[int, int]]:
    """Per protocol: (patients, of whom deteriorating). Every protocol present in a run big
    enough for it has at least one deterioration."""
    shares = [share for share, _ in PROTOCOL_MIX.values()]
    counts = [math.floor(share * patients) for share in shares]
    # Largest remainders first, so the counts add up to ``patients``.
    order = sorted(range(len(shares)), key=lambda i: -(shares[i] * patients - counts[i]))
    for i in order[: patients - sum(counts)]:
        counts[i] += 1
    return {
        key: (n, min(n, max(1, round(DETERIORATING_SHARE * n))) if n else 0)
        for key, n in zip(PROTOCOL_MIX, counts, strict=True)
    }


def build_cohort(patients: int, days: int, start: datetime, seed: int) -> list[BenchPatient]:
    """The cohort of a run of ``days`` from ``start``; the same for the same arguments."""
    cohort = []
    for key, (n, deteriorating) in cohort_counts(patients).items():
        scenario_of = PROTOCOL_MIX[key][1]
        for i in range(n):
            number = len(cohort)
            scenario = get_scenario(scenario_of if i < deteriorating else STABLE)
            story = scenario.days if i < deteriorating else STABLE_MIN_DAYS
            latest_day = max(0, days - story)
            day = math.floor(uniform(seed, "enrol-day", number) * (latest_day + 1))
            hours = ENROLMENT_HOURS[0] + uniform(seed, "enrol-hour", number) * (
                ENROLMENT_HOURS[1] - ENROLMENT_HOURS[0]
            )
            local_day = start.astimezone(ZONE).date() + timedelta(days=day)
            enrolled = datetime.combine(local_day, time(0), tzinfo=ZONE) + timedelta(hours=hours)
            adherence = ADHERENCE[0] + uniform(seed, "adherence", number) * (
                ADHERENCE[1] - ADHERENCE[0]
            )
            profile = PatientProfile(
                patient_id=f"Q{number + 1:05d}",
                conditions=frozenset({PROTOCOL_CONDITIONS[key]}),
                enrolled_at=enrolled.astimezone(UTC).replace(second=0, microsecond=0),
                devices=protocol_devices(key),
                adherence=round(adherence, 3),
            )
            model_seed = int(uniform(seed, "patient", number) * 2**62)
            cohort.append(
                BenchPatient(profile.patient_id, key, PatientModel(profile, scenario, model_seed))
            )
    return cohort


def criterion_series(
    model: PatientModel, criterion: Criterion, start: datetime, end: datetime
) -> tuple[list[datetime], np.ndarray]:
    """The compared value on the criterion's grid over [start, end], from true vitals."""
    step = criterion.grid
    behind = int(criterion.lookbehind / step)
    first = start - behind * step
    count = int((end - first) / step) + 1
    times = [first + k * step for k in range(count)]
    raw = np.array([model.vitals_at(t)[criterion.metric] for t in times])
    if criterion.change_over is not None:
        value = raw[behind:] - raw[: raw.size - behind]
    elif criterion.mean_over is not None:
        sums = np.concatenate(([0.0], np.cumsum(raw)))
        value = (sums[behind + 1 :] - sums[: sums.size - behind - 1]) / (behind + 1)
    else:
        value = raw
    return times[behind:], value


def significant_at(patient: BenchPatient, until: datetime) -> datetime | None:
    """The first time at or after the onset when any of the scenario's criteria holds, up to
    ``until`` and the end of the scenario's story; None if it never does."""
    onset = patient.onset_at
    if onset is None:
        return None
    end = min(until, patient.model.origin + timedelta(days=patient.model.scenario.days))
    return first_met(patient.model, SIGNIFICANCE[patient.scenario], onset, end)


def truly_above(patient: BenchPatient, until: datetime, grid: timedelta) -> datetime | None:
    """For a stable patient: the first time their true vitals met the criteria of their
    protocol's deterioration anyway (a usual level close to a threshold), on a coarser grid;
    alerts about them then are not false. None if they never did."""
    criteria = [
        replace(c, grid=max(c.grid, grid)) for c in SIGNIFICANCE[PROTOCOL_MIX[patient.protocol][1]]
    ]
    return first_met(patient.model, criteria, patient.enrolled_at, until)


def first_met(
    model: PatientModel, criteria: Sequence[Criterion], start: datetime, end: datetime
) -> datetime | None:
    """The first grid time in [start, end] at which any of ``criteria`` holds."""
    found: list[datetime] = []
    for criterion in criteria:
        if end < start:
            continue
        times, values = criterion_series(model, criterion, start, end)
        compare = COMPARE[criterion.op]
        hits = [
            t for t, v in zip(times, values.tolist(), strict=True) if compare(v, criterion.value)
        ]
        found.extend(hits[:1])
    return min(found, default=None)


def cohort_mix(cohort: Sequence[BenchPatient]) -> Counter[tuple[str, str]]:
    """How many patients follow each (protocol, scenario)."""
    return Counter((patient.protocol, patient.scenario) for patient in cohort)
