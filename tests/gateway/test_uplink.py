"""The uplink against real brokers: exactly once, in order, across broker and gateway crashes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import paho.mqtt.publish as mqtt_publish

from gateway.identity import GatewayIdentity
from gateway.outbox import Outbox
from gateway.uplink import Uplink
from telemon.observation import Observation
from telemon.payload import GatewayConfig, PairedDevice
from telemon.payload_schema import GatewayStatusModel
from telemon.topics import Channel, topic
from tests.brokers import MosquittoProcess
from tests.mqtt_helpers import Collector, received_seqs
from tests.waiting import wait_until

T0 = datetime.now(UTC) - timedelta(hours=1)


def readings(n: int, start: int = 0) -> list[Observation]:
    return [
        Observation(
            gateway_id="x",
            seq=0,
            device_id="C0:FF:EE:00:00:01",
            patient_id="P0001",
            metric="pulse_rate",
            value=50 + (start + i) % 60,
            unit="/min",
            measured_at=T0 + timedelta(seconds=start + i),
        )
        for i in range(n)
    ]


@asynccontextmanager
async def running(uplink: Uplink):
    stop = asyncio.Event()
    task = asyncio.create_task(uplink.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def new_gateway(tmp_path, url: str, **uplink_options) -> tuple[GatewayIdentity, Outbox, Uplink]:
    identity = GatewayIdentity(
        gateway_id=f"gw-{uuid.uuid4().hex[:10]}", patient_id="P0001", mqtt_url=url
    )
    outbox = Outbox(tmp_path / "outbox.db", identity.gateway_id)
    return identity, outbox, Uplink(identity, outbox, **uplink_options)


async def test_every_observation_arrives_once_in_order_then_status_goes_offline(tmp_path, mqtt_url):
    identity, outbox, uplink = new_gateway(tmp_path, mqtt_url, batch_size=50)
    gw = identity.gateway_id
    with Collector(mqtt_url, topic(gw, Channel.OBS), topic(gw, Channel.STATUS)) as collector:
        async with running(uplink):
            for chunk in range(10):
                outbox.append(readings(100, start=chunk * 100))
                uplink.notify_new_data()
            await asyncio.to_thread(collector.wait_for, lambda m: len(received_seqs(m, gw)) >= 1000)
            await asyncio.to_thread(wait_until, lambda: outbox.stats().depth == 0)
        messages = await asyncio.to_thread(
            collector.wait_for,
            lambda m: m[-1].topic.endswith("/status") and b'"offline"' in m[-1].payload,
        )
    assert received_seqs(messages, gw) == list(range(1, 1001))
    statuses = [
        GatewayStatusModel.model_validate_json(m.payload)
        for m in messages
        if m.topic.endswith("/status")
    ]
    assert statuses[0].state == "online" and statuses[0].version
    assert statuses[-1].state == "offline"
    assert uplink.counters.acknowledged_observations == 1000


async def test_broker_restart_mid_stream_loses_nothing(tmp_path):
    broker = MosquittoProcess(tmp_path / "broker")
    url = broker.start()
    try:
        identity, outbox, uplink = new_gateway(tmp_path, url, batch_size=20, window=4)
        gw = identity.gateway_id
        with Collector(url, topic(gw, Channel.OBS), persistent=True) as collector:
            async with running(uplink):
                outbox.append(readings(400))
                uplink.notify_new_data()
                await asyncio.to_thread(
                    collector.wait_for, lambda m: len(received_seqs(m, gw)) >= 100
                )
                broker.stop()  # mid-stream: the gateway keeps reading devices meanwhile
                outbox.append(readings(300, start=400))
                await asyncio.sleep(1.5)
                broker.start()
                await asyncio.to_thread(wait_until, lambda: outbox.stats().depth == 0, 30)
                seqs = await asyncio.to_thread(
                    collector.wait_for, lambda m: set(received_seqs(m, gw)) >= set(range(1, 701))
                )
        seqs = received_seqs(seqs, gw)
        assert set(seqs) == set(range(1, 701))  # nothing lost
        assert uplink.counters.connects >= 2
    finally:
        broker.stop()


async def test_a_batch_nobody_was_subscribed_for_stays_in_the_outbox_until_someone_is(tmp_path):
    # Mosquitto answers "No matching subscribers" and forgets the message; after its own restart
    # it has no shared subscription until the ingest workers subscribe again.
    broker = MosquittoProcess(tmp_path / "broker")
    url = broker.start()
    try:
        identity, outbox, uplink = new_gateway(tmp_path, url, batch_size=20, window=4)
        gw = identity.gateway_id
        async with running(uplink):
            outbox.append(readings(50))
            uplink.notify_new_data()
            await asyncio.to_thread(wait_until, lambda: uplink.counters.unrouted_batches >= 1, 10)
            assert outbox.stats().depth == 50
            shared = f"$share/ingest/{topic(gw, Channel.OBS)}"
            with Collector(url, shared, persistent=True) as collector:
                messages = await asyncio.to_thread(
                    collector.wait_for, lambda m: set(received_seqs(m, gw)) >= set(range(1, 51))
                )
                await asyncio.to_thread(wait_until, lambda: outbox.stats().depth == 0, 10)
        assert sorted(set(received_seqs(messages, gw))) == list(range(1, 51))
        assert uplink.counters.acknowledged_observations == 50
    finally:
        broker.stop()


GATEWAY_PROCESS = """
import asyncio, sys
from pathlib import Path
from gateway.identity import GatewayIdentity
from gateway.outbox import Outbox
from gateway.uplink import Uplink

