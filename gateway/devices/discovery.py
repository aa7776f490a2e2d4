"""Finding health devices to pair: who advertises a health profile's service nearby."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from gateway.devices.profiles import kind_for_services
from gateway.quirks import Seen, find
from telemon.device_kinds import DeviceKind


@dataclass(frozen=True, slots=True)
class FoundDevice:
    address: str
    kind: DeviceKind
    name: str | None
    rssi: int | None


async def discover_health_devices(
    seconds: float, *, backend: type[BaseBleakScanner] | None = None
) -> list[FoundDevice]:
    """Devices heard within ``seconds`` advertising a health service, or recognised by the quirks
    table, strongest first."""
    found: dict[str, FoundDevice] = {}

    def heard(device: BLEDevice, advertisement: AdvertisementData) -> None:
        name = advertisement.local_name or device.name
        kind = kind_for_services(advertisement.service_uuids)
        if kind is None:
            # A model without its standard profile's service (a proprietary oximeter).
            quirk = find(Seen(name, advertisement.manufacturer_data))
            if quirk is None:
                return
            kind = quirk.kind
        address = device.address.upper()
        previous = found.get(address)
        found[address] = FoundDevice(
            address, kind, name or (previous.name if previous else None), advertisement.rssi
        )

    async with BleakScanner(heard, backend=backend):
        await asyncio.sleep(seconds)
    return sorted(found.values(), key=lambda d: -(d.rssi if d.rssi is not None else -999))
