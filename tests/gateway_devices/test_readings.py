"""Readings from every kind of device reach the broker exactly once, in order per device."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import measurement, observations

# The metric that identifies each reading, and values for three measurements.
PRIMARY = {
    "blood_pressure": (
        "systolic",
        [{"systolic": s, "diastolic": 80, "pulse_rate": 70} for s in (121, 132, 143)],
    ),
    "glucometer": ("glucose", [{"glucose": g} for g in (95, 140, 182)]),
    "thermometer": ("body_temperature", [{"body_temperature": t} for t in (36.5, 37.2, 38.1)]),
    "weight_scale": ("body_weight", [{"body_weight": w} for w in (81.2, 81.4, 80.9)]),
    "pulse_oximeter": ("spo2", [{"spo2": s, "pulse_rate": 72} for s in (97, 95, 93)]),
}


async def test_every_kind_arrives_once_in_order(gateway, make, mqtt_url) -> None:
    devices = {kind: await make(kind) for kind in PRIMARY}
    gateway.pair(*devices.values())
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    # The first measurement of each is taken before the gateway runs: kept by the device.
    for kind, device in devices.items():
        await device.record(measurement(kind, PRIMARY[kind][1][0], at=start))
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running():
            for n in (1, 2):
                for kind, device in devices.items():
                    at = start + timedelta(minutes=n)
                    await device.record(measurement(kind, PRIMARY[kind][1][n], at=at))
                await asyncio.sleep(0.5)

            def complete(messages) -> bool:
                seen = Counter((o.device_id, o.metric) for o in observations(messages, gateway.id))
                return all(seen[(d.address, PRIMARY[k][0])] >= 3 for k, d in devices.items())

            messages = await asyncio.to_thread(collector.wait_for, complete, 40)
            await asyncio.sleep(1.0)  # anything extra (a duplicate) would arrive by now
            messages = collector.snapshot()
    received = observations(messages, gateway.id)
    by_device = defaultdict(list)
    for obs in received:
        by_device[obs.device_id].append(obs)
    for kind, device in devices.items():
        metric, values = PRIMARY[kind]
        mine = by_device[device.address]
        primary = [o for o in mine if o.metric == metric]
        assert [round(o.value, 1) for o in primary] == [float(v[metric]) for v in values], kind
        assert [o.measured_at for o in primary] == [start + timedelta(minutes=n) for n in range(3)]
        assert [o.seq for o in mine] == sorted(o.seq for o in mine)  # in order per device
        assert all(o.patient_id == "P0001" and o.context["device_kind"] == kind for o in mine)
        assert "gateway_time" not in primary[0].flags
    assert len({o.seq for o in received}) == len(received)  # exactly once
    assert gateway.runtime.manager.recovery_counts().get("decode_errors", 0) == 0
