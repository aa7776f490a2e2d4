"""``make_device``: the simulated device for a device kind."""

from __future__ import annotations

from types import MappingProxyType

from bumble import hci
from bumble.link import LocalLink

from firmware_sim.devices.base import SimulatedDevice
from firmware_sim.devices.blood_pressure import SimulatedBloodPressureCuff
from firmware_sim.devices.glucometer import SimulatedGlucometer
from firmware_sim.devices.identity import PAYLOAD_KINDS
from firmware_sim.devices.oximeter import SimulatedOximeter
from firmware_sim.devices.thermometer import SimulatedThermometer
from firmware_sim.devices.weight_scale import SimulatedWeightScale
from firmware_sim.physiology_devices import DeviceKind

__all__ = ["DEVICE_CLASSES", "make_device", "model_kind"]

DEVICE_CLASSES: MappingProxyType[DeviceKind, type[SimulatedDevice]] = MappingProxyType(
    {
        DeviceKind.PULSE_OXIMETER: SimulatedOximeter,
        DeviceKind.BLOOD_PRESSURE_MONITOR: SimulatedBloodPressureCuff,
        DeviceKind.GLUCOMETER: SimulatedGlucometer,
        DeviceKind.THERMOMETER: SimulatedThermometer,
        DeviceKind.WEIGHT_SCALE: SimulatedWeightScale,
    }
)

_BY_PAYLOAD_KIND = MappingProxyType({name: kind for kind, name in PAYLOAD_KINDS.items()})


def model_kind(kind: DeviceKind | str) -> DeviceKind:
    """The model's kind for a model name ('blood_pressure_monitor') or an MQTT contract name
    ('blood_pressure')."""
    if isinstance(kind, DeviceKind):
        return kind
    if kind in _BY_PAYLOAD_KIND:
        return _BY_PAYLOAD_KIND[kind]
    return DeviceKind(kind)


def make_device(
    kind: DeviceKind | str,
    link: LocalLink,
    address: str | hci.Address | None = None,
    *,
    name: str | None = None,
    battery: int = 100,
    require_bonding: bool = False,
) -> SimulatedDevice:
    """A powered-off simulated device of ``kind`` on ``link``; ``await device.start()``."""
    device_class = DEVICE_CLASSES[model_kind(kind)]
    return device_class(link, address, name=name, battery=battery, require_bonding=require_bonding)
