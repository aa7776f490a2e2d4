"""Glucose records are fetched once: across reconnections and across gateway restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

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
    assert sorted(sent) == [0, 1, 2, 3, 4, 5]  # each record left the meter once
    assert requests[0].operator is RacpOperator.ALL_RECORDS
    later = [r.operand[0] for r in requests[1:]]
    # Every later request asks from the record after the last one stored, never from earlier.
    assert later == sorted(later) and set(later) >= {3, 5}
    # The sync position lives in the outbox, committed with the record's readings.
    outbox = Outbox(gateway.state_dir / "outbox.db", gateway.id)
    assert set(outbox.state("glucose_seq:").values()) == {"5"}
    outbox.close()
    glucose = [o for o in observations(collector.snapshot(), gateway.id) if o.metric == "glucose"]
    assert all("from_device_storage" in o.flags for o in glucose)
    assert all(o.context.get("meal") == "preprandial" for o in glucose)  # context joined
