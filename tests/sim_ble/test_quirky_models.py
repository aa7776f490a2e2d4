"""The simulated real models speak their own bytes over the link (firmware_sim.devices.quirky)."""

from __future__ import annotations

import asyncio

import pytest

from firmware_sim.devices import SimulatedBeurerBM85, SimulatedContecCMS50D
from gateway import quirks
from gateway.gatt import DecodeError, decode_all
from gateway.gatt.quirks import contec
from telemon.device_kinds import DeviceKind

from .central import Inbox, connect, uuid
from .conftest import readings_of


async def test_contec_is_silent_until_the_start_command(link, make) -> None:
    device = await make(DeviceKind.PULSE_OXIMETER, SimulatedContecCMS50D)
    client = await connect(link, device)
    inbox = Inbox()
    await client.start_notify(contec.NOTIFY_UUID, inbox)
    [sample] = readings_of(DeviceKind.PULSE_OXIMETER, 1)
    await device.record(sample)
    assert not device.streaming and inbox.empty()
    # The SDK's sequence: "9B 00" then "9B 01", written without response.
    await client.write_gatt_char(contec.CONTROL_UUID, contec.PREPARE_REALTIME, response=False)
    await client.write_gatt_char(contec.CONTROL_UUID, contec.START_REALTIME, response=False)
    async with asyncio.timeout(5):  # no response to wait for: wait for the device to act
        while not device.streaming:
            await asyncio.sleep(0.01)
    await device.record(sample)
    _, payload = await inbox.next()
    readings = {r.metric: r.value for r in quirks.decode("contec_cms50d_bt", payload)}
    assert readings == {m: round(v) for m, v in sample.values.items()}
    await client.write_gatt_char(contec.CONTROL_UUID, contec.STOP_REALTIME, response=False)
    async with asyncio.timeout(5):
        while device.streaming:
            await asyncio.sleep(0.01)
    assert not await device.send_waveform()
    assert device.commands == [
        contec.PREPARE_REALTIME,
        contec.START_REALTIME,
        contec.STOP_REALTIME,
    ]
    await client.disconnect()


async def test_bm85_indicates_what_only_its_quirk_reads(link, make) -> None:
    device = await make(DeviceKind.BLOOD_PRESSURE, SimulatedBeurerBM85)
    [sample] = readings_of(DeviceKind.BLOOD_PRESSURE, 1)
    await device.record(sample)
    client = await connect(link, device)
    inbox = Inbox()
    await client.start_notify(uuid(0x2A35), inbox)
    _, payload = await inbox.next()
    with pytest.raises(DecodeError, match="reserved"):
        decode_all("2a35", payload)
    readings = {r.metric: r.value for r in quirks.decode("beurer_bm85", payload)}
    assert readings == {m: v for m, v in sample.values.items() if m != "mean_arterial_pressure"}
    await client.disconnect()
