"""Build bleak's GATT service collection from bumble's discovered proxies."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bumble.gatt_client import ServiceProxy

from .advertisement import bleak_uuid

__all__ = ["characteristic_properties", "service_collection"]

# ATT Write Command header: opcode (1) + attribute handle (2).
_WRITE_COMMAND_OVERHEAD = 3


def characteristic_properties(properties: int) -> list[CharacteristicPropertyName]:
    """bleak's property names for a characteristic's property bits, lowest bit first."""
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if properties & bit]


def service_collection(
    services: Iterable[ServiceProxy], mtu: Callable[[], int]
) -> BleakGATTServiceCollection:
    """A bleak collection mirroring bumble's discovered services.

    Characteristics are keyed by their *value* handle, the one ATT reads and writes
    address (as the WinRT backend does); each bleak object keeps its bumble proxy in
    ``obj``. ``mtu`` is read lazily because the MTU exchange may finish later.
    """
    collection = BleakGATTServiceCollection()
    for service in services:
        bleak_service = BleakGATTService(service, service.handle, bleak_uuid(service.uuid))
        collection.add_service(bleak_service)
        for characteristic in service.characteristics:
            bleak_characteristic = BleakGATTCharacteristic(
                characteristic,
                characteristic.handle,
                bleak_uuid(characteristic.uuid),
                characteristic_properties(characteristic.properties),
                lambda: mtu() - _WRITE_COMMAND_OVERHEAD,
                bleak_service,
            )
            collection.add_characteristic(bleak_characteristic)
            for descriptor in characteristic.descriptors:
                collection.add_descriptor(
                    BleakGATTDescriptor(
                        descriptor,
                        descriptor.handle,
                        bleak_uuid(descriptor.type),
                        bleak_characteristic,
                    )
                )
    return collection
