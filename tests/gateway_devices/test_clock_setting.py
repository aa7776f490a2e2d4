"""The gateway reads a device's clock and sets it right where it can (issue 19), over bumble.

The real runtime connects to simulated devices that expose Current Time (or a bare Date Time);
what it publishes is read back from the broker. A clock more than 15 minutes off is rewritten
when the characteristic is writable, and reported (the status's device health) when it is not;
either way the readings it stamped are corrected by the offset measured, never silently shifted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from firmware_sim.devices import SimulatedDevice
from firmware_sim.devices.device_clock import ClockCharacteristic, shows
from firmware_sim.devices.factory import DEVICE_CLASSES
from telemon.device_kinds import DeviceKind
from telemon.observation import Observation
from telemon.payload_schema import decode_status
from telemon.time_correction import ClockSource, TimeBasis
from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import clock_at, measurement, observations

SECONDS = timedelta(seconds=20)  # link, scheduling and the one-second grain of a GATT clock


@asynccontextmanager
async def clocked(link, kind: str, **options) -> AsyncIterator[SimulatedDevice]:
    device = DEVICE_CLASSES[DeviceKind(kind)](link, **options)
    await device.start()
    try:
        yield device
    finally:
        await device.stop()


def temperatures(collector: Collector, gateway_id: str) -> list[Observation]:
    return [
        o for o in observations(collector.snapshot(), gateway_id) if o.metric == "body_temperature"
    ]


def clock_facts(collector: Collector, gateway_id: str, address: str) -> tuple[object, ...] | None:
    """What the last status published says of the device's clock, as the server reads it."""
    status_topic = topic(gateway_id, Channel.STATUS)
    for message in reversed(collector.snapshot()):
        if message.topic != status_topic:
            continue
        for device in decode_status(message.topic, message.payload).devices:
            if device.device_id == address:
                return device.clock_ignores_dst, device.clock_zone_min, device.clock_dst_min
    return None


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_a_clock_40_minutes_behind_is_corrected_and_set(gateway, link, mqtt_url) -> None:
    async with clocked(
        link, "thermometer", clock=ClockCharacteristic.CURRENT_TIME, clock_writable=True
    ) as thermometer:
        thermometer.clock_offset = timedelta(minutes=-40)
        gateway.pair(thermometer)
        taken = datetime.now(UTC).replace(microsecond=0)
        # Measured before the gateway comes: stored, stamped by the wrong clock.
        await thermometer.record(measurement("thermometer", {"body_temperature": 37.2}, at=taken))
        with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
            async with gateway.running() as runtime:
                await asyncio.to_thread(
                    collector.wait_for, lambda m: temperatures(collector, gateway.id)
                )
                await wait_for(lambda: bool(thermometer.clock_writes))
                state = runtime.manager.state(thermometer.address)
                await wait_for(lambda: state.clock_skew is not None)
                health = state.health()
                # Measured after the clock was set: right as stamped.
                later = datetime.now(UTC).replace(microsecond=0)
                await thermometer.record(
                    measurement("thermometer", {"body_temperature": 36.9}, at=later)
                )
                await asyncio.to_thread(
                    collector.wait_for, lambda m: len(temperatures(collector, gateway.id)) == 2
                )
    first, second = temperatures(collector, gateway.id)
    # The old clock's stamp, shifted by the 40 minutes the gateway measured.
    assert abs(first.measured_at - taken) < SECONDS
    assert "device_clock_skew" in first.flags and "gateway_time" not in first.flags
    assert first.time is not None and first.time.basis is TimeBasis.CORRECTED
    assert first.time.clock_source is ClockSource.CURRENT_TIME
    assert abs(first.time.applied_s + 2400) < SECONDS.total_seconds()
    assert first.context["device_time"] == first.time.device_time
    # The device's clock now shows Rome's time, and the second reading needs no correction.
    assert abs(shows(thermometer) - datetime.now(thermometer.zone).replace(tzinfo=None)) < SECONDS
    assert abs(second.measured_at - later) < SECONDS
    assert "device_clock_skew" not in second.flags
    assert second.time is not None and second.time.basis is TimeBasis.DEVICE
    # The status tells the service centre the clock was set, and from how far off.
    assert health.clock_set_at is not None and health.clock_set_from_s is not None
    assert abs(health.clock_set_from_s + 2400) < SECONDS.total_seconds()
    assert abs(health.clock_skew_s or 0) < SECONDS.total_seconds()
    # A clock just set shows local time: whether it will follow DST is not known.
    assert health.clock_ignores_dst is None


