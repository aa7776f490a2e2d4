"""Scanning through plain `bleak.BleakScanner` on the bumble backend."""

from __future__ import annotations

import asyncio

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from firmware_sim.ble import BumbleDeviceDetails, BumbleScanner

from .peripherals import BATTERY_SERVICE, TEST_COMPANY_ID, TX_POWER

SCAN_TIMEOUT = 5.0


async def test_detection_callback_reports_every_advertised_field(peripheral) -> None:
    heard: asyncio.Queue[tuple[BLEDevice, AdvertisementData]] = asyncio.Queue()
    scanner = BleakScanner(lambda d, ad: heard.put_nowait((d, ad)), backend=BumbleScanner)

    async with scanner, asyncio.timeout(SCAN_TIMEOUT):
        device, data = await heard.get()

    assert device.address == peripheral.address
    assert device.name == "Oxi-1"
    assert isinstance(device.details, BumbleDeviceDetails)
    assert data.local_name == "Oxi-1"
    assert data.service_uuids == [BATTERY_SERVICE]
    assert data.manufacturer_data == {TEST_COMPANY_ID: peripheral.manufacturer_payload}
    assert data.service_data == {BATTERY_SERVICE: peripheral.service_data}
    assert data.tx_power == TX_POWER
    assert isinstance(data.rssi, int)
    assert -127 <= data.rssi <= 20
    # Later packets may have updated the record; their content is the same.
    _, latest = scanner.discovered_devices_and_advertisement_data[peripheral.address]
    assert latest._replace(platform_data=()) == data._replace(platform_data=())


async def test_async_detection_callbacks_are_awaited(peripheral) -> None:
    heard = asyncio.Event()

    async def on_advertisement(device: BLEDevice, _data: AdvertisementData) -> None:
        if device.address == peripheral.address:
            heard.set()

    async with (
        BleakScanner(on_advertisement, backend=BumbleScanner),
        asyncio.timeout(SCAN_TIMEOUT),
    ):
        await heard.wait()


async def test_find_device_by_name_address_and_filter(peripheral, make_peripheral) -> None:
    other = await make_peripheral("Thermo-2")

    by_name = await BleakScanner.find_device_by_name(
        "Thermo-2", timeout=SCAN_TIMEOUT, backend=BumbleScanner
    )
    by_address = await BleakScanner.find_device_by_address(
        peripheral.address.lower(), timeout=SCAN_TIMEOUT, backend=BumbleScanner
    )
    by_filter = await BleakScanner.find_device_by_filter(
        lambda _d, ad: ad.manufacturer_data.get(TEST_COMPANY_ID) == other.manufacturer_payload,
        timeout=SCAN_TIMEOUT,
        backend=BumbleScanner,
    )

    assert by_name is not None and by_name.address == other.address
    assert by_address is not None and by_address.address == peripheral.address
    assert by_filter is not None and by_filter.address == other.address


async def test_service_uuid_filter_hides_other_devices(peripheral) -> None:
    wanted = await BleakScanner.find_device_by_filter(
        lambda _d, ad: True,
        timeout=SCAN_TIMEOUT,
        service_uuids=[BATTERY_SERVICE],
        backend=BumbleScanner,
    )
    assert wanted is not None and wanted.address == peripheral.address

    # Scanning for a service nobody advertises finds nothing, within the timeout.
    unwanted = await BleakScanner.find_device_by_filter(
        lambda _d, ad: True,
        timeout=0.3,
        service_uuids=["00001810-0000-1000-8000-00805f9b34fb"],
        backend=BumbleScanner,
    )
    assert unwanted is None


async def test_discover_returns_advertisement_data(peripheral, make_peripheral) -> None:
    other = await make_peripheral("Scale-3")
    expected = {peripheral.address, other.address}
    seen: set[str] = set()
    both_seen = asyncio.Event()

    def on_advertisement(device: BLEDevice, _data: AdvertisementData) -> None:
        seen.add(device.address)
        if expected <= seen:
            both_seen.set()

    scanner = BleakScanner(on_advertisement, backend=BumbleScanner)
    async with scanner, asyncio.timeout(SCAN_TIMEOUT):
        await both_seen.wait()

    found = scanner.discovered_devices_and_advertisement_data
    assert {found[a][1].local_name for a in expected} == {"Oxi-1", "Scale-3"}


async def test_two_scanners_share_the_radio(peripheral) -> None:
    first_heard, second_heard = asyncio.Event(), asyncio.Event()
    first = BleakScanner(lambda d, ad: first_heard.set(), backend=BumbleScanner)
    second = BleakScanner(lambda d, ad: second_heard.set(), backend=BumbleScanner)

    async with first, asyncio.timeout(SCAN_TIMEOUT):
        async with second:
            await asyncio.gather(first_heard.wait(), second_heard.wait())
        # Stopping one scanner must not stop the radio under the other.
        first_heard.clear()
        await first_heard.wait()
