"""The cuff: stored readings indicated once, in order, after each connection; idle hang-up."""

from __future__ import annotations

from datetime import timedelta

from firmware_sim.devices import SimulatedBloodPressureCuff
from gateway.gatt import decode_all
from telemon.device_kinds import DeviceKind

from .central import Inbox, assert_delivered, connect, uuid
from .conftest import readings_of

BP = DeviceKind.BLOOD_PRESSURE
MEASUREMENT = uuid(0x2A35)
CUFF_PRESSURE = uuid(0x2A36)


async def test_stored_readings_arrive_in_order_once_across_reconnects(link, make) -> None:
    cuff = await make(BP, SimulatedBloodPressureCuff, idle_disconnect=0.3)
    first, second, third = readings_of(BP, 3)
    await cuff.record(first)
    await cuff.record(second)

    client = await connect(link, cuff)
    inbox = Inbox()
    await client.start_notify(MEASUREMENT, inbox)
    delivered = await inbox.readings(2)
    assert_delivered(delivered[0], first, cuff)
    assert_delivered(delivered[1], second, cuff)
    # Like a real cuff it hangs up once it has nothing more to say.
    await cuff.wait_disconnected(timeout=5)
    assert cuff.undelivered == 0

    await cuff.record(third)
    client = await connect(link, cuff)
    inbox = Inbox()
    await client.start_notify(MEASUREMENT, inbox)
    (readings,) = await inbox.readings(1)
    assert_delivered(readings, third, cuff)
    await cuff.wait_disconnected(timeout=5)
    assert inbox.empty()  # the first two were not sent again


async def test_reading_carries_pulse_user_and_status_from_the_flags(link, make) -> None:
    cuff = await make(BP, SimulatedBloodPressureCuff, idle_disconnect=0.3, user_id=2)
    (loose,) = readings_of(BP, 1, "sensor_problems", flagged=True)
    cuff.clock_offset = timedelta(minutes=-7)
    await cuff.record(loose)
    client = await connect(link, cuff)
    inbox = Inbox()
    await client.start_notify(MEASUREMENT, inbox)
    decoded = decode_all(*await inbox.next())
    assert_delivered(list(decoded.readings), loose, cuff)
    assert decoded.record.user_id == 2
    for reading in decoded.readings:
        assert set(loose.flags) <= set(reading.flags)
        assert reading.context["user_id"] == "2"
    pulse = next(r for r in decoded.readings if r.metric == "pulse_rate")
    assert pulse.context["pulse_source"] == "cuff"
    await cuff.wait_disconnected(timeout=5)


async def test_live_measurement_sends_cuff_pressure_then_result(link, make) -> None:
    cuff = await make(BP, SimulatedBloodPressureCuff, idle_disconnect=5.0)
    (measurement,) = readings_of(BP, 1)
    client = await connect(link, cuff)
    pressures, results = Inbox(), Inbox()
    await client.start_notify(CUFF_PRESSURE, pressures)
    await client.start_notify(MEASUREMENT, results)
    await cuff.measure_live(measurement)
    (readings,) = await results.readings(1)
    assert_delivered(readings, measurement, cuff)
    cuff_values = []
    while not pressures.empty():
        decoded = decode_all(*await pressures.next())
        assert decoded.readings == ()  # display-only values
        cuff_values.append(decoded.record.cuff_pressure)
    assert cuff_values[0] > measurement.values["systolic"]
    assert cuff_values == sorted(cuff_values, reverse=True)
    await client.disconnect()
