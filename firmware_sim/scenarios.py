"""The scenario catalogue: how a simulated patient's days unfold, as data.

Days count from local midnight of the enrolment day (day 0). Each scenario is built to cross
the clinical thresholds it is about at a realistic pace: NHS CO@h SpO2 bands 95 / 93–94 / ≤92 %,
NEWS2, home BP 135/85 and ≥180/110, ADA hypoglycaemia <70 / <54 mg/dL, heart-failure weight
gain >2 kg in 3 days (docs/clinical-references.md#simulated-patients).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from types import MappingProxyType

from firmware_sim.physiology_conditions import Condition
from telemon.device_kinds import DeviceKind


@dataclass(frozen=True, slots=True)
class Drift:
    """A lasting change of one vital: eases in from ``onset_day`` over ``ramp_days``, then holds."""

    metric: str
    delta: float
    onset_day: float
    ramp_days: float


@dataclass(frozen=True, slots=True)
class Episode:
    """A transient excursion (a hypo, a BP surge) that pulls vitals to ``targets``.

    The vitals sit at their targets for ``plateau`` around ``day`` at ``at`` (local) and ease
    back over ``ramp`` either side. A patient who feels it checks with ``checked_with`` at each
    offset in ``checks`` from the peak, on top of any scheduled reading.
    """

    day: int
    at: time
    targets: Mapping[str, float]
    plateau: timedelta
    ramp: timedelta
    checked_with: DeviceKind | None = None
    checks: tuple[timedelta, ...] = ()


@dataclass(frozen=True, slots=True)
class Fault:
    """Something going wrong with a reading: by chance (``probability`` per reading), and
    surely in the sessions named in ``certain_on`` as (day, session name), so that a short run
    always shows it.

    The device reports ``flags``, or nothing at all: real devices do not notice a cold finger
    (a silent fault, no flags, named by ``name``). It either has no valid value
    (``drops_values``) or a value off by ``bias`` with its error widened by ``noise_factor``.
    If ``retried``, the patient notices and measures again ``retry_after`` later.
    """

    device: DeviceKind
    flags: tuple[str, ...]
    probability: float
    certain_on: tuple[tuple[int, str], ...] = ()
    drops_values: bool = False
    bias: Mapping[str, float] = field(default_factory=dict)
    noise_factor: float = 1.0
    retried: bool = False
    retry_after: timedelta = timedelta(seconds=75)
    name: str = ""

    def __post_init__(self) -> None:
        if not (self.flags or self.name):
            raise ValueError("a fault the device does not flag needs a name")

    @property
    def key(self) -> str:
        """What names the fault in its random draws: its first flag, else its name."""
        return self.flags[0] if self.flags else self.name


@dataclass(frozen=True, slots=True)
class Outage:
    """The listed devices (all, if empty) are out of the gateway's range for ``duration``."""

    day: int
    at: time
    duration: timedelta
    devices: tuple[DeviceKind, ...] = ()


@dataclass(frozen=True, slots=True)
class BatteryDrain:
    """The listed devices (all, if empty) start at ``start_percent`` and lose
    ``percent_per_day``, instead of their usual slow drain."""

    start_percent: float
    percent_per_day: float
    devices: tuple[DeviceKind, ...] = ()


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    days: int  # how long a run needs to show the whole story
    conditions: frozenset[Condition] = frozenset()  # the patients it fits; empty means any
    drifts: tuple[Drift, ...] = ()
    episodes: tuple[Episode, ...] = ()
    faults: tuple[Fault, ...] = ()
    outages: tuple[Outage, ...] = ()
    battery: BatteryDrain | None = None

    @property
    def onset_day(self) -> float | None:
        starts = [d.onset_day for d in self.drifts] + [float(e.day) for e in self.episodes]
        starts += [float(o.day) for o in self.outages]
        return min(starts, default=None)

    def fits(self, conditions: frozenset[Condition]) -> bool:
        return not self.conditions or bool(self.conditions & conditions)


def _hypo(day: int, at: time, glucose: float) -> Episode:
    # Patients check when symptoms start, treat, and re-check 15 minutes later ("rule of 15").
    return Episode(
        day=day,
        at=at,
        targets={"glucose": glucose},
        plateau=timedelta(minutes=10),
        ramp=timedelta(minutes=30),
        checked_with=DeviceKind.GLUCOMETER,
        checks=(timedelta(0), timedelta(minutes=15)),
    )


def _bp_surge(day: int, at: time) -> Episode:
    # Targets sit well past 180/110 so that device error cannot pull a reading back under.
    return Episode(
        day=day,
        at=at,
        targets={"systolic": 196.0, "diastolic": 119.0, "pulse_rate": 92.0},
        plateau=timedelta(hours=3),
        ramp=timedelta(hours=1),
        checked_with=DeviceKind.BLOOD_PRESSURE,
        checks=(timedelta(minutes=-30), timedelta(minutes=30)),
    )


