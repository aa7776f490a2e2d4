"""The bumble host stack behind the backend: one central `Device` per radio.

A *radio* is either an in-process bumble `LocalLink` (simulated peripherals and the
gateway share it, nothing leaves the process) or a bumble transport spec such as
``tcp-client:127.0.0.1:9000``, ``usb:0`` or ``serial:/dev/ttyUSB0`` naming a real
or emulated HCI controller.

Every scanner and client on the same radio shares one central `Device`, just as
every BlueZ client shares one adapter: a controller has one scanner state and one
pending LE connection at a time, so both are arbitrated here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from bleak.exc import BleakBluetoothNotAvailableError, BleakBluetoothNotAvailableReason
from bumble import hci
from bumble.controller import Controller
from bumble.device import Advertisement, Device
from bumble.host import Host
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore
from bumble.link import LocalLink
from bumble.transport import Transport, open_transport
from bumble.transport.common import AsyncPipeSink, TransportSink

__all__ = [
    "IN_PROCESS",
    "TRANSPORT_ENV_VAR",
    "Central",
    "Radio",
    "close_all_centrals",
    "close_central",
    "create_link_device",
    "default_radio",
    "detach_from_link",
    "get_central",
    "in_process_link",
    "link_controller",
    "random_static_address",
    "set_default_radio",
    "set_keystore",
]

logger = logging.getLogger(__name__)

TRANSPORT_ENV_VAR = "TELEMON_BUMBLE_TRANSPORT"
"""Environment variable naming the bumble radio the gateway should use."""

IN_PROCESS = "local"
"""Value of `TRANSPORT_ENV_VAR` selecting the process-wide in-process `LocalLink`."""

CENTRAL_NAME = "telemon-gateway"

Radio: TypeAlias = LocalLink | str
"""An in-process link, or a bumble transport spec for a real controller."""

AdvertisementListener: TypeAlias = Callable[[Advertisement], None]


class _LinkController(Controller):
    """bumble's link-layer controller, answering LE Create Connection Cancel as the spec says.

    The stock simulated controller acknowledges the cancel but keeps the connection
    pending and never reports its end, so a timed-out connect would hang the host and
    the next connect would be refused (bumble 0.0.236). A real controller finishes the
    attempt with an LE Connection Complete carrying Unknown Connection Identifier
    (Core spec Vol 4, Part E, 7.8.13); do exactly that.
    """

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        cancelled = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address.address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # Scheduled so that the host sees the Command Complete first, as it would on air.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, cancelled)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


def random_static_address() -> hci.Address:
    """A fresh random static LE address, as a device picks at power-up."""
    return hci.Address.generate_static_address()


def link_controller(
    link: LocalLink, name: str, host_source: object, host_sink: TransportSink
) -> Controller:
    """A controller on ``link`` for a host reached through a transport (another process)."""
    return _LinkController(name, host_source=host_source, host_sink=host_sink, link=link)


def create_link_device(
    link: LocalLink, name: str, address: hci.Address | str | None = None
) -> Device:
    """A powered-off bumble `Device` with its own controller on ``link``.

    Simulated peripherals are made with this: add GATT services, set the advertising
    data, then ``await device.power_on()`` and ``await device.start_advertising()``.
    """
    if address is None:
        address = random_static_address()
    elif isinstance(address, str):
        address = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
    controller = _LinkController(name, link=link)
    host = Host(controller, AsyncPipeSink(controller))
    return Device(name=name, address=address, host=host)


def detach_from_link(link: LocalLink, device: Device) -> None:
    """Take a powered-off device's controller off ``link`` so it hears no more traffic."""
    for controller in list(link.controllers):
        if controller.host is device.host:
            link.remove_controller(controller)


