"""The physiological model of one simulated patient: what their devices measure, and when.

A patient's true vitals at any instant are their baseline, plus the daily rhythm, plus slow
autocorrelated variability, plus whatever their scenario adds. A device reading adds the
device's own error and rounds to its resolution. Every random number is a pure function of
(seed, what is drawn, when), so the stream replays identically for any window and any clock
speed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from firmware_sim.physiology_conditions import Condition, baselines_for, device_kit, draw_baseline
from firmware_sim.physiology_devices import DEVICES, draw_key
from firmware_sim.physiology_noise import normal, smoothstep, uniform, value_noise
from firmware_sim.physiology_rhythm import (
    CIRCADIAN,
    MEAL_RISE_PER_FASTING_LEVEL,
    MEALS,
    VARIABILITY_TIMESCALE,
    meal_response,
)
from firmware_sim.physiology_schedule import (
    OVERNIGHT_OXIMETRY,
    OximeterMode,
    PlannedReading,
    local_instant,
    planned_readings,
    worn_instants,
)
from firmware_sim.scenarios import Episode, Fault, Outage, Scenario
from telemon.device_kinds import DeviceKind
from telemon.metrics import METRICS

DAY = timedelta(days=1)

# Systolic and diastolic move together: diastolic variability is part shared with systolic.
_SHARED_VARIABILITY: MappingProxyType[str, tuple[tuple[str, float], ...]] = MappingProxyType(
    {"diastolic": (("systolic", 0.6), ("diastolic", 0.8))}
)

# While worn continuously, a fault (a finger slipping out) lasts minutes, not one sample.
_CONTINUOUS_FAULT_SPELL = timedelta(minutes=5)
_CONTINUOUS_AVERAGING = 8.0  # seconds
_MIN_PULSE_PRESSURE = 15.0  # mmHg
_DEVICE_ORDER = {kind: i for i, kind in enumerate(DeviceKind)}


@dataclass(frozen=True, slots=True)
class PatientProfile:
    patient_id: str
    conditions: frozenset[Condition]
    enrolled_at: datetime  # aware; day 0 of every scenario is this local date
    timezone: str = "Europe/Rome"
    devices: frozenset[DeviceKind] | None = None  # None: the usual kit for the conditions
    oximeter_mode: OximeterMode = OximeterMode.SPOT_CHECK
    adherence: float = 0.95  # share of planned sessions actually done

    def __post_init__(self) -> None:
        if self.enrolled_at.utcoffset() is None:
            raise ValueError("enrolled_at must be timezone-aware")
        if not 0.0 <= self.adherence <= 1.0:
            raise ValueError("adherence must be between 0 and 1")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def device_kinds(self) -> tuple[DeviceKind, ...]:
        kit = self.devices if self.devices is not None else device_kit(self.conditions)
        return tuple(sorted(kit, key=_DEVICE_ORDER.__getitem__))


@dataclass(frozen=True, slots=True)
class Vitals:
    """The patient's true physiological state at one instant, canonical units, unrounded."""

    at: datetime
    spo2: float
    pulse_rate: float
    systolic: float
    diastolic: float
    mean_arterial_pressure: float
    glucose: float
    body_temperature: float
    body_weight: float
    respiratory_rate: float

    def __getitem__(self, metric: str) -> float:
        if metric not in METRICS:
            raise KeyError(metric)
        return float(getattr(self, metric))


@dataclass(frozen=True, slots=True)
class SimulatedMeasurement:
    """One reading as the device produces it, ready for a BLE simulator to encode.

    ``values`` are in the device's natural units (those of telemon.metrics) at device
    resolution. A metric the device reports but has no valid value for is absent: encoders send
    their "not a number" code. ``delivered_at`` is when the gateway can receive it: at once if
    the device is reachable, when it comes back in range if it keeps readings, never (None) if
    the reading is lost.
    """

    device: DeviceKind
    measured_at: datetime
    values: Mapping[str, float]
    flags: tuple[str, ...]
    battery_level: int
    reachable: bool
    delivered_at: datetime | None
    session: str


