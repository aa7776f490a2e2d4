"""A spot device that keeps advertising once read is reconnected less and less often, and at once
when it shows something new (its advertising data changes) or comes back (issue 19, footprint).

The real runtime over the bumble link; the simulated devices advertise a new-data counter in
their service data, as many real ones flag new data in their advertising.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from firmware_sim.devices.oximeter import CONTINUOUS_SESSION
from gateway.devices.backoff import idle_wait
from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import fast_options, measurement, observations

WAITS = (0.2, 1.0, 60.0)


def backing_off():
    return replace(fast_options(), reconnect_waits=WAITS, absent_after=1.5)


def test_the_wait_grows_with_each_empty_session_by_the_table() -> None:
    waits = (5.0, 30.0, 120.0, 300.0)
    assert [idle_wait(waits, n) for n in range(7)] == [5, 5, 30, 120, 300, 300, 300]


def temperatures(collector, gateway_id):
    return [
        o for o in observations(collector.snapshot(), gateway_id) if o.metric == "body_temperature"
    ]


async def until(condition, timeout: float = 15.0) -> float:
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_an_always_advertising_device_is_reconnected_less_often_until_it_has_news(
    gateway, make, mqtt_url
) -> None:
    thermometer = await make("thermometer")  # advertises whenever not connected
    gateway.pair(thermometer)
    await thermometer.record(measurement("thermometer", {"body_temperature": 36.8}))
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running(backing_off()) as runtime:
            state = None

            def sessions() -> int:
                nonlocal state
                state = state or runtime.manager.state(thermometer.address)
                return state.sessions

            await until(lambda: len(temperatures(collector, gateway.id)) == 1)
            # One session with the reading, then empty ones: 0.2 s, 0.2 s, 1 s, then 60 s.
            await until(lambda: sessions() == 4 and not thermometer.connected)
            settled = sessions()
            await asyncio.sleep(3.0)  # three idle timeouts and more: no session meanwhile
            assert sessions() == settled

            # A new reading: its advertising's new-data counter changes; read at once.
            await thermometer.record(measurement("thermometer", {"body_temperature": 37.9}))
            took = await until(lambda: len(temperatures(collector, gateway.id)) == 2)
            assert took < 5.0
            await until(lambda: not thermometer.connected and sessions() == settled + 1)

            # Back to the longest wait (the session with the reading, then three empty ones)...
            await until(lambda: sessions() == settled + 4 and not thermometer.connected)
            await asyncio.sleep(1.5)
            assert sessions() == settled + 4
            # ...which its going away (out of range) longer than absent_after and coming back
            # cuts short.
            await thermometer.set_in_range(False)
            await asyncio.sleep(2.0)
            await thermometer.set_in_range(True)
            took = await until(lambda: sessions() == settled + 5)
            assert took < 5.0
    assert [o.value for o in temperatures(collector, gateway.id)] == [36.8, 37.9]


async def test_an_oximeter_not_yet_worn_is_not_backed_off(gateway, make, mqtt_url) -> None:
    # Advertising and streaming nothing (not worn): each session is empty, yet the next follows
    # after the first wait; a cuff would be in its 60 s wait after its fourth. Once put on, the
    # oximeter is read at once.
    oximeter = await make("pulse_oximeter")
    gateway.pair(oximeter)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running(backing_off()) as runtime:
            state = runtime.manager.state(oximeter.address)
            await until(lambda: state.sessions >= 6 and state.connected, timeout=20.0)
            await until(lambda: oximeter.subscribed(oximeter.continuous, indicate=False))
            sample = {"spo2": 95, "pulse_rate": 72}
            await oximeter.record(measurement("pulse_oximeter", sample, session=CONTINUOUS_SESSION))
            await asyncio.to_thread(collector.wait_for, lambda _m: spo2(collector, gateway.id))
    assert [o.value for o in spo2(collector, gateway.id)] == [95]


def spo2(collector, gateway_id):
    return [o for o in observations(collector.snapshot(), gateway_id) if o.metric == "spo2"]
