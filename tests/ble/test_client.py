"""GATT through plain `bleak.BleakClient` on the bumble backend, against simulated peripherals."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import (
    BleakDeviceNotFoundError,
    BleakError,
    BleakGATTProtocolError,
    BleakGATTProtocolErrorCode,
)

from firmware_sim.ble import BumbleClient, BumbleScanner, close_all_centrals

from .peripherals import (
    BATTERY_LEVEL,
    BATTERY_SERVICE,
    CCCD,
    CONTROL_POINT,
    MEASUREMENT,
    MEASUREMENT_SERVICE,
    REJECTED_COMMAND,
    SECRET,
    SETTING_DESCRIPTOR,
    SLOW,
    USER_DESCRIPTION,
)

TIMEOUT = 5.0
GAP_SERVICE = "00001800-0000-1000-8000-00805f9b34fb"
GATT_SERVICE = "00001801-0000-1000-8000-00805f9b34fb"


async def find(address: str) -> BLEDevice:
    device = await BleakScanner.find_device_by_address(
        address, timeout=TIMEOUT, backend=BumbleScanner
    )
    assert device is not None, f"{address} is not advertising"
    return device


def client_for(device: BLEDevice | str, **kwargs) -> BleakClient:
    return BleakClient(device, backend=BumbleClient, timeout=TIMEOUT, **kwargs)


async def test_services_and_properties_are_discovered(peripheral) -> None:
    async with client_for(await find(peripheral.address)) as client:
        assert client.is_connected
        assert client.name == "Oxi-1"
        services = {service.uuid for service in client.services}
        assert services == {GAP_SERVICE, GATT_SERVICE, BATTERY_SERVICE, MEASUREMENT_SERVICE}

        battery_level = client.services.get_characteristic(BATTERY_LEVEL)
        assert battery_level.service_uuid == BATTERY_SERVICE
        assert battery_level.properties == ["read", "notify"]
        assert [d.uuid for d in battery_level.descriptors] == [CCCD]

        measurement = client.services.get_characteristic(MEASUREMENT)
        assert measurement.service_uuid == MEASUREMENT_SERVICE
        assert measurement.properties == ["indicate"]

        control_point = client.services.get_characteristic(CONTROL_POINT)
        assert control_point.properties == ["write-without-response", "write"]
        assert [d.uuid for d in control_point.descriptors] == [USER_DESCRIPTION, SETTING_DESCRIPTOR]
        # The whole ATT payload of a Write Command: negotiated MTU less its 3-byte header.
        assert control_point.max_write_without_response_size == client.mtu_size - 3
    assert not client.is_connected


async def test_mtu_is_negotiated(peripheral) -> None:
    async with client_for(await find(peripheral.address)) as client:
        assert client.mtu_size == 517


async def test_read_and_cached_read(peripheral) -> None:
    async with client_for(await find(peripheral.address)) as client:
        assert await client.read_gatt_char(BATTERY_LEVEL) == bytearray([87])
        peripheral.battery_level.value = bytes([86])
        assert await client.read_gatt_char(BATTERY_LEVEL, use_cached=True) == bytearray([87])
        assert await client.read_gatt_char(BATTERY_LEVEL) == bytearray([86])


async def test_write_with_response_is_acknowledged_by_the_peripheral(peripheral) -> None:
    async with client_for(await find(peripheral.address)) as client:
        await client.write_gatt_char(CONTROL_POINT, b"\x01\x02\x03", response=True)
        # The Write Response means the peripheral has the bytes already: no waiting.
        assert peripheral.received.get_nowait() == b"\x01\x02\x03"

        with pytest.raises(BleakGATTProtocolError) as rejected:
            await client.write_gatt_char(CONTROL_POINT, REJECTED_COMMAND, response=True)
        assert rejected.value.code == BleakGATTProtocolErrorCode.VALUE_NOT_ALLOWED


async def test_write_without_response_reaches_the_peripheral(peripheral) -> None:
    async with client_for(await find(peripheral.address)) as client:
        # A Write Command carries no answer, so a refusal goes unreported.
        await client.write_gatt_char(CONTROL_POINT, REJECTED_COMMAND, response=False)
        await client.write_gatt_char(CONTROL_POINT, bytearray(b"\x0a\x0b"), response=False)
        async with asyncio.timeout(TIMEOUT):
            assert await peripheral.received.get() == b"\x0a\x0b"


async def test_descriptors_read_and_write(peripheral) -> None:
    async with client_for(await find(peripheral.address)) as client:
        control_point = client.services.get_characteristic(CONTROL_POINT)
        description = control_point.get_descriptor(USER_DESCRIPTION)
        setting = control_point.get_descriptor(SETTING_DESCRIPTOR)

        assert await client.read_gatt_descriptor(description) == bytearray(b"Control point")
        await client.write_gatt_descriptor(setting, b"\x05")
        assert peripheral.setting == b"\x05"
        assert await client.read_gatt_descriptor(setting.handle) == bytearray(b"\x05")


async def test_notifications_arrive_in_order_with_exact_bytes(peripheral) -> None:
    received: asyncio.Queue[tuple[str, bytearray]] = asyncio.Queue()

    def on_battery(characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        received.put_nowait((characteristic.uuid, data))

    async with client_for(await find(peripheral.address)) as client:
        await client.start_notify(BATTERY_LEVEL, on_battery)
        cccd = client.services.get_characteristic(BATTERY_LEVEL).get_descriptor(CCCD)
        assert await client.read_gatt_descriptor(cccd) == bytearray(b"\x01\x00")

        levels = [80, 79, 78, 0, 255]
        for level in levels:
            await peripheral.notify_battery(level)
        async with asyncio.timeout(TIMEOUT):
            got = [await received.get() for _ in levels]
        assert got == [(BATTERY_LEVEL, bytearray([level])) for level in levels]

        await client.stop_notify(BATTERY_LEVEL)
        assert await client.read_gatt_descriptor(cccd) == bytearray(b"\x00\x00")


async def test_indications_arrive_in_order_with_exact_bytes(peripheral) -> None:
    received: asyncio.Queue[bytearray] = asyncio.Queue()

    async def on_measurement(_characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        received.put_nowait(data)

    # Health Thermometer style frames: flags, IEEE-11073 FLOAT, then a timestamp.
    frames = [bytes([0x02, 0x6C, 0x0E, 0x00, 0xFF, 0xE8, 0x07, 0x05, i]) for i in range(5)]
    async with client_for(await find(peripheral.address)) as client:
        await client.start_notify(MEASUREMENT, on_measurement)
        cccd = client.services.get_characteristic(MEASUREMENT).get_descriptor(CCCD)
        assert await client.read_gatt_descriptor(cccd) == bytearray(b"\x02\x00")

        # Each indication returns only once the gateway has confirmed it.
        for frame in frames:
            async with asyncio.timeout(TIMEOUT):
                await peripheral.indicate_measurement(frame)
        async with asyncio.timeout(TIMEOUT):
            assert [bytes(await received.get()) for _ in frames] == frames

        await client.stop_notify(MEASUREMENT)


async def test_peripheral_disconnect_fires_callback_then_reconnect_works(peripheral) -> None:
    disconnected = asyncio.Event()
    client = client_for(
        await find(peripheral.address), disconnected_callback=lambda _: disconnected.set()
    )

    await client.connect()
    assert client.is_connected
    await peripheral.disconnect_central()
    async with asyncio.timeout(TIMEOUT):
        await disconnected.wait()
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.read_gatt_char(BATTERY_LEVEL)

    # The peripheral advertises again; the same client object reconnects.
    disconnected.clear()
    await client.connect()
    assert await client.read_gatt_char(BATTERY_LEVEL) == bytearray([87])
    await client.disconnect()
    assert not client.is_connected
    # Only unsolicited disconnections are reported, as bleak's backend contract says.
    assert not disconnected.is_set()


async def test_link_loss_during_a_read_raises_bleak_error(peripheral) -> None:
    async with client_for(await find(peripheral.address)) as client:
        read = asyncio.create_task(client.read_gatt_char(SLOW))
        async with asyncio.timeout(TIMEOUT):
            await peripheral.read_requested.wait()
        await peripheral.disconnect_central()
        # Not a CancelledError leaking out of bumble: the caller was not cancelled.
        with pytest.raises(BleakError, match="Disconnected"):
            async with asyncio.timeout(TIMEOUT):
                await read
        assert not client.is_connected


async def test_service_filter_limits_discovery(peripheral) -> None:
    device = await find(peripheral.address)
    async with client_for(device, services=[BATTERY_SERVICE]) as client:
        assert [service.uuid for service in client.services] == [BATTERY_SERVICE]
        assert client.name == "Oxi-1"  # From the advertisement, GAP being left out.


async def test_closing_the_radio_disconnects_clients(peripheral) -> None:
    disconnected = asyncio.Event()
    client = client_for(
        await find(peripheral.address), disconnected_callback=lambda _: disconnected.set()
    )
    await client.connect()
    await close_all_centrals()
    async with asyncio.timeout(TIMEOUT):
        await disconnected.wait()
    assert not client.is_connected
    async with asyncio.timeout(TIMEOUT):
        await peripheral.wait_disconnected()

    # The gateway restarting its radio must not strand devices it found before.
    await client.connect()
    assert await client.read_gatt_char(BATTERY_LEVEL) == bytearray([87])
    await client.disconnect()


async def test_connect_by_address_string_scans_first(peripheral) -> None:
    async with client_for(peripheral.address) as client:
        assert await client.read_gatt_char(BATTERY_LEVEL) == bytearray([87])


async def test_unknown_address_fails_clearly_within_the_timeout(peripheral) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    client = BleakClient("C2:00:00:00:0B:AD", backend=BumbleClient, timeout=0.3)
    with pytest.raises(BleakDeviceNotFoundError, match="C2:00:00:00:0B:AD was not found"):
        await client.connect()
    assert loop.time() - started < 1.0


async def test_vanished_device_times_out_and_the_radio_still_connects(
    make_peripheral, link
) -> None:
    gone = await make_peripheral("Gone-9")
    stays = await make_peripheral("Stays-8")
    gone_device = await find(gone.address)
    await gone.stop(link)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError, match="Timed out connecting"):
        await BleakClient(gone_device, backend=BumbleClient, timeout=0.3).connect()
    assert loop.time() - started < 1.0

    # The cancelled attempt must not leave the controller stuck on the vanished device.
    async with client_for(await find(stays.address)) as client:
        assert await client.read_gatt_char(BATTERY_LEVEL) == bytearray([87])


async def test_two_peripherals_at_once(make_peripheral) -> None:
    oximeter = await make_peripheral("Oxi-1", battery_level=50)
    cuff = await make_peripheral("Cuff-2", battery_level=60)
    oximeter_device, cuff_device = await asyncio.gather(find(oximeter.address), find(cuff.address))
    received: dict[str, asyncio.Queue[bytearray]] = {
        "Oxi-1": asyncio.Queue(),
        "Cuff-2": asyncio.Queue(),
    }

    async with client_for(oximeter_device) as first, client_for(cuff_device) as second:
        assert await asyncio.gather(
            first.read_gatt_char(BATTERY_LEVEL), second.read_gatt_char(BATTERY_LEVEL)
        ) == [bytearray([50]), bytearray([60])]

        await first.start_notify(BATTERY_LEVEL, lambda _c, d: received["Oxi-1"].put_nowait(d))
        await second.start_notify(BATTERY_LEVEL, lambda _c, d: received["Cuff-2"].put_nowait(d))
        await asyncio.gather(oximeter.notify_battery(49), cuff.notify_battery(59))
        async with asyncio.timeout(TIMEOUT):
            assert await received["Oxi-1"].get() == bytearray([49])
            assert await received["Cuff-2"].get() == bytearray([59])
        assert received["Oxi-1"].empty() and received["Cuff-2"].empty()

        await first.write_gatt_char(CONTROL_POINT, b"oxi", response=True)
        await second.write_gatt_char(CONTROL_POINT, b"cuff", response=True)
        assert oximeter.received.get_nowait() == b"oxi"
        assert cuff.received.get_nowait() == b"cuff"


async def test_concurrent_connects_are_serialised_on_the_radio(make_peripheral) -> None:
    peripherals = [await make_peripheral(f"Dev-{i}") for i in range(3)]
    devices = [await find(p.address) for p in peripherals]
    clients = [client_for(device) for device in devices]

    await asyncio.gather(*(client.connect() for client in clients))
    try:
        assert all(client.is_connected for client in clients)
    finally:
        await asyncio.gather(*(client.disconnect() for client in clients))


async def test_pairing_just_works_unlocks_encrypted_characteristics(peripheral) -> None:
    async with client_for(await find(peripheral.address)) as client:
        with pytest.raises(BleakGATTProtocolError) as refused:
            await client.read_gatt_char(SECRET)
        assert refused.value.code == BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION

        await client.pair()
        assert await client.read_gatt_char(SECRET) == bytearray(b"only-when-paired")
        await client.unpair()
    assert not client.is_connected


async def test_pair_on_connect(peripheral) -> None:
    async with client_for(await find(peripheral.address), pair=True) as client:
        assert await client.read_gatt_char(SECRET) == bytearray(b"only-when-paired")


async def test_operations_when_not_connected_raise(peripheral) -> None:
    client = client_for(await find(peripheral.address))
    with pytest.raises(BleakError, match="Service Discovery has not been performed"):
        await client.read_gatt_char(BATTERY_LEVEL)
    await client.disconnect()  # Disconnecting an idle client is harmless.
