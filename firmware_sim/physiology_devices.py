"""The home devices as the physiological model sees them: what each one measures, how finely,
how accurately, and whether it keeps readings it could not deliver."""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType

from telemon.device_kinds import DeviceKind

# The name a device's random draws are keyed with (``physiology_noise``). The cuff's is the
# model's name from before the kinds had one vocabulary: keying it by "blood_pressure" would
# reshuffle every simulated patient, and the benchmarks' figures with them.
_DRAW_KEYS: MappingProxyType[DeviceKind, str] = MappingProxyType(
    {DeviceKind.BLOOD_PRESSURE: "blood_pressure_monitor"}
)


def draw_key(kind: DeviceKind) -> str:
    """What names the device in its random draws."""
    return _DRAW_KEYS.get(kind, kind.value)


@dataclass(frozen=True, slots=True)
class Channel:
    """One metric a device reports.

    The error is a truncated normal with ``noise_sd`` plus ``noise_fraction`` of the value (as
    glucometer accuracy standards are stated), and the result is rounded to ``resolution``.
    """

    metric: str
    resolution: float
    noise_sd: float
    noise_fraction: float = 0.0

    def error_sd(self, value: float) -> float:
        return max(self.noise_sd, self.noise_fraction * abs(value))

    def quantise(self, value: float) -> float:
        steps = math.floor(value / self.resolution + 0.5)
        decimals = max(0, -math.floor(math.log10(self.resolution)))
        return round(steps * self.resolution, decimals)


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    kind: DeviceKind
    channels: tuple[Channel, ...]
    stores_readings: bool
    battery_percent_per_day: float
    low_battery_percent: float = 10.0

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(c.metric for c in self.channels)


# Mean arterial pressure is not listed: cuffs derive it from systolic and diastolic.
# Storage follows common practice (docs/clinical-references.md#simulated-patients): cuffs,
# meters, scales and thermometers keep a memory; cheap spot-check oximeters do not.
DEVICES: MappingProxyType[DeviceKind, DeviceSpec] = MappingProxyType(
    {
        DeviceKind.PULSE_OXIMETER: DeviceSpec(
            DeviceKind.PULSE_OXIMETER,
            (Channel("spo2", 1.0, 0.6), Channel("pulse_rate", 1.0, 1.5)),
            stores_readings=False,
            battery_percent_per_day=0.8,
        ),
        DeviceKind.BLOOD_PRESSURE: DeviceSpec(
            DeviceKind.BLOOD_PRESSURE,
            (
                Channel("systolic", 1.0, 4.0),
                Channel("diastolic", 1.0, 3.0),
                Channel("pulse_rate", 1.0, 2.0),
            ),
            stores_readings=True,
            battery_percent_per_day=0.5,
        ),
        DeviceKind.GLUCOMETER: DeviceSpec(
            DeviceKind.GLUCOMETER,
            (Channel("glucose", 1.0, 3.0, noise_fraction=0.04),),
            stores_readings=True,
            battery_percent_per_day=0.2,
        ),
        DeviceKind.THERMOMETER: DeviceSpec(
            DeviceKind.THERMOMETER,
            (Channel("body_temperature", 0.1, 0.1),),
            stores_readings=True,
            battery_percent_per_day=0.2,
        ),
        DeviceKind.WEIGHT_SCALE: DeviceSpec(
            DeviceKind.WEIGHT_SCALE,
            (Channel("body_weight", 0.1, 0.05),),
            stores_readings=True,
            battery_percent_per_day=0.3,
        ),
    }
)
