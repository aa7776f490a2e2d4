"""Simulated BLE health devices: real bumble GATT servers sending the bytes real devices send.

Each device joins a bumble ``LocalLink`` with its own controller, advertises its health
profile's service, serves Device Information and Battery, and delivers the measurements the
patient model produces the way its kind of device does (stored and indicated, notified, or
fetched through the Record Access Control Point). The gateway reaches them through bleak on the
bumble backend (``firmware_sim.ble``), exactly as it would reach real devices through BlueZ.

    device = make_device(DeviceKind.BLOOD_PRESSURE, link)
    await device.start()
    await device.record(measurement)   # a SimulatedMeasurement from PatientModel
"""

from firmware_sim.devices.base import SimulatedDevice
from firmware_sim.devices.blood_pressure import SimulatedBloodPressureCuff
from firmware_sim.devices.factory import DEVICE_CLASSES, make_device
from firmware_sim.devices.glucometer import SimulatedGlucometer
from firmware_sim.devices.identity import IDENTITIES, DeviceIdentity
from firmware_sim.devices.oximeter import SimulatedOximeter
from firmware_sim.devices.quirky import (
    MODEL_CLASSES,
    SimulatedBerryMed,
    SimulatedBeurerBM85,
    SimulatedContecCMS50D,
)
from firmware_sim.devices.thermometer import SimulatedThermometer
from firmware_sim.devices.timestamps import DEVICE_ZONE, device_wall_time
from firmware_sim.devices.weight_scale import SimulatedWeightScale

__all__ = [
    "DEVICE_CLASSES",
    "DEVICE_ZONE",
    "IDENTITIES",
    "MODEL_CLASSES",
    "DeviceIdentity",
    "SimulatedBerryMed",
    "SimulatedBeurerBM85",
    "SimulatedBloodPressureCuff",
    "SimulatedContecCMS50D",
    "SimulatedDevice",
    "SimulatedGlucometer",
    "SimulatedOximeter",
    "SimulatedThermometer",
    "SimulatedWeightScale",
    "device_wall_time",
    "make_device",
]
