"""``make_device``: the simulated device for a device kind."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from bumble import hci
from bumble.link import LocalLink

from firmware_sim.devices.base import SimulatedDevice
from firmware_sim.devices.blood_pressure import SimulatedBloodPressureCuff
from firmware_sim.devices.glucometer import SimulatedGlucometer
from firmware_sim.devices.oximeter import SimulatedOximeter
from firmware_sim.devices.thermometer import SimulatedThermometer
from firmware_sim.devices.weight_scale import SimulatedWeightScale
from telemon.device_kinds import DeviceKind

__all__ = ["DEVICE_CLASSES", "make_device"]

DEVICE_CLASSES: MappingProxyType[DeviceKind, type[SimulatedDevice]] = MappingProxyType(
    {
        DeviceKind.PULSE_OXIMETER: SimulatedOximeter,
        DeviceKind.BLOOD_PRESSURE: SimulatedBloodPressureCuff,
        DeviceKind.GLUCOMETER: SimulatedGlucometer,
        DeviceKind.THERMOMETER: SimulatedThermometer,
        DeviceKind.WEIGHT_SCALE: SimulatedWeightScale,
    }
)


def make_device(
    kind: DeviceKind | str,
    link: LocalLink,
    address: str | hci.Address | None = None,
    *,
    name: str | None = None,
    battery: int = 100,
    require_bonding: bool = False,
    **options: Any,
) -> SimulatedDevice:
    """A powered-off simulated device of ``kind`` on ``link``; ``await device.start()``.

    ``options`` go to the kind's class (an oximeter's ``memory``, a meter's ``record_interval``).
    """
    device_class = DEVICE_CLASSES[DeviceKind(kind)]
    return device_class(
        link, address, name=name, battery=battery, require_bonding=require_bonding, **options
    )
