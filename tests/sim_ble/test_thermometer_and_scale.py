"""Thermometer and scale: stored readings indicated with the device's own time stamp."""

from __future__ import annotations

from datetime import timedelta

import pytest

from telemon.device_kinds import DeviceKind

from .central import Inbox, assert_delivered, connect, until, uuid
from .conftest import readings_of

MEASUREMENTS = {DeviceKind.THERMOMETER: uuid(0x2A1C), DeviceKind.WEIGHT_SCALE: uuid(0x2A9D)}


@pytest.mark.parametrize("kind", list(MEASUREMENTS))
async def test_stored_readings_are_indicated_with_device_time(link, make, kind) -> None:
    device = await make(kind)
    device.clock_offset = timedelta(minutes=4, seconds=31)  # a clock running fast
    measurements = readings_of(kind, 3)
    for measurement in measurements:
        await device.record(measurement)
    assert device.undelivered == 3
    client = await connect(link, device)
    inbox = Inbox()
    await client.start_notify(MEASUREMENTS[kind], inbox)
    for measurement, readings in zip(measurements, await inbox.readings(3), strict=True):
        assert_delivered(readings, measurement, device)
    # Forgotten only once confirmed, so a lost link cannot lose a reading.
    await until(lambda: device.undelivered == 0)
    await client.disconnect()


async def test_thermometer_names_the_body_site(link, make) -> None:
    thermometer = await make(DeviceKind.THERMOMETER)
    (measurement,) = readings_of(DeviceKind.THERMOMETER, 1)
    await thermometer.record(measurement)
    client = await connect(link, thermometer)
    inbox = Inbox()
    await client.start_notify(MEASUREMENTS[DeviceKind.THERMOMETER], inbox)
    ((reading,),) = await inbox.readings(1)
    assert reading.context == {"temperature_type": "ear"}
    await client.disconnect()
