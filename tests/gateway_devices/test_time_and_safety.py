"""Clock skew, gateway time, unknown devices, the watchdog and the config topic."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import paho.mqtt.publish as mqtt_publish

from firmware_sim.ble import radio
from firmware_sim.devices.oximeter import CONTINUOUS_SESSION
from gateway.pairing import PairingTable
from telemon.mqtt import BrokerAddress
from telemon.payload import GatewayConfig, PairedDevice
from telemon.payload_schema import GatewayStatusModel
from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import PATIENT, fast_options, measurement, observations


def by_metric(collector, gateway_id, metric):
    return [o for o in observations(collector.snapshot(), gateway_id) if o.metric == metric]


async def test_device_clock_skew_is_flagged(gateway, make, mqtt_url) -> None:
    ahead = await make("thermometer")
    ahead.clock_offset = timedelta(hours=2)  # a stamp in the future: wrong whatever else
    behind = await make("pulse_oximeter")
    behind.clock_offset = timedelta(hours=-3)  # a spot check is measured now: wrong clock
    gateway.pair(ahead, behind)
    now = datetime.now(UTC).replace(microsecond=0)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running() as runtime:
            await ahead.record(measurement("thermometer", {"body_temperature": 37.0}, at=now))
            await behind.record(
                measurement("pulse_oximeter", {"spo2": 96, "pulse_rate": 70}, at=now)
            )
            await asyncio.to_thread(
                collector.wait_for,
                lambda m: (
                    by_metric(collector, gateway.id, "body_temperature")
                    and by_metric(collector, gateway.id, "spo2")
                ),
            )
            skew = runtime.manager.state(ahead.address).clock_skew
            reported = runtime.manager.state(ahead.address).health().clock_skew_s
    [temperature] = by_metric(collector, gateway.id, "body_temperature")
    [spo2] = by_metric(collector, gateway.id, "spo2")
    assert "device_clock_skew" in temperature.flags and "device_clock_skew" in spo2.flags
    # Two hours ahead cannot be stored as is: corrected by the skew, the original kept.
    assert abs(temperature.measured_at - now) < timedelta(seconds=30)
    assert "device_time" in temperature.context
    assert abs(skew - timedelta(hours=2)) < timedelta(seconds=30)
    assert abs(reported - 7200) < 30  # and the gateway's status reports it
    # Three hours behind, measured now: shifted by the offset it shows (issue 19, the PHD IG's
    # coincident time stamp), flagged, the device's own stamp kept beside it.
    assert abs(spo2.measured_at - now) < timedelta(seconds=5)
    assert spo2.time is not None and spo2.time.basis == "corrected"
    assert spo2.context["device_time"] == spo2.time.device_time


async def test_readings_without_a_time_stamp_get_gateway_time(gateway, make, mqtt_url) -> None:
    oximeter = await make("pulse_oximeter")
    gateway.pair(oximeter)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running():
            await oximeter.wait_connected(10)
            async with asyncio.timeout(10):
                while not oximeter.subscribed(oximeter.continuous, indicate=False):
                    await asyncio.sleep(0.02)
            before = datetime.now(UTC)
            sample = {"spo2": 94, "pulse_rate": 81}
            await oximeter.record(measurement("pulse_oximeter", sample, session=CONTINUOUS_SESSION))
            await asyncio.to_thread(
                collector.wait_for, lambda m: by_metric(collector, gateway.id, "spo2")
            )
    [spo2] = by_metric(collector, gateway.id, "spo2")
    assert "gateway_time" in spo2.flags
    assert before - timedelta(seconds=1) <= spo2.measured_at <= datetime.now(UTC)
    assert spo2.context["source"] == "continuous"  # evicted first under disk pressure


async def test_unknown_device_is_never_connected(gateway, make, mqtt_url) -> None:
    paired = await make("thermometer")
    stranger = await make("thermometer")  # the neighbour's, advertising the same service
    connections = []
    stranger.bumble.on("connection", connections.append)
    gateway.pair(paired)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running() as runtime:
            await paired.record(measurement("thermometer", {"body_temperature": 36.8}))
            await stranger.record(measurement("thermometer", {"body_temperature": 39.0}))
            await asyncio.to_thread(
                collector.wait_for, lambda m: by_metric(collector, gateway.id, "body_temperature")
            )
            await asyncio.sleep(1.5)  # several reconnection cycles of the paired one
            assert runtime.manager.state(stranger.address) is None
    assert connections == []
    assert stranger.undelivered == 1
    assert {o.device_id for o in observations(collector.snapshot(), gateway.id)} == {paired.address}


async def test_watchdog_restarts_a_scanner_that_stopped_delivering(
    gateway, make, link, mqtt_url
) -> None:
    thermometer = await make("thermometer")
    gateway.pair(thermometer)
    options = fast_options(silence_limit=1.0, check_interval=0.2)
    status_topic = topic(gateway.id, Channel.STATUS)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS), status_topic) as collector:
        async with gateway.running(options, status_interval=0.3) as runtime:
            await thermometer.wait_connected(10)
            await thermometer.wait_disconnected(10)
            # The stack stops scanning without telling anyone (a known BlueZ failure).
            central = await radio.get_central(link)
            await central.device.stop_scanning()
            await asyncio.sleep(0.5)
            await thermometer.record(measurement("thermometer", {"body_temperature": 37.4}))
            await asyncio.to_thread(
                collector.wait_for, lambda m: by_metric(collector, gateway.id, "body_temperature")
            )
            assert runtime.manager.recovery_counts()["scanner_restart"] >= 1

            def restart_reported(messages) -> bool:
                return any(
                    m.topic == status_topic
                    and GatewayStatusModel.model_validate_json(m.payload).recoveries.get(
                        "scanner_restart", 0
                    )
                    >= 1
                    for m in messages
                )

            messages = await asyncio.to_thread(collector.wait_for, restart_reported)
    status = [
        GatewayStatusModel.model_validate_json(m.payload)
        for m in messages
        if m.topic == status_topic and b'"online"' in m.payload
    ][-1]
    assert [d.device_id for d in status.devices] == [thermometer.address]
    assert status.devices[0].battery_pct == 100 and status.devices[0].last_seen_at


async def test_config_message_changes_the_pairing_table(gateway, make, mqtt_url) -> None:
    thermometer = await make("thermometer")
    await thermometer.record(measurement("thermometer", {"body_temperature": 36.9}))
    address = BrokerAddress.parse(mqtt_url)
    config_topic = topic(gateway.id, Channel.CONFIG)
    device = PairedDevice(address=thermometer.address, kind="thermometer", patient_id=PATIENT)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running() as runtime:
            assert runtime.manager.table.devices == ()
            config = GatewayConfig(gateway_id=gateway.id, revision=3, devices=[device])
            await asyncio.to_thread(
                mqtt_publish.single,
                config_topic,
                config.encode(),
                qos=1,
                retain=True,
                hostname=address.host,
                port=address.port,
            )
            await asyncio.wait_for(runtime.manager.table_changed.wait(), 10)
            await asyncio.to_thread(
                collector.wait_for, lambda m: by_metric(collector, gateway.id, "body_temperature")
            )
            # An older revision (a stale retained message, a replay) changes nothing.
            stale = GatewayConfig(gateway_id=gateway.id, revision=2, devices=[])
            await asyncio.to_thread(
                mqtt_publish.single,
                config_topic,
                stale.encode(),
                qos=1,
                retain=True,
                hostname=address.host,
                port=address.port,
            )
            async with asyncio.timeout(10):
                while runtime.manager.recovery_counts().get("rejected_configs", 0) < 1:
                    await asyncio.sleep(0.05)
            assert runtime.manager.table.revision == 3
    # Clear the retained config from the shared broker.
    await asyncio.to_thread(
        mqtt_publish.single,
        config_topic,
        b"",
        qos=1,
        retain=True,
        hostname=address.host,
        port=address.port,
    )
    saved = PairingTable.load(gateway.state_dir)
    assert saved.revision == 3 and saved.find(thermometer.address) == device
    assert json.loads((gateway.state_dir / "pairing.json").read_text())["revision"] == 3


async def test_a_forged_config_far_ahead_is_refused_and_the_real_one_still_applies(
    gateway, make, mqtt_url
) -> None:
    """Issue 15: a retained config with revision 10**15 and no devices, applied and saved,
    stopped the gateway reading its patient's devices and made it refuse every real config."""
    thermometer = await make("thermometer")
    gateway.pair(thermometer, revision=7)
    paired = PairingTable.load(gateway.state_dir).devices

    async def publish_config(payload: bytes) -> None:
        address = BrokerAddress.parse(mqtt_url)
        await asyncio.to_thread(
            mqtt_publish.single,
            topic(gateway.id, Channel.CONFIG),
            payload,
            qos=1,
            retain=True,
            hostname=address.host,
            port=address.port,
        )

    def temperatures() -> list[float]:
        return [o.value for o in by_metric(collector, gateway.id, "body_temperature")]

    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running() as runtime:
            forged = GatewayConfig(gateway_id=gateway.id, revision=10**15, devices=[])
            await publish_config(forged.encode())
            async with asyncio.timeout(10):
                while runtime.manager.recovery_counts().get("rejected_configs", 0) < 1:
                    await asyncio.sleep(0.05)
            assert runtime.manager.table == PairingTable(7, paired)
            # ...and reported where an operator sees it: the gateway's status.
            assert runtime.uplink.status().recoveries["rejected_configs"] == 1

            # The patient's device is still read.
            await thermometer.record(measurement("thermometer", {"body_temperature": 37.4}))
            await asyncio.to_thread(collector.wait_for, lambda m: temperatures() == [37.4])

            # The server's next config applies.
            renamed = replace(paired[0], name="thermometer (kitchen)")
            real = GatewayConfig(gateway_id=gateway.id, revision=8, devices=[renamed])
            await publish_config(real.encode())
            async with asyncio.timeout(10):
                while runtime.manager.table.revision != 8:
                    await asyncio.sleep(0.05)
            await thermometer.record(measurement("thermometer", {"body_temperature": 37.1}))
            await asyncio.to_thread(collector.wait_for, lambda m: temperatures() == [37.4, 37.1])
    await publish_config(b"")  # clear the retained config from the shared broker
    assert PairingTable.load(gateway.state_dir) == PairingTable(8, (renamed,))
