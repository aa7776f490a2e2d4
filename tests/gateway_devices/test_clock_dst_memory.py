"""A clock that never changes for DST is remembered across connections and a gateway restart
(issue 19), over bumble with the real runtime and broker.

In July the thermometer (no clock characteristic) shows Rome's standard time. A reading measured
while connected teaches the gateway so; after a restart, the stored reading it sends first, which
teaches nothing about the clock, is still read as standard time.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from firmware_sim.devices.factory import DEVICE_CLASSES
from gateway.devices.clock_memory import ClockMemory
from gateway.outbox import Outbox
from telemon.device_kinds import DeviceKind
from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import FAST_PROFILES, clock_at, fast_options, measurement, observations

SECONDS = timedelta(seconds=20)


def lingering():
    # Long enough to still be connected when a reading measured now arrives (the session's
    # settle time is 3 s: before it, a value may be a stored one).
    profile = replace(FAST_PROFILES[DeviceKind.THERMOMETER], idle_timeout=6.0)
    return replace(fast_options(), profiles={**FAST_PROFILES, profile.kind: profile})


def temperatures(collector, gateway_id):
    return [
        o for o in observations(collector.snapshot(), gateway_id) if o.metric == "body_temperature"
    ]


async def test_a_dst_ignoring_clock_is_remembered_across_a_restart(gateway, link, mqtt_url):
    july = clock_at(datetime(2026, 7, 1, 8, 0, tzinfo=UTC))

    thermometer = DEVICE_CLASSES[DeviceKind.THERMOMETER](link, follows_dst=False)
    thermometer.clock_now = july
    await thermometer.start()
    try:
        gateway.pair(thermometer)
        with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
            async with gateway.running(lingering(), now=july) as runtime:
                await thermometer.wait_connected(10)
                await asyncio.sleep(3.5)
                now = july().replace(microsecond=0)
                await thermometer.record(
                    measurement("thermometer", {"body_temperature": 36.9}, at=now)
                )
                await asyncio.to_thread(
                    collector.wait_for, lambda _m: temperatures(collector, gateway.id)
                )
                learnt = runtime.manager.state(thermometer.address).ignores_dst
            await thermometer.wait_disconnected(10)
            assert learnt
            # Measured three hours ago, stored: it reaches the restarted gateway first.
            taken = july().replace(microsecond=0) - timedelta(hours=3)
            await thermometer.record(
                measurement("thermometer", {"body_temperature": 37.4}, at=taken)
            )
            async with gateway.running(lingering(), now=july) as runtime:
                await asyncio.to_thread(
                    collector.wait_for, lambda _m: len(temperatures(collector, gateway.id)) == 2
                )
                remembered = runtime.manager.state(thermometer.address).ignores_dst
                # And its status says so from the start, for the equipment page.
                reported = runtime.manager.state(thermometer.address).health().clock_ignores_dst
    finally:
        await thermometer.stop()
    first, stored = temperatures(collector, gateway.id)
    assert abs(first.measured_at - now) < SECONDS
    assert remembered and reported is True
    # Read as standard time, as learnt before the restart: not an hour early.
    assert abs(stored.measured_at - taken) < SECONDS
    assert stored.time is not None
    assert (stored.time.ignores_dst, stored.time.utc_offset_min, stored.time.dst) == (
        True,
        60,
        False,
    )
    assert "device_clock_skew" not in stored.flags


def test_the_memory_changes_only_when_the_clock_is_seen_otherwise(tmp_path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", "gw-test")
    memory = ClockMemory(outbox)
    assert memory.ignores_dst("aa:bb:cc:dd:ee:ff") is None  # nothing learnt yet
    memory.remember("aa:bb:cc:dd:ee:ff", True)
    assert ClockMemory(outbox).ignores_dst("AA:BB:CC:DD:EE:FF") is True  # as a restart reads it
    memory.remember("AA:BB:CC:DD:EE:FF", False)  # seen following DST again
    assert ClockMemory(outbox).ignores_dst("AA:BB:CC:DD:EE:FF") is False
    assert outbox.state(ClockMemory.PREFIX) == {"clock_ignores_dst:AA:BB:CC:DD:EE:FF": "0"}
    memory.remember("AA:BB:CC:DD:EE:FF", None)  # the gateway set the clock: known no more
    assert ClockMemory(outbox).ignores_dst("AA:BB:CC:DD:EE:FF") is None
    outbox.close()