@dataclass(frozen=True, slots=True)
class PatientModel:
    profile: PatientProfile
    scenario: Scenario
    seed: int
    baseline: Mapping[str, float] = field(init=False, repr=False, compare=False)
    _within_sd: Mapping[str, float] = field(init=False, repr=False, compare=False)
    _origin: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.scenario.fits(self.profile.conditions):
            wanted = ", ".join(sorted(self.scenario.conditions))
            raise ValueError(f"scenario {self.scenario.name!r} is for patients with {wanted}")
        # Fields derived once from the inputs; frozen dataclasses set them this way.
        baselines = baselines_for(self.profile.conditions)
        object.__setattr__(self, "baseline", draw_baseline(self.profile.conditions, self.seed))
        object.__setattr__(
            self, "_within_sd", MappingProxyType({m: b.within_sd for m, b in baselines.items()})
        )
        enrolled_local = self.profile.enrolled_at.astimezone(self.profile.zone)
        object.__setattr__(
            self, "_origin", local_instant(enrolled_local.date(), time(0), self.profile.zone)
        )

    # --- time -------------------------------------------------------------------------------

    @property
    def origin(self) -> datetime:
        """Local midnight of the enrolment day, in UTC: the start of scenario day 0."""
        return self._origin

    def day_number(self, t: datetime) -> float:
        return (t - self._origin) / DAY

    def day_of(self, t: datetime) -> int:
        """The scenario day ``t`` falls on, by the patient's calendar."""
        first = self._origin.astimezone(self.profile.zone).date()
        return (t.astimezone(self.profile.zone).date() - first).days

    def local_instant(self, day: int, at: time) -> datetime:
        first = self._origin.astimezone(self.profile.zone).date()
        return local_instant(first + timedelta(days=day), at, self.profile.zone)

    # --- physiology -------------------------------------------------------------------------

    def vitals_at(self, t: datetime) -> Vitals:
        t = _utc(t)
        local = t.astimezone(self.profile.zone)
        values = {metric: self._vital(metric, t, local) for metric in self.baseline}
        values["mean_arterial_pressure"] = mean_arterial_pressure(
            values["systolic"], values["diastolic"]
        )
        return Vitals(at=t, **values)

    def _vital(self, metric: str, t: datetime, local: datetime) -> float:
        hour = local.hour + local.minute / 60 + local.second / 3600
        value = self.baseline[metric] + CIRCADIAN[metric].offset(hour)
        value += self._within_sd[metric] * self._variability(metric, t)
        day = self.day_number(t)
        for drift in self.scenario.drifts:
            if drift.metric == metric:
                progress = min(max((day - drift.onset_day) / drift.ramp_days, 0.0), 1.0)
                value += drift.delta * smoothstep(progress)
        if metric == "glucose":
            value += self._meal_rise(local)
        for episode in self.scenario.episodes:
            if metric in episode.targets:
                weight = self._episode_weight(episode, t)
                value += weight * (episode.targets[metric] - value)
        m = METRICS[metric]
        return min(max(value, m.plausible_min), m.plausible_max)

    def _variability(self, metric: str, t: datetime) -> float:
        seconds = t.timestamp()
        spacing = VARIABILITY_TIMESCALE[metric].total_seconds()
        return sum(
            share * value_noise(self.seed, stream, seconds, spacing)
            for stream, share in _SHARED_VARIABILITY.get(metric, ((metric, 1.0),))
        )

    def _meal_rise(self, local: datetime) -> float:
        peak = MEAL_RISE_PER_FASTING_LEVEL * self.baseline["glucose"]
        # Yesterday's dinner still counts just after midnight.
        rise = 0.0
        for days_back in (0, 1):
            day = local.date() - timedelta(days=days_back)
            for meal in MEALS.values():
                eaten = local_instant(day, meal, self.profile.zone)
                rise += peak * meal_response(local - eaten)
        return rise

    def _episode_weight(self, episode: Episode, t: datetime) -> float:
        distance = abs(t - self.local_instant(episode.day, episode.at))
        beyond_plateau = distance - episode.plateau / 2
        if beyond_plateau <= timedelta(0):
            return 1.0
        if beyond_plateau >= episode.ramp:
            return 0.0
        return 1.0 - smoothstep(beyond_plateau / episode.ramp)

    # --- devices ----------------------------------------------------------------------------

    def battery_level(self, device: DeviceKind, t: datetime) -> int:
        """Battery percent, whole numbers as the BLE Battery Level characteristic carries it."""
        drain = self.scenario.battery
        if drain is not None and (not drain.devices or device in drain.devices):
            start, per_day = drain.start_percent, drain.percent_per_day
        else:
            start = 55.0 + 45.0 * uniform(self.seed, "battery", draw_key(device))
            per_day = DEVICES[device].battery_percent_per_day
        days_in_use = max(0.0, (_utc(t) - self.profile.enrolled_at) / DAY)
        return max(1, round(start - per_day * days_in_use))

    def _outages(self, device: DeviceKind) -> list[tuple[datetime, datetime]]:
        return sorted(
            (start, start + outage.duration)
            for outage in self.scenario.outages
            if _covers(outage, device)
            for start in (self.local_instant(outage.day, outage.at),)
        )

    def is_reachable(self, device: DeviceKind, t: datetime) -> bool:
        t = _utc(t)
        return not any(start <= t < end for start, end in self._outages(device))

    def back_in_range_at(self, device: DeviceKind, t: datetime) -> datetime:
        """The first instant from ``t`` on when ``device`` is reachable."""
        t = _utc(t)
        for start, end in self._outages(device):
            if start <= t < end:
                t = end
        return t

    def reading_at(
        self, device: DeviceKind, t: datetime, session: str = "on_demand"
    ) -> SimulatedMeasurement:
        """What ``device`` reports if used at ``t``; this is also how a continuous oximeter
        samples the patient."""
        return self._read(device, _utc(t), session, self._fault_for(device, _utc(t), session))

    def _fault_for(self, device: DeviceKind, t: datetime, session: str) -> Fault | None:
        if session == "continuous":
            when = int((t - self._origin) // _CONTINUOUS_FAULT_SPELL)
        else:
            when = _millis(t)
        faults = [f for f in self.scenario.faults if f.device == device]
        day = self.day_of(t)
        certain = (f for f in faults if (day, session) in f.certain_on)
        by_chance = (
            f
            for f in faults
            if uniform(self.seed, "fault", draw_key(device), f.key, when) < f.probability
        )
        return next(certain, None) or next(by_chance, None)

    def _read(
        self, device: DeviceKind, t: datetime, session: str, fault: Fault | None
    ) -> SimulatedMeasurement:
        spec = DEVICES[device]
        values: dict[str, float] = {}
        if fault is None or not fault.drops_values:
            local = t.astimezone(self.profile.zone)
            noise_factor = fault.noise_factor if fault else 1.0
            for channel in spec.channels:
                true = self._vital(channel.metric, t, local)
                error = channel.error_sd(true) * noise_factor
                error *= self._error_deviate(device, channel.metric, t, session)
                value = true + error + (fault.bias.get(channel.metric, 0.0) if fault else 0.0)
                m = METRICS[channel.metric]
                values[channel.metric] = channel.quantise(
                    min(max(value, m.plausible_min), m.plausible_max)
                )
            if "systolic" in values:
                values.update(_cuff_pressures(values["systolic"], values["diastolic"]))
        battery = self.battery_level(device, t)
        flags = fault.flags if fault else ()
        if battery < spec.low_battery_percent:
            flags = (*flags, "battery_low")
        reachable = self.is_reachable(device, t)
        if reachable:
            delivered_at: datetime | None = t
        elif spec.stores_readings:
            delivered_at = self.back_in_range_at(device, t)
        else:
            delivered_at = None
        return SimulatedMeasurement(
            device=device,
            measured_at=t,
            values=MappingProxyType(values),
            flags=flags,
            battery_level=battery,
            reachable=reachable,
            delivered_at=delivered_at,
            session=session,
        )

    def _error_deviate(self, device: DeviceKind, metric: str, t: datetime, session: str) -> float:
        if session == "continuous":
            # Worn oximeters average over several seconds: their error wanders, it does not jump.
            return value_noise(
                self.seed,
                f"error:{draw_key(device)}:{metric}",
                t.timestamp(),
                _CONTINUOUS_AVERAGING,
            )
        return normal(self.seed, "error", draw_key(device), metric, _millis(t))

    # --- the stream -------------------------------------------------------------------------

    def measurements(self, start: datetime, end: datetime) -> Iterator[SimulatedMeasurement]:
        """Every reading taken in [start, end), in time order. Any window gives the readings of
        a longer one that fall inside it, identical."""
        start = max(_utc(start), self.profile.enrolled_at.astimezone(UTC))
        end = _utc(end)
        if end <= start:
            return
        zone = self.profile.zone
        first = start.astimezone(zone).date() - timedelta(days=1)
        last = end.astimezone(zone).date()
        days = (first + timedelta(days=n) for n in range((last - first).days + 1))
        yield from heapq.merge(
            *(self._day_readings(day, start, end) for day in days), key=_stream_order
        )

    def _day_readings(
        self, day: date, start: datetime, end: datetime
    ) -> Iterator[SimulatedMeasurement]:
        planned = [
            p
            for device in self._spot_devices()
            for p in planned_readings(
                device, day, self.profile.zone, self.seed, self.profile.adherence
            )
        ]
        planned += self._symptom_checks(day)
        spot: list[SimulatedMeasurement] = []
        for p in planned:
            fault = self._fault_for(p.device, p.at, p.session)
            spot.append(self._read(p.device, p.at, p.session, fault))
            if fault is not None and fault.retried:
                spot.append(self._read(p.device, p.at + fault.retry_after, p.session, None))
        spot = sorted((m for m in spot if start <= m.measured_at < end), key=_stream_order)
        if self._wears_oximeter_continuously():
            continuous = (
                self.reading_at(DeviceKind.PULSE_OXIMETER, t, "continuous")
                for t in worn_instants(OVERNIGHT_OXIMETRY, day, self.profile.zone, start, end)
            )
            yield from heapq.merge(spot, continuous, key=_stream_order)
        else:
            yield from spot

    def _spot_devices(self) -> tuple[DeviceKind, ...]:
        return tuple(
            d
            for d in self.profile.device_kinds
            if not (d is DeviceKind.PULSE_OXIMETER and self._wears_oximeter_continuously())
        )

    def _wears_oximeter_continuously(self) -> bool:
        return (
            self.profile.oximeter_mode is OximeterMode.CONTINUOUS
            and DeviceKind.PULSE_OXIMETER in self.profile.device_kinds
        )

    def _symptom_checks(self, day: date) -> list[PlannedReading]:
        day_number = (day - self._origin.astimezone(self.profile.zone).date()).days
        return [
            PlannedReading(episode.checked_with, peak + offset, "symptom_check")
            for episode in self.scenario.episodes
            if episode.day == day_number
            and episode.checked_with is not None
            and episode.checked_with in self.profile.device_kinds
            for peak in (self.local_instant(episode.day, episode.at),)
            for offset in episode.checks
        ]


def mean_arterial_pressure(systolic: float, diastolic: float) -> float:
    # The usual one-third rule; oscillometric cuffs measure MAP directly and agree closely.
    return diastolic + (systolic - diastolic) / 3.0


def _cuff_pressures(systolic: float, diastolic: float) -> dict[str, float]:
    # An oscillometric cuff finds diastolic below systolic by construction, however noisy
    # the reading.
    diastolic = min(diastolic, systolic - _MIN_PULSE_PRESSURE)
    return {
        "diastolic": diastolic,
        "mean_arterial_pressure": float(round(mean_arterial_pressure(systolic, diastolic))),
    }


def _covers(outage: Outage, device: DeviceKind) -> bool:
    return not outage.devices or device in outage.devices


def _utc(t: datetime) -> datetime:
    if t.utcoffset() is None:
        raise ValueError("simulated time must be timezone-aware")
    return t.astimezone(UTC)


def _millis(t: datetime) -> int:
    return round(t.timestamp() * 1000)


def _stream_order(m: SimulatedMeasurement) -> tuple[datetime, int]:
    return m.measured_at, _DEVICE_ORDER[m.device]