_CATALOGUE = (
    Scenario(
        name="stable",
        description="Vitals stay at the patient's usual level, with daily rhythm and noise.",
        days=7,
    ),
    Scenario(
        name="covid_deterioration",
        description=(
            "Silent hypoxaemia: SpO2 drifts from about 97 % through 93–94 % to ≤92 % over days "
            "3–6, with rising pulse, temperature and breathing rate."
        ),
        days=14,
        conditions=frozenset({Condition.COVID}),
        drifts=(
            Drift("spo2", -7.0, onset_day=2.0, ramp_days=4.0),
            Drift("pulse_rate", 18.0, onset_day=2.0, ramp_days=4.0),
            Drift("body_temperature", 1.4, onset_day=1.5, ramp_days=3.5),
            Drift("respiratory_rate", 8.0, onset_day=2.0, ramp_days=4.0),
        ),
    ),
    Scenario(
        name="copd_exacerbation",
        description=(
            "From a chronic 88–92 % baseline, SpO2 falls a further ~6 points over three days "
            "with tachycardia, faster breathing and low-grade fever."
        ),
        days=10,
        conditions=frozenset({Condition.COPD}),
        drifts=(
            Drift("spo2", -6.5, onset_day=3.0, ramp_days=3.0),
            Drift("pulse_rate", 15.0, onset_day=3.0, ramp_days=3.0),
            Drift("respiratory_rate", 6.0, onset_day=3.0, ramp_days=3.0),
            Drift("body_temperature", 0.6, onset_day=3.0, ramp_days=3.0),
        ),
    ),
    Scenario(
        name="heart_failure_decompensation",
        description=(
            "Fluid retention: morning weight up ~3.8 kg over three days, resting pulse rising "
            "and SpO2 slipping by a couple of points."
        ),
        days=10,
        conditions=frozenset({Condition.HEART_FAILURE}),
        drifts=(
            Drift("body_weight", 3.8, onset_day=2.0, ramp_days=3.0),
            Drift("pulse_rate", 12.0, onset_day=2.5, ramp_days=3.0),
            Drift("spo2", -2.5, onset_day=3.0, ramp_days=3.0),
            Drift("respiratory_rate", 5.0, onset_day=3.0, ramp_days=3.0),
        ),
    ),
    Scenario(
        name="hypertensive_crisis",
        description=(
            "Loss of BP control: the home mean climbs well above 135/85 within two days, with "
            "headache-prompted surges to ≥180/110 on days 3 and 5."
        ),
        days=8,
        conditions=frozenset({Condition.HYPERTENSION}),
        drifts=(
            Drift("systolic", 28.0, onset_day=0.0, ramp_days=2.0),
            Drift("diastolic", 18.0, onset_day=0.0, ramp_days=2.0),
        ),
        episodes=(_bp_surge(3, time(8, 0)), _bp_surge(5, time(20, 30))),
    ),
    Scenario(
        name="hypoglycaemia",
        description=(
            "Four symptomatic hypos over a week, two level 1 (<70 mg/dL) and two level 2 "
            "(<54 mg/dL), one of them nocturnal."
        ),
        days=7,
        conditions=frozenset({Condition.DIABETES}),
        episodes=(
            _hypo(1, time(16, 0), 62.0),
            _hypo(3, time(3, 0), 44.0),
            _hypo(4, time(11, 30), 60.0),
            _hypo(6, time(17, 45), 45.0),
        ),
    ),
    Scenario(
        name="sensor_problems",
        description=(
            "Usage errors: finger out of the oximeter (no valid value, then a retry), a loose "
            "BP cuff that over-reads, and body movement during BP readings."
        ),
        days=7,
        faults=(
            Fault(
                DeviceKind.PULSE_OXIMETER,
                ("sensor_unconnected_to_user",),
                probability=0.1,
                certain_on=((1, "morning"), (3, "evening")),
                drops_values=True,
                retried=True,
            ),
            # A loose cuff needs more pressure to occlude the artery, so it reads high.
            Fault(
                DeviceKind.BLOOD_PRESSURE,
                ("cuff_too_loose",),
                probability=0.08,
                certain_on=((1, "evening"), (4, "morning")),
                bias={"systolic": 12.0, "diastolic": 8.0},
                noise_factor=2.5,
            ),
            Fault(
                DeviceKind.BLOOD_PRESSURE,
                ("body_movement",),
                probability=0.06,
                certain_on=((2, "morning"),),
                noise_factor=3.0,
            ),
        ),
    ),
    Scenario(
        name="stable_artefacts",
        description=(
            "Stable vitals with the artefacts of everyday use, none flagged by the device: now "
            "and then an oximeter reading 5-15 points low (cold finger, movement) that the "
            "patient repeats five minutes later, and a cuff reading high (cuff misplaced, "
            "talking) repeated three minutes later. Missed sessions come from the adherence."
        ),
        days=7,
        faults=(
            # bias -10 with the error widened 2.5x (sd 1.5, truncated at 3 sd): 5.5-14.5 low.
            Fault(
                DeviceKind.PULSE_OXIMETER,
                (),
                probability=0.03,
                bias={"spo2": -10.0},
                noise_factor=2.5,
                retried=True,
                retry_after=timedelta(minutes=5),
                name="cold_finger",
            ),
            Fault(
                DeviceKind.BLOOD_PRESSURE,
                (),
                probability=0.03,
                bias={"systolic": 15.0, "diastolic": 8.0},
                noise_factor=2.0,
                retried=True,
                retry_after=timedelta(minutes=3),
                name="cuff_misplaced",
            ),
        ),
    ),
    Scenario(
        name="out_of_range",
        description=(
            "All devices out of the gateway's range from day 2 evening for 40 hours: readings "
            "kept in device memory are delivered on return, the oximeter's are lost."
        ),
        days=6,
        outages=(Outage(day=2, at=time(18, 0), duration=timedelta(hours=40)),),
    ),
    Scenario(
        name="low_battery",
        description="Batteries run down from 48 % and drop below 10 % by day 6.",
        days=8,
        battery=BatteryDrain(start_percent=48.0, percent_per_day=7.0),
    ),
)

SCENARIOS: MappingProxyType[str, Scenario] = MappingProxyType({s.name: s for s in _CATALOGUE})


class UnknownScenarioError(KeyError):
    pass


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenarioError(
            f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}"
        ) from None
