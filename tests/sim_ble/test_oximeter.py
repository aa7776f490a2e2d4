"""The oximeter: spot checks indicated, continuous frames notified each simulated second."""

from __future__ import annotations

from datetime import timedelta

from firmware_sim.clock import SteppedClock
from firmware_sim.devices import SimulatedOximeter
from firmware_sim.devices.oximeter import FEATURES_VALUE
from gateway.gatt import decode_all
from telemon.device_kinds import DeviceKind

from .central import Inbox, assert_delivered, connect, uuid
from .conftest import patient_model, readings_of

OXIMETER = DeviceKind.PULSE_OXIMETER
SPOT_CHECK = uuid(0x2A5E)
CONTINUOUS = uuid(0x2A5F)
FEATURES = uuid(0x2A60)


async def test_spot_check_is_kept_until_a_central_takes_it(link, make) -> None:
    oximeter = await make(OXIMETER)
    first, second = readings_of(OXIMETER, 2)
    await oximeter.record(first)
    client = await connect(link, oximeter)
    assert await client.read_gatt_char(FEATURES) == bytearray(FEATURES_VALUE)
    inbox = Inbox()
    await client.start_notify(SPOT_CHECK, inbox)
    (readings,) = await inbox.readings(1)
    assert_delivered(readings, first, oximeter)
    assert readings[0].context["plx_mode"] == "spot_check"
    await oximeter.record(second)  # while connected: indicated straight away
    (readings,) = await inbox.readings(1)
    assert_delivered(readings, second, oximeter)
    await client.disconnect()


async def test_finger_out_spot_check_has_status_and_no_value(link, make) -> None:
    oximeter = await make(OXIMETER)
    (finger_out,) = readings_of(OXIMETER, 1, "sensor_problems", flagged=True)
    assert not finger_out.values
    await oximeter.record(finger_out)
    client = await connect(link, oximeter)
    inbox = Inbox()
    await client.start_notify(SPOT_CHECK, inbox)
    decoded = decode_all(*await inbox.next())
    assert decoded.readings == ()
    assert {skip.field for skip in decoded.skipped} == {"spo2", "pulse_rate"}
    assert decoded.record.device_sensor_status.name == "SENSOR_UNCONNECTED_TO_USER"
    await client.disconnect()


async def test_continuous_frames_each_simulated_second_while_worn(link, make) -> None:
    model = patient_model()
    start = model.origin + timedelta(hours=23)
    clock = SteppedClock(start)
    oximeter: SimulatedOximeter = await make(OXIMETER)
    client = await connect(link, oximeter)
    inbox = Inbox()
    await client.start_notify(CONTINUOUS, inbox)

    def sample(t):
        return model.reading_at(OXIMETER, t, "continuous")

    oximeter.set_worn(True)
    oximeter.start_continuous(sample, clock)
    for second in range(3):
        (readings,) = await inbox.readings(1)
        measurement = sample(start + timedelta(seconds=second))
        assert {r.metric: r.value for r in readings} == dict(measurement.values)
        assert readings[0].measured_at is None  # continuous frames carry no time stamp
        await clock.run_until(start + timedelta(seconds=second + 1))

    oximeter.set_worn(False)
    await clock.run_until(start + timedelta(seconds=4))
    frames = [decode_all(*await inbox.next()) for _ in range(2)]
    assert frames[0].readings  # the frame of second 3 was already due while worn
    finger_out = frames[1]
    assert finger_out.readings == ()
    assert finger_out.record.device_sensor_status.name == "SENSOR_UNCONNECTED_TO_USER"
    oximeter.stop_continuous()
    await client.disconnect()


async def test_no_memory_out_of_range(link, make) -> None:
    oximeter = await make(OXIMETER)
    lost, kept = readings_of(OXIMETER, 2)
    await oximeter.record(lost)
    await oximeter.set_in_range(False)
    assert oximeter.undelivered == 0
    await oximeter.set_in_range(True)
    await oximeter.record(kept)
    client = await connect(link, oximeter)
    inbox = Inbox()
    await client.start_notify(SPOT_CHECK, inbox)
    (readings,) = await inbox.readings(1)
    assert_delivered(readings, kept, oximeter)
    await client.disconnect()
