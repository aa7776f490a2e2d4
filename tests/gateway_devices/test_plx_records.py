"""Stored PLX spot checks (issue 19): an oximeter that measured out of the gateway's reach keeps
its spot checks, and the gateway reads them through the Record Access Control Point."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.gatt import RacpOpCode, decode_plx_spot_check
from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import measurement, observations

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
COUNT_ALL, REPORT_ALL, DELETE_ALL = bytes((4, 1)), bytes((1, 1)), bytes((2, 1))


async def take_spot_checks(oximeter, n: int, first: int = 0) -> list[datetime]:
    moments = []
    for i in range(first, first + n):
        at = START + timedelta(minutes=20 * i)
        await oximeter.record(
            measurement("pulse_oximeter", {"spo2": 90 + i, "pulse_rate": 60 + i}, at=at)
        )
        moments.append(at)
    return moments


def spo2(collector, gateway_id):
    return [o for o in observations(collector.snapshot(), gateway_id) if o.metric == "spo2"]


async def test_stored_spot_checks_are_fetched_marked_and_deleted(gateway, make, mqtt_url) -> None:
    oximeter = await make("pulse_oximeter", memory=50)
    gateway.pair(oximeter)
    # Not connected: each spot check goes into memory, with "Data from Measurement Storage".
    moments = await take_spot_checks(oximeter, 3)
    assert len(oximeter.memory) == 3
    stored = decode_plx_spot_check(oximeter.memory.all()[0])
    assert stored.timestamp is not None and stored.measurement_status is not None
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running():
            await asyncio.to_thread(
                collector.wait_for, lambda m: len(spo2(collector, gateway.id)) >= 3
            )
            await asyncio.to_thread(collector.wait_for, lambda m: len(oximeter.memory) == 0)
        assert oximeter.racp_requests[:3] == [COUNT_ALL, REPORT_ALL, DELETE_ALL]
        # A new gateway process: the oximeter's memory is empty, nothing comes twice.
        await take_spot_checks(oximeter, 1, first=3)
        async with gateway.running():
            await asyncio.to_thread(
                collector.wait_for, lambda m: len(spo2(collector, gateway.id)) >= 4
            )
            await asyncio.sleep(1.0)
    readings = spo2(collector, gateway.id)
    assert [o.value for o in readings] == [90, 91, 92, 93]
    assert [o.measured_at for o in readings] == [*moments, START + timedelta(minutes=60)]
    assert all("from_device_storage" in o.flags for o in readings)
    pulse = [o for o in observations(collector.snapshot(), gateway.id) if o.metric == "pulse_rate"]
    assert [o.value for o in pulse] == [60, 61, 62, 63]
    assert all(o.context["plx_mode"] == "spot_check" for o in readings)
    assert len(oximeter.memory) == 0
    assert oximeter.racp_requests.count(DELETE_ALL) == 2


async def test_a_unit_that_keeps_its_records_gives_each_once(gateway, make, mqtt_url) -> None:
    oximeter = await make(
        "pulse_oximeter",
        memory=50,
        racp_op_codes=frozenset(
            {
                RacpOpCode.REPORT_STORED_RECORDS,
                RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
                RacpOpCode.ABORT_OPERATION,
            }
        ),
    )
    gateway.pair(oximeter)
    await take_spot_checks(oximeter, 2)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running():
            await asyncio.to_thread(
                collector.wait_for, lambda m: len(spo2(collector, gateway.id)) >= 2
            )
            # The next sessions report the same two records again; none is stored twice.
            await asyncio.to_thread(
                collector.wait_for, lambda m: oximeter.racp_requests.count(REPORT_ALL) >= 3
            )
            await asyncio.sleep(0.5)
    assert [o.value for o in spo2(collector, gateway.id)] == [90, 91]
    assert len(oximeter.memory) == 2
    # Asked once whether it deletes (Op Code not supported), never again.
    assert oximeter.racp_requests.count(DELETE_ALL) == 1


async def test_a_unit_without_memory_gets_no_racp_request(gateway, make, mqtt_url) -> None:
    oximeter = await make("pulse_oximeter")
    gateway.pair(oximeter)
    await take_spot_checks(oximeter, 1)  # in range, not connected: held until indicated
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running():
            await asyncio.to_thread(
                collector.wait_for, lambda m: len(spo2(collector, gateway.id)) >= 1
            )
    (reading,) = spo2(collector, gateway.id)
    assert reading.value == 90
    assert oximeter.memory is None and oximeter.racp_requests == []
