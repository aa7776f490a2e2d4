"""The gateway's side in these tests: plain bleak on the bumble backend, and the codecs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bumble.link import LocalLink

from firmware_sim.ble import BumbleClient, BumbleScanner
from firmware_sim.devices import SimulatedDevice, device_wall_time
from firmware_sim.physiology import SimulatedMeasurement
from firmware_sim.physiology_devices import DEVICES
from gateway.gatt import Reading, decode, full_uuid

TIMEOUT = 5.0


def uuid(short: int) -> str:
    return full_uuid(short)


async def connect(link: LocalLink, device: SimulatedDevice, **options) -> BleakClient:
    found = await BleakScanner.find_device_by_address(
        device.address, timeout=TIMEOUT, backend=BumbleScanner.bound_to(link)
    )
    assert found is not None, f"{device} is not advertising"
    client = BleakClient(found, backend=BumbleClient.bound_to(link), timeout=TIMEOUT, **options)
    await client.connect()
    return client


@dataclass
class Inbox:
    """Values a characteristic sent, in arrival order."""

    values: asyncio.Queue[tuple[str, bytes]] = field(default_factory=asyncio.Queue)

    def __call__(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self.values.put_nowait((characteristic.uuid, bytes(data)))

    async def next(self, timeout: float = TIMEOUT) -> tuple[str, bytes]:
        async with asyncio.timeout(timeout):
            return await self.values.get()

    async def readings(self, count: int) -> list[list[Reading]]:
        return [decode(*await self.next()) for _ in range(count)]

    def empty(self) -> bool:
        return self.values.empty()


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Wait for a state the device reaches without an event to wait on (a confirmation)."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def assert_delivered(
    readings: list[Reading], measurement: SimulatedMeasurement, device: SimulatedDevice
) -> None:
    """The decoded readings say what the model measured, to the device's resolution, with the
    device's own time stamp."""
    channels = {channel.metric: channel for channel in DEVICES[measurement.device].channels}
    by_metric = {reading.metric: reading for reading in readings}
    for metric, value in measurement.values.items():
        reading = by_metric[metric]
        channel = channels.get(metric)
        decoded = channel.quantise(reading.value) if channel else round(reading.value)
        assert decoded == value, (metric, reading.value, value)
    assert set(by_metric) == set(measurement.values)
    stamp = device_wall_time(measurement.measured_at, device.zone, device.clock_offset)
    assert {reading.measured_at for reading in readings} == {stamp}