identity = GatewayIdentity.load(Path(sys.argv[1]))
outbox = Outbox(Path(sys.argv[1]) / "outbox.db", identity.gateway_id)
uplink = Uplink(identity, outbox, batch_size=10, window=2)
asyncio.run(uplink.run(asyncio.Event()))
"""


def test_gateway_killed_mid_publish_and_restarted_loses_nothing(tmp_path, mqtt_url):
    identity = GatewayIdentity(
        gateway_id=f"gw-{uuid.uuid4().hex[:10]}", patient_id="P0001", mqtt_url=mqtt_url
    )
    identity.save(tmp_path)
    outbox = Outbox(tmp_path / "outbox.db", identity.gateway_id)
    outbox.append(readings(3000))
    outbox.close()
    gw = identity.gateway_id

    def start():
        return subprocess.Popen(
            [sys.executable, "-c", GATEWAY_PROCESS, str(tmp_path)], env=os.environ.copy()
        )

    with Collector(mqtt_url, topic(gw, Channel.OBS), persistent=True) as collector:
        for kill_after in (300, 1200, 2100):
            process = start()
            collector.wait_for(lambda m, n=kill_after: len(set(received_seqs(m, gw))) >= n, 60)
            process.send_signal(signal.SIGKILL)
            process.wait()
        process = start()
        try:
            messages = collector.wait_for(
                lambda m: set(received_seqs(m, gw)) >= set(range(1, 3001)), 60
            )
        finally:
            process.terminate()
            process.wait(15)
    seqs = received_seqs(messages, gw)
    assert set(seqs) == set(range(1, 3001))
    # Duplicates only as re-sent sequence numbers, each a batch in flight at a kill.
    assert len(seqs) - 3000 <= 3 * 2 * 10


async def test_config_from_the_server_is_applied_and_bad_config_ignored(tmp_path, mqtt_url):
    applied: list[GatewayConfig] = []
    identity, _, uplink = new_gateway(tmp_path, mqtt_url, on_config=applied.append)
    config_topic = topic(identity.gateway_id, Channel.CONFIG)
    config = GatewayConfig(
        gateway_id=identity.gateway_id,
        revision=3,
        devices=[
            PairedDevice(address="C0:FF:EE:00:00:01", kind="pulse_oximeter", patient_id="P0001")
        ],
    )
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    async with running(uplink):
        await asyncio.to_thread(wait_until, lambda: uplink.counters.connects == 1)
        for payload in (b"{not json", json.dumps({"v": 1}).encode(), config.encode()):
            mqtt_publish.single(config_topic, payload, qos=1, hostname=host, port=int(port))
        await asyncio.to_thread(wait_until, lambda: applied, 10)
    assert applied == [config]
    assert uplink.counters.rejected_configs == 2