def stored_identity(keystore: Path) -> hci.Address | None:
    """The central address the bonds in ``keystore`` were made with, if it holds any.

    bumble's JSON key store files bonds under the local address (its namespace). A device keeps
    a bond with the address it paired with: the central must come back with the same one, as a
    Raspberry Pi's adapter does with its public address.
    """
    try:
        namespaces = list(json.loads(keystore.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        # Set aside, not overwritten: a technician may still recover it; devices re-pair.
        aside = keystore.with_name(keystore.name + ".unreadable")
        logger.warning(
            "bond store %s is unreadable (%s): moved to %s, starting without bonds",
            keystore,
            error,
            aside,
        )
        keystore.replace(aside)
        return None
    if len(namespaces) != 1:
        return None
    return hci.Address(namespaces[0], hci.Address.RANDOM_DEVICE_ADDRESS)


def open_keystore(keystore: Path | None) -> tuple[hci.Address, KeyStore]:
    """The central's address and bond store: in memory, or kept in the ``keystore`` file."""
    if keystore is None:
        # Bonds made by pair() live as long as the process, like an unpersisted adapter.
        return random_static_address(), MemoryKeyStore()
    address = stored_identity(keystore) or random_static_address()
    name = address.to_string(with_type_qualifier=False)
    return address, JsonKeyStore(namespace=name, filename=str(keystore))


class Central:
    """The gateway's side of one radio: a bumble `Device` in the central role."""

    def __init__(self, radio: Radio) -> None:
        self.radio = radio
        self._device: Device | None = None
        self._transport: Transport | None = None
        self._starting: asyncio.Task[Device] | None = None
        self._listeners: list[AdvertisementListener] = []
        self._scan_lock = asyncio.Lock()
        self.connect_lock = asyncio.Lock()
        """Held while an LE connection is pending: a controller initiates one at a time."""
        self.closed = False
        self.loop = asyncio.get_running_loop()

    @property
    def device(self) -> Device:
        if self._device is None:
            raise RuntimeError("the central is not started; use get_central()")
        return self._device

    async def start(self) -> Device:
        # Concurrent first users share one power-up rather than racing two.
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._power_on())
        return await asyncio.shield(self._starting)

    async def _power_on(self) -> Device:
        try:
            address, keystore = open_keystore(_keystores.get(self.radio))
            if isinstance(self.radio, LocalLink):
                device = create_link_device(self.radio, CENTRAL_NAME, address)
            else:
                self._transport = await open_transport(self.radio)
                device = Device.with_hci(
                    CENTRAL_NAME, address, self._transport.source, self._transport.sink
                )
            device.keystore = keystore
            device.on(device.EVENT_ADVERTISEMENT, self._dispatch_advertisement)
            await device.power_on()
        except Exception as error:
            # Whatever stops the radio coming up (no such port, no dongle, a controller
            # that does not answer), callers see what bleak raises for a missing adapter.
            if self._transport is not None:
                await self._transport.close()
                self._transport = None
            raise BleakBluetoothNotAvailableError(
                f"bumble radio {self.radio!r} is not available: {error}",
                BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
            ) from error
        self._device = device
        return device

    def _dispatch_advertisement(self, advertisement: Advertisement) -> None:
        for listener in list(self._listeners):
            listener(advertisement)

    async def add_scan_listener(self, listener: AdvertisementListener, *, active: bool) -> None:
        """Receive advertisements; the radio scans while anyone listens.

        The scan mode is the first listener's: a controller has a single scanner.
        """
        async with self._scan_lock:
            self._listeners.append(listener)
            if not self.device.is_scanning:
                await self.device.start_scanning(active=active, filter_duplicates=False)

    async def remove_scan_listener(self, listener: AdvertisementListener) -> None:
        async with self._scan_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
            if not self._listeners and self._device is not None and self._device.is_scanning:
                await self._device.stop_scanning()

    async def close(self) -> None:
        """Drop every connection and power the radio down."""
        self.closed = True
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        device = self._device
        self._device = None
        self._listeners.clear()
        if device is not None:
            for connection in list(device.connections.values()):
                try:
                    await connection.disconnect()
                except Exception:
                    logger.debug("%s already gone while closing the central", connection)
            await device.power_off()
            if isinstance(self.radio, LocalLink):
                detach_from_link(self.radio, device)
        if self._transport is not None:
            await self._transport.close()
            self._transport = None


_centrals: dict[LocalLink | str, Central] = {}
_keystores: dict[LocalLink | str, Path] = {}
_default_radio: Radio | None = None
_in_process_link: LocalLink | None = None


def in_process_link() -> LocalLink:
    """The process-wide in-process link shared by the demo's simulated devices and gateway."""
    global _in_process_link
    if _in_process_link is None:
        _in_process_link = LocalLink()
    return _in_process_link


def set_default_radio(radio: Radio | None) -> None:
    """Choose the radio used by backends not bound to one (`None` restores the default)."""
    global _default_radio
    _default_radio = radio


def set_keystore(radio: Radio, keystore: Path | None) -> None:
    """Keep the bonds of ``radio``'s central in the ``keystore`` file (None: in memory).

    Takes effect when the central next powers up."""
    if keystore is None:
        _keystores.pop(radio, None)
    else:
        _keystores[radio] = keystore


def default_radio() -> Radio:
    """The explicitly set radio, else the one named by the environment, else in-process."""
    if _default_radio is not None:
        return _default_radio
    spec = os.environ.get(TRANSPORT_ENV_VAR)
    if spec and spec != IN_PROCESS:
        return spec
    return in_process_link()


async def get_central(radio: Radio | None = None) -> Central:
    """The started central on ``radio`` (default: `default_radio()`), created on first use."""
    if radio is None:
        radio = default_radio()
    central = _centrals.get(radio)
    # bumble objects belong to the loop they were made in; a later asyncio.run() gets anew.
    if central is None or central.closed or central.loop is not asyncio.get_running_loop():
        central = _centrals[radio] = Central(radio)
    try:
        await central.start()
    except BaseException:
        # Let the next caller try again (the dongle may be plugged in by then).
        if _centrals.get(radio) is central:
            del _centrals[radio]
        raise
    return central


async def close_central(radio: Radio | None = None) -> None:
    if radio is None:
        radio = default_radio()
    central = _centrals.pop(radio, None)
    if central is not None:
        await central.close()


async def close_all_centrals() -> None:
    """Power every central down; call on gateway shutdown so no bumble task outlives it."""
    while _centrals:
        _, central = _centrals.popitem()
        await central.close()
