"""Real devices' quirks end to end: the gateway runtime over the bumble link picks the quirk by
what the simulated model advertises, and its readings reach the broker (gateway.quirks)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest_asyncio

from firmware_sim.ble import bumble_backend
from firmware_sim.devices import MODEL_CLASSES
from gateway.devices import ManagerOptions, discover_health_devices
from gateway.gatt.quirks import contec
from telemon.device_kinds import DeviceKind
from telemon.topics import Channel, topic
from tests.mqtt_helpers import Collector

from .conftest import FAST_PROFILES, fast_options, measurement, observations


@pytest_asyncio.fixture(loop_scope="function")
async def make_model(link):
    started = []

    async def start(model: str, **options):
        device = MODEL_CLASSES[model](link, **options)
        started.append(device)
        await device.start()
        return device

    yield start
    for device in started:
        await device.stop()


def streaming_options() -> ManagerOptions:
    # A stream that pauses between the test's samples must not end the session meanwhile.
    oximeter = replace(FAST_PROFILES[DeviceKind.PULSE_OXIMETER], idle_timeout=5.0)
    return replace(fast_options(), profiles={**FAST_PROFILES, oximeter.kind: oximeter})


def of(collector, gateway_id, metric):
    return [o for o in observations(collector.snapshot(), gateway_id) if o.metric == metric]


async def until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


def sample(spo2: int, pulse_rate: int):
    return measurement(
        "pulse_oximeter", {"spo2": spo2, "pulse_rate": pulse_rate}, session="continuous"
    )


async def test_beurer_bm85_readings_arrive(gateway, make_model, mqtt_url) -> None:
    cuff = await make_model("beurer_bm85")
    assert cuff.name == "BM85"
    gateway.pair(cuff)
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    values = {"systolic": 141, "diastolic": 88, "pulse_rate": 76}
    await cuff.record(measurement("blood_pressure", values, at=at))
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running() as runtime:
            await asyncio.to_thread(
                collector.wait_for, lambda _m: len(of(collector, gateway.id, "pulse_rate")) >= 1
            )
            await asyncio.sleep(0.5)
            errors = runtime.manager.recovery_counts().get("decode_errors", 0)
    received = observations(collector.snapshot(), gateway.id)
    assert {o.metric: o.value for o in received} == values  # MAP 0 is no reading
    assert {o.measured_at for o in received} == {at}  # the cuff's own time stamp
    assert all(o.device_id == cuff.address for o in received)
    assert errors == 0
    assert cuff.undelivered == 0


async def test_contec_stream_after_the_start_command(gateway, make_model, mqtt_url) -> None:
    oximeter = await make_model("contec_cms50d_bt")
    gateway.pair(oximeter)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running(streaming_options()) as runtime:
            await until(lambda: oximeter.streaming)  # subscribed, and the commands written
            assert oximeter.commands[:2] == [contec.PREPARE_REALTIME, contec.START_REALTIME]
            assert await oximeter.send_waveform()  # pleth only: no reading
            for spo2 in (95, 96, 97):  # faster than the 1 Hz kept: only the first stored
                await oximeter.record(sample(spo2, 70))
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.2)
            await oximeter.record(sample(98, 72))
            assert await oximeter.finger_out()
            await asyncio.to_thread(
                collector.wait_for, lambda _m: len(of(collector, gateway.id, "spo2")) >= 2
            )
            await asyncio.sleep(0.5)  # a reading from the waveform or finger out would be here
            errors = runtime.manager.recovery_counts().get("decode_errors", 0)
    spo2 = of(collector, gateway.id, "spo2")
    pulse = of(collector, gateway.id, "pulse_rate")
    assert [o.value for o in spo2] == [95, 98]
    assert [o.value for o in pulse] == [70, 72]
    assert all(o.context["source"] == "continuous" for o in spo2 + pulse)
    assert all(o.context["device_protocol"] == "contec_cms50d_bt" for o in spo2)
    assert all("gateway_time" in o.flags for o in spo2)
    assert errors == 0


async def test_contec_frames_split_across_notifications_are_joined(
    gateway, make_model, mqtt_url
) -> None:
    # Notifications of 9 bytes: every sample's values frame straddles two of them, and the
    # stream's last bytes wait for the next sample, as on the device.
    oximeter = await make_model("contec_cms50d_bt", notification_size=9)
    gateway.pair(oximeter)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running(streaming_options()) as runtime:
            await until(lambda: oximeter.streaming)
            await oximeter.record(sample(95, 70))
            await asyncio.sleep(1.2)
            await oximeter.record(sample(98, 72))  # completes 95's values frame
            await asyncio.sleep(1.2)
            assert await oximeter.finger_out()  # completes 98's; its own values frame waits
            await asyncio.to_thread(
                collector.wait_for, lambda _m: len(of(collector, gateway.id, "spo2")) >= 2
            )
            await asyncio.sleep(0.5)
            errors_streaming = runtime.manager.recovery_counts().get("decode_errors", 0)
        rejected = runtime.manager.rejected.entries()
    assert [o.value for o in of(collector, gateway.id, "spo2")] == [95, 98]
    assert [o.value for o in of(collector, gateway.id, "pulse_rate")] == [70, 72]
    assert errors_streaming == 0
    # The fragment the link's end left incomplete: dropped, counted and logged, not silently.
    [left] = rejected
    assert left["characteristic"] == "contec_cms50d_bt stream"
    assert "the stream ended" in left["error"] and left["payload_hex"].startswith("eb01")


async def test_berrymed_stream_rejects_bad_bytes_and_keeps_good(
    gateway, make_model, mqtt_url
) -> None:
    oximeter = await make_model("berrymed_bci")
    gateway.pair(oximeter)
    with Collector(mqtt_url, topic(gateway.id, Channel.OBS)) as collector:
        async with gateway.running(streaming_options()) as runtime:
            await until(lambda: oximeter.streaming)
            assert await oximeter.send(bytes.fromhex("88 28 42 02 60 88 28"))  # split packet
            await oximeter.record(sample(93, 131))  # pulse above 127: bit 7 in byte 2
            await asyncio.sleep(1.2)
            assert await oximeter.finger_out()
            await asyncio.to_thread(
                collector.wait_for, lambda _m: len(of(collector, gateway.id, "pulse_rate")) >= 1
            )
            await asyncio.sleep(0.5)
            rejected = runtime.manager.rejected.entries()
            errors = runtime.manager.recovery_counts().get("decode_errors", 0)
            state = runtime.manager.state(oximeter.address)
    assert [o.value for o in of(collector, gateway.id, "spo2")] == [93]
    assert [o.value for o in of(collector, gateway.id, "pulse_rate")] == [131]
    assert errors == 1 and state.decode_errors == 1
    [entry] = rejected
    assert entry["characteristic"] == "berrymed_bci stream"
    assert entry["payload_hex"] == "8828420260" + "8828"
    assert "not whole 5-byte packets" in entry["error"]
    assert state.information["manufacturer_name"] == "BerryMed"  # Device Information still read


async def test_discovery_lists_models_without_their_profile_service(link, make_model) -> None:
    berrymed = await make_model("berrymed_bci")
    cms50d = await make_model("contec_cms50d_bt")
    found = await discover_health_devices(1.0, backend=bumble_backend(link).scanner)
    kinds = {d.address: (d.kind, d.name) for d in found}
    assert kinds[berrymed.address.upper()] == (DeviceKind.PULSE_OXIMETER, "BerryMed")
    assert kinds[cms50d.address.upper()] == (DeviceKind.PULSE_OXIMETER, "SpO2080971")
