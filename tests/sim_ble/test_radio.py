"""What every device does on the radio: advertising, identity, battery, range, bonding."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakScanner
from bleak.exc import BleakGATTProtocolError

from firmware_sim.ble import BumbleScanner
from firmware_sim.devices import IDENTITIES
from gateway.gatt import DeviceInformation, decode_all
from telemon.device_kinds import DeviceKind

from .central import TIMEOUT, Inbox, assert_delivered, connect, until, uuid
from .conftest import readings_of

BATTERY_LEVEL = uuid(0x2A19)
INSUFFICIENT_ENCRYPTION = 0x0F


@pytest.mark.parametrize("kind", list(DeviceKind))
async def test_advertises_name_and_service_and_tells_who_it_is(link, make, kind) -> None:
    device = await make(kind, battery=64)
    identity = IDENTITIES[kind]
    service = uuid(identity.service_uuid)
    found = await BleakScanner.find_device_by_filter(
        lambda _device, advertisement: service in advertisement.service_uuids,
        timeout=TIMEOUT,
        backend=BumbleScanner.bound_to(link),
    )
    assert found is not None
    assert (found.address, found.name) == (device.address, device.name)
    assert found.name.startswith(identity.model)

    client = await connect(link, device)
    info = {
        decoded.record.field: decoded.record.value
        for short in (0x2A29, 0x2A24, 0x2A25, 0x2A26)
        for decoded in [decode_all(f"{short:04x}", await client.read_gatt_char(uuid(short)))]
        if isinstance(decoded.record, DeviceInformation)
    }
    assert info["manufacturer_name"] == identity.manufacturer
    assert info["model_number"] == identity.model
    assert info["firmware_revision"] == identity.firmware_revision
    assert info["serial_number"]
    assert decode_all("2a19", await client.read_gatt_char(BATTERY_LEVEL)).record.percent == 64
    await client.disconnect()


async def test_scanner_filtering_on_a_service_finds_only_that_kind(link, make) -> None:
    await make(DeviceKind.THERMOMETER)
    cuff = await make(DeviceKind.BLOOD_PRESSURE)
    seen: set[str] = set()
    scanner = BleakScanner(
        lambda device, _: seen.add(device.address),
        service_uuids=[uuid(0x1810)],
        backend=BumbleScanner.bound_to(link),
    )
    async with scanner:
        found = await BleakScanner.find_device_by_address(
            cuff.address, timeout=TIMEOUT, backend=BumbleScanner.bound_to(link)
        )
        assert found is not None
        await until(lambda: cuff.address in seen)
    assert seen == {cuff.address}


async def test_battery_level_is_notified(link, make) -> None:
    scale = await make(DeviceKind.WEIGHT_SCALE, battery=40)
    client = await connect(link, scale)
    inbox = Inbox()
    await client.start_notify(BATTERY_LEVEL, inbox)
    scale.battery = 39
    assert decode_all(*await inbox.next()).record.percent == 39
    await client.disconnect()


async def test_out_of_range_drops_the_link_and_back_in_range_reconnects(link, make) -> None:
    thermometer = await make(DeviceKind.THERMOMETER)
    dropped = asyncio.Event()
    client = await connect(link, thermometer, disconnected_callback=lambda _: dropped.set())
    await thermometer.set_in_range(False)
    async with asyncio.timeout(TIMEOUT):
        await dropped.wait()
    assert not client.is_connected
    missing = await BleakScanner.find_device_by_address(
        thermometer.address, timeout=0.3, backend=BumbleScanner.bound_to(link)
    )
    assert missing is None  # silent while away

    (measurement,) = readings_of(DeviceKind.THERMOMETER, 1)
    await thermometer.record(measurement)  # kept in memory meanwhile
    await thermometer.set_in_range(True)
    client = await connect(link, thermometer)
    inbox = Inbox()
    await client.start_notify(uuid(0x2A1C), inbox)
    (readings,) = await inbox.readings(1)
    assert_delivered(readings, measurement, thermometer)
    await client.disconnect()


async def test_bonding_required_then_just_works_pairing_unlocks(link, make) -> None:
    cuff = await make(DeviceKind.BLOOD_PRESSURE, require_bonding=True)
    (measurement,) = readings_of(DeviceKind.BLOOD_PRESSURE, 1)
    await cuff.record(measurement)
    client = await connect(link, cuff)
    inbox = Inbox()
    with pytest.raises(BleakGATTProtocolError) as refused:
        await client.start_notify(uuid(0x2A35), inbox)
    assert refused.value.code == INSUFFICIENT_ENCRYPTION
    await client.pair()
    await client.start_notify(uuid(0x2A35), inbox)
    (readings,) = await inbox.readings(1)
    assert_delivered(readings, measurement, cuff)
    await client.disconnect()


async def test_a_device_is_made_from_its_wire_name(make) -> None:
    cuff = await make("blood_pressure")
    assert cuff.kind is DeviceKind.BLOOD_PRESSURE
