"""Glucose records are fetched once: across reconnections and across gateway restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.devices.recovery import GLUCOSE_RESTARTS
from gateway.gatt import RacpOperator
from gateway.outbox import Outbox
from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import measurement, observations

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def spy_on_store(meter):
    """Record each RACP selection the meter answers and the records it sends back."""
    requests, sent = [], []
    select = meter.store.select

    def counting_select(request):
        records = select(request)
        requests.append(request)
        sent.extend(r.sequence_number for r in records)
        return records

    meter.store.select = counting_select
    return requests, sent


async def record(meter, n: int) -> None:
    for i in range(n):
        at = START + timedelta(minutes=len(meter.store) * 10 + i)
        await meter.record(
            measurement(
                "glucometer", {"glucose": 90 + len(meter.store)}, at=at, session="before_lunch"
            )
        )


def glucose_seqs(collector, gateway_id) -> list[int]:
    return [
        int(o.context["sequence_number"])
        for o in observations(collector.snapshot(), gateway_id)
        if o.metric == "glucose"
    ]


async def test_records_are_never_fetched_twice(gateway, make, mqtt_url) -> None:
    meter = await make("glucometer")
    requests, sent = spy_on_store(meter)
    gateway.pair(meter)
    await record(meter, 3)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running():
            await asyncio.to_thread(
                collector.wait_for, lambda m: len(glucose_seqs(collector, gateway.id)) >= 3
            )
            await meter.wait_disconnected(10)
            # Reconnections follow (the meter advertises again); new records only come once.
            await record(meter, 2)
            await asyncio.to_thread(
                collector.wait_for, lambda m: len(glucose_seqs(collector, gateway.id)) >= 5
            )
        # A new gateway process on the same state directory.
        await record(meter, 1)
        async with gateway.running():
            await asyncio.to_thread(
                collector.wait_for, lambda m: len(glucose_seqs(collector, gateway.id)) >= 6
            )
            await asyncio.sleep(1.0)
    assert glucose_seqs(collector, gateway.id) == [0, 1, 2, 3, 4, 5]
    # Each record left the meter once, but for the last one stored at each connection: the
    # anchor the meter must send again to show its numbering has not restarted.
    assert set(sent) == {0, 1, 2, 3, 4, 5} and sent.count(0) == sent.count(1) == 1
    assert requests[0].operator is RacpOperator.ALL_RECORDS
    later = [r.operand[0] for r in requests[1:]]
    # Every later request asks from the last record stored, never from earlier.
    assert later == sorted(later) and set(later) >= {2, 4}
    # The sync position lives in the outbox, committed with the record's readings.
    outbox = Outbox(gateway.state_dir / "outbox.db", gateway.id)
    assert set(outbox.state("glucose_seq:").values()) == {"5"}
    outbox.close()
    glucose = [o for o in observations(collector.snapshot(), gateway.id) if o.metric == "glucose"]
    assert all("from_device_storage" in o.flags for o in glucose)
    assert all(o.context.get("meal") == "preprandial" for o in glucose)  # context joined


async def record_later(meter, n: int) -> None:
    """``n`` records unlike those of :func:`record`: other values, an hour later."""
    for i in range(n):
        await meter.record(
            measurement(
                "glucometer",
                {"glucose": 150 + i},
                at=START + timedelta(hours=1, minutes=i),
                session="before_lunch",
            )
        )


async def _synced(collector, gateway, n: int) -> None:
    await asyncio.to_thread(
        collector.wait_for, lambda m: len(glucose_seqs(collector, gateway.id)) >= n
    )


def glucose_values(collector, gateway_id) -> list[float]:
    return [
        round(o.value)
        for o in observations(collector.snapshot(), gateway_id)
        if o.metric == "glucose"
    ]


async def test_a_meter_whose_numbering_restarts_lower_is_read_again(gateway, make, mqtt_url):
    """Reset: the memory wiped, numbers from 0 again, fewer records than the gateway had."""
    meter = await make("glucometer")
    gateway.pair(meter)
    await record(meter, 5)  # 0-4, glucose 90-94
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running() as runtime:
            await _synced(collector, gateway, 5)
            await meter.wait_disconnected(10)
            meter.store.restart_numbering()
            await record_later(meter, 2)  # 0-1 again: glucose 150-151, an hour later
            await _synced(collector, gateway, 7)
            await asyncio.sleep(1.0)
            restarts = runtime.manager.recoveries[GLUCOSE_RESTARTS]
    assert glucose_seqs(collector, gateway.id) == [0, 1, 2, 3, 4, 0, 1]
    assert restarts >= 1


async def test_a_restarted_meter_past_the_old_numbers_loses_and_repeats_nothing(
    gateway, make, mqtt_url
):
    """Reset, then more records than before: the number the gateway stored last names another
    record now; the records below it are read, and the ones read twice stored once."""
    meter = await make("glucometer")
    gateway.pair(meter)
    await record(meter, 3)  # 0-2
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running():
            await _synced(collector, gateway, 3)
            await meter.wait_disconnected(10)
            meter.store.restart_numbering()
            await record_later(meter, 5)  # 0-4 again: glucose 150-154, an hour later
            await _synced(collector, gateway, 8)
            await asyncio.sleep(1.5)
        outbox = Outbox(gateway.state_dir / "outbox.db", gateway.id)
        resent = outbox.stats().duplicates
        outbox.close()
    assert sorted(glucose_values(collector, gateway.id)) == [90, 91, 92, 150, 151, 152, 153, 154]
    assert resent >= 3  # records 2-4 came twice: in the anchored answer and in the whole memory
