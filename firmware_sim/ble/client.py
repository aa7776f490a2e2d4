"""`BumbleClient`: bleak's GATT client interface over a bumble LE connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.core import UUID
from bumble.device import Advertisement, Connection, Peer
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    GATT_DEVICE_NAME_CHARACTERISTIC,
)

from .radio import Central, Radio, get_central
from .scanner import BumbleDeviceDetails
from .services import service_collection

__all__ = ["BumbleClient"]

logger = logging.getLogger(__name__)

# What BlueZ asks for; the peripheral answers with what it can take.
_PREFERRED_MTU = 517
# Time a controller gets to confirm that a timed-out connection attempt was cancelled.
_CANCEL_GRACE = 1.0


class BumbleClient(BaseBleakClient):
    """Connect to one peripheral and use its GATT server through a bumble central.

    Use it as ``BleakClient(device, backend=BumbleClient)``. A `BLEDevice` found by
    `BumbleScanner` carries the radio and address type it was heard with; given a bare
    address, the client first scans for it on the default radio (or the one bound
    with `bound_to` / given as ``radio=``), as bleak's BlueZ backend does.
    """

    radio: ClassVar[Radio | None] = None

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        radio: Radio | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._details: BumbleDeviceDetails | None = None
        self._advertised_name: str | None = None
        if isinstance(address_or_ble_device, BLEDevice):
            self._advertised_name = address_or_ble_device.name
            if isinstance(address_or_ble_device.details, BumbleDeviceDetails):
                self._details = address_or_ble_device.details
        self._radio = radio if radio is not None else type(self).radio
        self._service_uuids = services
        self._central: Central | None = None
        self._peer_address: hci.Address | None = None
        self._connection: Connection | None = None
        self._peer: Peer | None = None
        self._mtu = att.ATT_DEFAULT_MTU
        self._gap_name: str | None = None
        self._disconnecting = False
        self._notify_subscribers: dict[int, Callable[[bytes], None]] = {}

    @classmethod
    def bound_to(cls, radio: Radio) -> type[BumbleClient]:
        """This backend fixed to ``radio``, for passing as ``BleakClient(backend=...)``."""
        return type(cls.__name__, (cls,), {"radio": radio, "__module__": cls.__module__})

    # Device information

    @property
    def name(self) -> str:
        return self._gap_name or self._advertised_name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        return self._mtu

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    # Connectivity

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self.is_connected:
            raise BleakError("Client is already connected")
        timeout: float = kwargs.get("timeout", self._timeout)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        central, peer_address = await self._find_peer(timeout)
        connection = await self._create_connection(central, peer_address, deadline, timeout)
        try:
            async with asyncio.timeout_at(deadline):
                await self._set_up(central, connection, pair)
        except BaseException:
            self._forget_connection()
            # Bounded: a link that is already going away may never confirm the disconnection.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await connection.disconnect()
            raise

    async def _find_peer(self, timeout: float) -> tuple[Central, hci.Address]:
        if self._details is not None:
            central = self._details.central
            if central.closed:
                # The radio was restarted since the scan; the address still holds.
                central = await get_central(central.radio)
            return central, self._details.address
        central = await get_central(self._radio)
        if self._peer_address is not None and self._central is central:
            return central, self._peer_address
        advertiser = await _wait_for_advertiser(central, self.address, timeout)
        if advertiser is None:
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found."
            )
        return central, advertiser

    async def _create_connection(
        self, central: Central, peer_address: hci.Address, deadline: float, timeout: float
    ) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                await central.connect_lock.acquire()
        except TimeoutError:
            raise self._connect_timeout(timeout) from None
        try:
            remaining = max(deadline - loop.time(), 0.0)
            # bumble cancels the attempt itself at `remaining`; the outer guard only
            # covers a controller that never confirms the cancellation.
            async with asyncio.timeout(remaining + _CANCEL_GRACE):
                return await central.device.connect(peer_address, timeout=remaining)
        except (core.TimeoutError, TimeoutError) as error:
            raise self._connect_timeout(timeout) from error
        except core.BaseBumbleError as error:
            raise BleakError(f"Failed to connect to {self.address}: {error}") from error
        finally:
            central.connect_lock.release()

    def _connect_timeout(self, timeout: float) -> TimeoutError:
        return TimeoutError(f"Timed out connecting to {self.address} after {timeout:g} s")

    async def _set_up(self, central: Central, connection: Connection, pair: bool) -> None:
        self._central = central
        self._peer_address = connection.peer_address
        self._connection = connection
        self._peer = peer = Peer(connection)
        self._mtu = att.ATT_DEFAULT_MTU
        connection.on(
            connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(connection, reason),
        )
        with self._gatt_errors():
            try:
                self._mtu = await peer.request_mtu(_PREFERRED_MTU)
            except att.ATT_Error:
                logger.debug("%s refused the MTU exchange; staying at 23", self.address)
            if pair:
                await self.pair()
            # bumble remembers every service it saw, but returns only the requested ones.
            uuids = [UUID(uuid) for uuid in self._service_uuids or ()]
            services = await peer.discover_services(uuids)
            for service in services:
                await service.discover_characteristics()
            for service in services:
                for characteristic in service.characteristics:
                    await characteristic.discover_descriptors()
            self._gap_name = await self._read_device_name(peer)
        self.services = service_collection(services, lambda: self._mtu)

    @staticmethod
    async def _read_device_name(peer: Peer) -> str | None:
        for characteristic in peer.get_characteristics_by_uuid(GATT_DEVICE_NAME_CHARACTERISTIC):
            try:
                value = await characteristic.read_value()
            except att.ATT_Error:
                # Some devices only reveal their name once paired; the advertised one will do.
                return None
            return bytes(value).decode("utf-8", errors="replace") or None
        return None

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        if connection is not self._connection:
            return
        logger.debug("%s disconnected: %s", self.address, hci.HCI_Constant.error_name(reason))
        self._forget_connection()
        if not self._disconnecting and self._disconnected_callback is not None:
            # Outside bumble's event dispatch, so the callback may use the client freely.
            asyncio.get_running_loop().call_soon(self._disconnected_callback)

    def _forget_connection(self) -> None:
        self._connection = None
        self._peer = None
        self.services = None
        self._notify_subscribers.clear()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._disconnecting = True
        try:
            await connection.disconnect()
        except core.BaseBumbleError as error:
            # Losing a race with a disconnection from the other side is not a failure.
            if self._connection is connection:
                raise BleakError(f"Failed to disconnect from {self.address}: {error}") from error
        finally:
            self._disconnecting = False

    # Security

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair through bumble's security manager (no IO on either side: Just Works), or, with a
        bond in the central's key store, encrypt the link with its key, as BlueZ does for a
        device already paired.

        A device that has lost the bond refuses the key: the link stays unencrypted and this
        raises a `BleakError` naming the HCI error (``PIN_OR_KEY_MISSING``); the caller decides
        whether to forget the bond (`unpair`) and pair anew.
        """
        connection = self._require_connection()
        keystore = connection.device.keystore
        bonded = keystore is not None and await keystore.get(str(connection.peer_address))
        try:
            if bonded:
                await connection.encrypt()
            else:
                await connection.pair()
        except hci.HCI_Error as error:
            name = hci.HCI_Constant.error_name(error.error_code)
            raise BleakError(f"Encrypting the link to {self.address} failed: {name}") from error
        except core.BaseBumbleError as error:
            raise BleakError(f"Pairing with {self.address} failed: {error}") from error

    async def unpair(self) -> None:
        """Forget the bond; like BlueZ removing the device, this disconnects first."""
        await self.disconnect()
        central = self._central or (await get_central(self._radio))
        address = self._peer_address or (self._details.address if self._details else None)
        if address is not None and central.device.keystore is not None:
            await central.device.keystore.delete(str(address))

    # GATT

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return await self._read(characteristic.handle, use_cached)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        return await self._read(descriptor.handle, use_cached)

    async def _read(self, handle: int, use_cached: bool) -> bytearray:
        peer = self._require_peer()
        if use_cached and (cached := peer.gatt_client.cached_values.get(handle)) is not None:
            return bytearray(cached[1])
        with self._gatt_errors():
            return bytearray(await peer.read_value(handle))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_peer()
        with self._gatt_errors():
            await peer.write_value(characteristic.handle, bytes(data), with_response=response)

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._require_peer()
        with self._gatt_errors():
            await peer.write_value(descriptor.handle, bytes(data), with_response=True)

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        *,
        force_indicate: bool = False,
        **kwargs: Any,
    ) -> None:
        """Subscribe, preferring notifications when both are offered (as bleak asks).

        ``force_indicate=True`` asks for indications instead, as on bleak's WinRT backend.
        """
        peer = self._require_peer()
        proxy = characteristic.obj
        if characteristic.handle in self._notify_subscribers:
            raise BleakError(f"Notifications are already started on {characteristic}")
        if proxy.get_descriptor(GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR) is None:
            # bumble would only log this; bleak callers expect to hear about it.
            raise BleakError(f"{characteristic} has no Client Characteristic Configuration")

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        with self._gatt_errors():
            await peer.subscribe(proxy, deliver, prefer_notify=not force_indicate)
        self._notify_subscribers[characteristic.handle] = deliver

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_peer()
        deliver = self._notify_subscribers.pop(characteristic.handle, None)
        if deliver is None:
            return
        with self._gatt_errors():
            await peer.unsubscribe(characteristic.obj, deliver)

    # Helpers

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError("Not connected")
        return self._peer

    @contextlib.contextmanager
    def _gatt_errors(self) -> Iterator[None]:
        """Raise bumble's GATT failures as the exceptions bleak callers handle."""
        try:
            yield
        except att.ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error
        except core.TimeoutError as error:
            raise TimeoutError(f"GATT operation on {self.address} timed out") from error
        except asyncio.CancelledError:
            # bumble cancels the pending ATT response when the link drops; unless our
            # own task is being cancelled, that is a disconnection, not a cancellation.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise BleakError(f"Disconnected from {self.address} during a GATT operation") from None


async def _wait_for_advertiser(
    central: Central, address: str, timeout: float
) -> hci.Address | None:
    """The typed address of the device advertising as ``address``, or None after ``timeout``."""
    wanted = address.upper()
    found: asyncio.Future[hci.Address] = asyncio.get_running_loop().create_future()

    def on_advertisement(advertisement: Advertisement) -> None:
        if found.done():
            return
        if advertisement.address.to_string(with_type_qualifier=False) == wanted:
            found.set_result(advertisement.address)

    await central.add_scan_listener(on_advertisement, active=False)
    try:
        async with asyncio.timeout(timeout):
            return await found
    except TimeoutError:
        return None
    finally:
        await central.remove_scan_listener(on_advertisement)