async def test_a_clock_the_gateway_cannot_write_is_corrected_and_reported(
    gateway, link, mqtt_url
) -> None:
    async with clocked(link, "thermometer", clock=ClockCharacteristic.DATE_TIME) as thermometer:
        thermometer.clock_offset = timedelta(hours=2)
        gateway.pair(thermometer)
        taken = datetime.now(UTC).replace(microsecond=0)
        await thermometer.record(measurement("thermometer", {"body_temperature": 37.0}, at=taken))
        with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
            async with gateway.running() as runtime:
                await asyncio.to_thread(
                    collector.wait_for, lambda m: temperatures(collector, gateway.id)
                )
                health = runtime.manager.state(thermometer.address).health()
    [reading] = temperatures(collector, gateway.id)
    assert abs(reading.measured_at - taken) < SECONDS
    assert reading.time is not None and reading.time.basis is TimeBasis.CORRECTED
    assert abs(reading.time.applied_s - 7200) < SECONDS.total_seconds()
    assert thermometer.clock_writes == []  # read-only: left as it is
    assert health.clock_set_at is None
    assert abs((health.clock_skew_s or 0) - 7200) < SECONDS.total_seconds()


async def test_a_clock_that_never_changes_for_dst_is_read_as_standard_time(
    gateway, link, mqtt_url
) -> None:
    # A July morning: the gateway and the device live in it, shifted from the real clock.
    july = clock_at(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))

    async with clocked(
        link, "thermometer", clock=ClockCharacteristic.CURRENT_TIME, follows_dst=False
    ) as thermometer:
        thermometer.clock_now = july
        gateway.pair(thermometer)
        taken = july().replace(microsecond=0) - timedelta(hours=3)  # stored since breakfast
        await thermometer.record(measurement("thermometer", {"body_temperature": 36.6}, at=taken))
        topics = topic(gateway.id, Channel.OBS), topic(gateway.id, Channel.STATUS)
        with Collector(mqtt_url, *topics) as collector:
            async with gateway.running(now=july, status_interval=0.3) as runtime:
                await asyncio.to_thread(
                    collector.wait_for, lambda m: temperatures(collector, gateway.id)
                )
                state = runtime.manager.state(thermometer.address)
                # The status says so, for the equipment page: standard time, no zone declared.
                await asyncio.to_thread(
                    collector.wait_for,
                    lambda m: (
                        clock_facts(collector, gateway.id, thermometer.address)
                        == (True, None, None)
                    ),
                )
    [reading] = temperatures(collector, gateway.id)
    # An hour behind Rome's summer time, but right as standard time: no shift, no skew flag.
    assert state.ignores_dst and thermometer.clock_writes == []
    assert abs(reading.measured_at - taken) < SECONDS
    assert "device_clock_skew" not in reading.flags
    assert reading.time is not None
    assert (reading.time.ignores_dst, reading.time.utc_offset_min, reading.time.dst) == (
        True,
        60,
        False,
    )


async def test_a_device_declaring_its_zone_and_dst_has_its_stamps_read_in_them(
    gateway, link, mqtt_url
) -> None:
    # A thermometer set in New York (UTC-5, DST +1 h in July) that says so in its Local Time
    # Information; the patient's zone is Rome's. Read in Rome's zone its clock would look six
    # hours behind: corrected and flagged. Read in the zone it declares, it is right.
    july = clock_at(datetime(2026, 7, 1, 14, 0, tzinfo=UTC))

    async with clocked(
        link,
        "thermometer",
        clock=ClockCharacteristic.CURRENT_TIME,
        local_time=True,
        timezone="America/New_York",
    ) as thermometer:
        thermometer.clock_now = july
        gateway.pair(thermometer)
        taken = july().replace(microsecond=0) - timedelta(hours=3)
        await thermometer.record(measurement("thermometer", {"body_temperature": 36.7}, at=taken))
        topics = topic(gateway.id, Channel.OBS), topic(gateway.id, Channel.STATUS)
        with Collector(mqtt_url, *topics) as collector:
            async with gateway.running(now=july, status_interval=0.3) as runtime:
                await asyncio.to_thread(
                    collector.wait_for, lambda m: temperatures(collector, gateway.id)
                )
                state = runtime.manager.state(thermometer.address)
                # The status carries the offsets it declares; what it declares is not learnt.
                await asyncio.to_thread(
                    collector.wait_for,
                    lambda m: (
                        clock_facts(collector, gateway.id, thermometer.address) == (None, -300, 60)
                    ),
                )
    [reading] = temperatures(collector, gateway.id)
    assert abs(reading.measured_at - taken) < SECONDS
    assert "device_clock_skew" not in reading.flags
    assert abs(state.clock_skew) < SECONDS and not state.ignores_dst
    time = reading.time
    assert time is not None and time.basis == TimeBasis.DEVICE
    assert (time.device_zone_min, time.device_dst_min) == (-300, 60)
    assert (time.zone, time.utc_offset_min, time.dst) == (None, -240, True)
    assert time.device_time == (taken - timedelta(hours=4)).replace(tzinfo=None).isoformat()
