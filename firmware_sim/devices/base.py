"""`SimulatedDevice`: what every simulated health device shares.

A bumble `Device` with its own controller on a `LocalLink`, a GATT server with Device
Information and Battery, advertising of the health profile's service, one central at a time,
going out of range and back, and the encryption a bonded device asks for. The subclasses add
their profile's service and deliver measurements the way that kind of device does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from bumble import hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink

from firmware_sim.ble import radio
from firmware_sim.devices.device_clock import ClockCharacteristic, clock_service, wall_clock_now
from firmware_sim.devices.identity import IDENTITIES, DeviceIdentity
from firmware_sim.devices.timestamps import DEVICE_ZONE, device_timestamp
from firmware_sim.physiology import SimulatedMeasurement
from gateway.gatt import (
    BatteryLevel,
    CharacteristicUuid,
    DeviceInformation,
    GattDateTime,
    SystemIdentifier,
)
from telemon.device_kinds import DeviceKind

__all__ = ["ADVERTISING_INTERVAL_MS", "SimulatedDevice"]

logger = logging.getLogger(__name__)

# Short enough that a central finds and connects in milliseconds on the simulated link.
ADVERTISING_INTERVAL_MS = 20
DEVICE_INFORMATION_SERVICE = 0x180A
BATTERY_SERVICE = 0x180F
_MAX_ADVERTISING_DATA = 31  # legacy advertising; the simulated controller sends no scan response
_IDLE_POLL = 0.05  # seconds between checks of an idle connection

_Props = Characteristic.Properties
_Perms = Characteristic.Permissions
_SUBSCRIBABLE = _Props.NOTIFY | _Props.INDICATE
_CCCD_NOTIFY = 0x01
_CCCD_INDICATE = 0x02


def uuid16(number: int) -> UUID:
    return UUID.from_16_bits(number)


class SimulatedDevice:
    """One simulated BLE health device. Subclasses set ``kind`` and add their service."""

    kind: ClassVar[DeviceKind]
    model_identity: ClassVar[DeviceIdentity | None] = None
    """A real model's identity (name, Device Information); None: the kind's fictional one."""
    default_idle_disconnect: ClassVar[float | None] = None
    """Seconds of quiet after which the device drops the link (None: the central decides)."""

    def __init__(
        self,
        link: LocalLink,
        address: str | hci.Address | None = None,
        *,
        name: str | None = None,
        battery: int = 100,
        require_bonding: bool = False,
        timezone: str = DEVICE_ZONE,
        idle_disconnect: float | None = None,
        clock: ClockCharacteristic | None = None,
        clock_writable: bool = False,
        follows_dst: bool = True,
        local_time: bool = False,
    ) -> None:
        BatteryLevel(battery).encode()  # rejects a level the characteristic cannot carry
        self.identity: DeviceIdentity = self.model_identity or IDENTITIES[self.kind]
        self._link = link
        if address is None:
            address = radio.random_static_address()
        elif isinstance(address, str):
            address = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
        self.address = address.to_string(with_type_qualifier=False)
        self.name = name or self.identity.name(self.address)
        self.require_bonding = require_bonding
        self.zone = ZoneInfo(timezone)
        self.clock_offset = timedelta(0)
        """Added to every timestamp the device writes: its clock is this far off."""
        self.follows_dst = follows_dst
        """False: the clock shows the zone's standard time all year (never changed for DST)."""
        self.clock_now: Callable[[], datetime] = wall_clock_now
        self.clock_writes: list[datetime] = []  # wall times a central set the clock to
        self.pairings = 0  # pairings completed (a bonded central re-encrypts without one)
        self.encryptions = 0  # links encrypted, by a pairing or with a bond's key
        self.idle_disconnect = (
            idle_disconnect if idle_disconnect is not None else self.default_idle_disconnect
        )
        self.connection: Connection | None = None
        self._battery = battery
        self._in_range = True
        self._running = False
        self._advertising = False
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        self._radio_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._radio_tasks: set[asyncio.Task[Any]] = set()
        self._last_activity = 0.0
        # Readings taken, mod 256, in the advertising's service data: the "new data" mark many
        # devices advertise, which tells a gateway there is something to fetch.
        self.readings_taken = 0

        self.bumble = radio.create_link_device(link, self.name, address)
        # Bonds live as long as the device object, like a device's flash until reset.
        self.bumble.keystore = MemoryKeyStore()
        self.battery_level: Characteristic[bytes] = Characteristic(
            uuid16(CharacteristicUuid.BATTERY_LEVEL),
            _Props.READ | _Props.NOTIFY,
            _Perms.READABLE,
            CharacteristicValue(read=lambda _connection: BatteryLevel(self._battery).encode()),
        )
        self.bumble.add_services(
            [
                self._device_information_service(),
                Service(uuid16(BATTERY_SERVICE), [self.battery_level]),
                *self._profile_services(),
                *(
                    [clock_service(self, clock, writable=clock_writable, local_time=local_time)]
                    if clock
                    else []
                ),
            ]
        )
        self.bumble.advertising_data = self._advertising_data()
        self.bumble.on(self.bumble.EVENT_CONNECTION, self._on_connection)
        self.bumble.gatt_server.on("characteristic_subscription", self._on_subscription)

    # --- what subclasses provide ------------------------------------------------------------

    def _profile_services(self) -> Iterable[Service]:
        raise NotImplementedError

    async def record(self, measurement: SimulatedMeasurement) -> None:
        """Take ``measurement`` (produced by the patient model) and deliver it as this kind
        of device does."""
        raise NotImplementedError

    def _on_connected(self, connection: Connection) -> None:
        """A central connected (subclass hook)."""

    def _on_disconnected(self) -> None:
        """The central went away (subclass hook)."""

    def _on_subscribed(self, characteristic: Characteristic) -> None:
        """The central changed its subscription to ``characteristic`` (subclass hook)."""

    def _busy(self) -> bool:
        """Whether the device is still sending, which keeps an idle link up (subclass hook)."""
        return False

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Power on and advertise (if in range)."""
        if self._running:
            return
        await self.bumble.power_on()
        self._running = True
        await self._reconcile()

    async def stop(self) -> None:
        """Drop the link, power off, and leave the radio link."""
        self._running = False
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Radio changes run to the end: bumble cannot take back an HCI command half sent.
        await asyncio.gather(*self._radio_tasks, return_exceptions=True)
        if self.bumble.powered_on:
            async with self._radio_lock:
                await self._stop_advertising()
            await self._drop_connection()
            await self.bumble.power_off()
        radio.detach_from_link(self._link, self.bumble)

    @property
    def in_range(self) -> bool:
        return self._in_range

    def set_in_range(self, in_range: bool) -> asyncio.Task[None]:
        """Out of range: stop advertising and lose the link. Back: advertise again.

        Returns the task doing it; awaiting it is optional.
        """
        self._in_range = in_range
        return self.spawn(self._apply_range(), radio=True)

    async def _apply_range(self) -> None:
        await self._reconcile()
        if not self._in_range:
            await self._drop_connection()

    # --- connection state ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.connection is not None

    async def wait_connected(self, timeout: float | None = None) -> Connection:
        async with asyncio.timeout(timeout):
            await self._connected.wait()
        assert self.connection is not None
        return self.connection

    async def wait_disconnected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._disconnected.wait()

    def _on_connection(self, connection: Connection) -> None:
        # The controller stops connectable advertising when a central connects.
        self._advertising = False
        if self.connection is not None or not self._in_range or not self._running:
            # Health devices serve one central at a time.
            self.spawn(connection.disconnect(), radio=True)
            return
        self.connection = connection
        self._disconnected.clear()
        self._connected.set()
        self._touch()
        connection.on(connection.EVENT_DISCONNECTION, lambda _reason: self._on_lost(connection))
        connection.on(connection.EVENT_PAIRING, self._on_paired)
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, self._on_encrypted)
        self._on_connected(connection)
        if self.idle_disconnect is not None:
            self.spawn(self._disconnect_when_idle(connection, self.idle_disconnect))

    def _on_paired(self, _keys: object) -> None:
        self.pairings += 1

    def _on_encrypted(self) -> None:
        self.encryptions += 1

    async def forget_bonds(self) -> None:
        """Lose every bond, as a device does after a factory reset or a flat battery: a central
        that comes back with its old key is refused and must pair again."""
        keystore = self.bumble.keystore
        if keystore is not None:
            for address, _keys in await keystore.get_all():
                await keystore.delete(address)

    def _on_lost(self, connection: Connection) -> None:
        if connection is not self.connection:
            return
        self.connection = None
        self._connected.clear()
        self._disconnected.set()
        self._on_disconnected()
        if self._running:
            self.spawn(self._reconcile(), radio=True)

    async def _drop_connection(self) -> None:
        connection = self.connection
        if connection is not None:
            with contextlib.suppress(Exception):  # the central may have left first
                await connection.disconnect()
            await self._disconnected.wait()

    async def _disconnect_when_idle(self, connection: Connection, idle: float) -> None:
        loop = asyncio.get_running_loop()
        while connection is self.connection:
            remaining = self._last_activity + idle - loop.time()
            if remaining <= 0 and not self._busy():
                logger.debug("%s idle for %.1f s: disconnecting", self.name, idle)
                self.spawn(connection.disconnect(), radio=True)
                return
            await asyncio.sleep(max(remaining, _IDLE_POLL))

    def _touch(self) -> None:
        """Note activity on the link, which holds off the idle disconnection."""
        self._last_activity = asyncio.get_running_loop().time()

    # --- advertising ----------------------------------------------------------------------------

    def _advertising_data(self) -> bytes:
        structures: list[tuple[int, bytes]] = [
            (
                AdvertisingData.FLAGS,
                bytes(
                    [
                        AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                        | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG
                    ]
                ),
            )
        ]
        if self.identity.service_uuid is not None:
            structures.append(
                (
                    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                    uuid16(self.identity.service_uuid).to_bytes(),
                )
            )
            structures.append(
                (
                    AdvertisingData.SERVICE_DATA_16_BIT_UUID,
                    uuid16(self.identity.service_uuid).to_bytes()
                    + bytes((self.readings_taken & 0xFF,)),
                )
            )
        structures += [
            (AdvertisingData.APPEARANCE, self.identity.appearance.to_bytes(2, "little")),
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
        ]
        data = bytes(AdvertisingData(structures))
        if len(data) > _MAX_ADVERTISING_DATA:
            raise ValueError(f"name {self.name!r} does not fit the 31-byte advertising data")
        return data

    async def _reconcile(self) -> None:
        """Advertise exactly when powered on, in range and not connected."""
        async with self._radio_lock:
            wanted = self._running and self._in_range and self.connection is None
            if wanted and not self._advertising:
                self.bumble.advertising_data = self._advertising_data()
                # We restart it ourselves after each disconnection (rather than bumble's
                # auto_restart), so that a device out of range stays silent.
                await self.bumble.start_advertising(
                    advertising_interval_min=ADVERTISING_INTERVAL_MS,
                    advertising_interval_max=ADVERTISING_INTERVAL_MS,
                )
                self._advertising = True
            elif not wanted and self._advertising:
                await self._stop_advertising()

    def _took_reading(self) -> None:
        """A new reading: the advertising says so (restarted with its new data if on)."""
        self.readings_taken += 1
        self.spawn(self._readvertise(), radio=True)

    async def _readvertise(self) -> None:
        async with self._radio_lock:
            if not self._advertising:
                return  # the next start carries the new data
            await self._stop_advertising()
        await self._reconcile()

    async def _stop_advertising(self) -> None:
        await self.bumble.stop_advertising()
        self._advertising = False

    # --- GATT ----------------------------------------------------------------------------------

    def _device_information_service(self) -> Service:
        strings = (
            (CharacteristicUuid.MANUFACTURER_NAME_STRING, "manufacturer_name", "manufacturer"),
            (CharacteristicUuid.MODEL_NUMBER_STRING, "model_number", "model"),
            (CharacteristicUuid.SERIAL_NUMBER_STRING, "serial_number", None),
            (CharacteristicUuid.HARDWARE_REVISION_STRING, "hardware_revision", "hardware_revision"),
            (CharacteristicUuid.FIRMWARE_REVISION_STRING, "firmware_revision", "firmware_revision"),
        )
        characteristics = [
            Characteristic(
                uuid16(uuid),
                _Props.READ,
                _Perms.READABLE,
                DeviceInformation(
                    field,
                    getattr(self.identity, attribute)
                    if attribute
                    else self.identity.serial_number(self.address),
                ).encode(),
            )
            for uuid, field, attribute in strings
        ]
        system_id = self.identity.system_id(self.address)
        if system_id is not None:
            characteristics.append(
                Characteristic(
                    uuid16(CharacteristicUuid.SYSTEM_ID),
                    _Props.READ,
                    _Perms.READABLE,
                    SystemIdentifier(system_id).encode(),
                )
            )
        return Service(uuid16(DEVICE_INFORMATION_SERVICE), characteristics)

    def _characteristic(
        self,
        uuid: int | UUID,
        properties: Characteristic.Properties,
        value: bytes | CharacteristicValue = b"",
        *,
        protected: bool = True,
    ) -> Characteristic:
        """A profile characteristic; with ``require_bonding``, ``protected`` ones (the
        measurements and their control point) need an encrypted link to be read, written or
        subscribed to, so the central must pair first."""
        secure = protected and self.require_bonding
        permissions = _Perms(0)
        if properties & _Props.READ:
            permissions |= _Perms.READABLE
            if secure:
                permissions |= _Perms.READ_REQUIRES_ENCRYPTION
        if properties & (_Props.WRITE | _Props.WRITE_WITHOUT_RESPONSE):
            permissions |= _Perms.WRITEABLE
            if secure:
                permissions |= _Perms.WRITE_REQUIRES_ENCRYPTION
        characteristic = Characteristic(
            uuid if isinstance(uuid, UUID) else uuid16(uuid), properties, permissions, value
        )
        if secure and properties & _SUBSCRIBABLE:
            # bumble adds an open CCCD by itself; this one refuses writes before encryption.
            characteristic.descriptors = [
                *characteristic.descriptors,
                Descriptor(
                    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                    Descriptor.READABLE
                    | Descriptor.WRITEABLE
                    | Descriptor.WRITE_REQUIRES_ENCRYPTION,
                    self.bumble.gatt_server.make_descriptor_value(characteristic),
                ),
            ]
        return characteristic

    def _on_subscription(
        self, bearer: object, characteristic: Characteristic, _notify: bool, _indicate: bool
    ) -> None:
        if bearer is self.connection:
            self._touch()
            self._on_subscribed(characteristic)

    def subscribed(self, characteristic: Characteristic, *, indicate: bool) -> bool:
        """Whether the connected central enabled indications (or notifications) on it."""
        connection = self.connection
        if connection is None:
            return False
        cccd = self.bumble.gatt_server.subscribers.get(connection, {}).get(characteristic.handle)
        wanted = _CCCD_INDICATE if indicate else _CCCD_NOTIFY
        return bool(cccd and cccd[0] & wanted)

    async def notify(self, characteristic: Characteristic, payload: bytes) -> bool:
        """Notify the central if it subscribed; False if nobody was listening."""
        connection = self.connection
        if connection is None or not self.subscribed(characteristic, indicate=False):
            return False
        await self.bumble.notify_subscriber(connection, characteristic, payload)
        self._touch()
        return True

    async def indicate(self, characteristic: Characteristic, payload: bytes) -> bool:
        """Indicate to the central if it subscribed; True once it confirmed, False if it was
        not subscribed or the link dropped first."""
        connection = self.connection
        if connection is None or not self.subscribed(characteristic, indicate=True):
            return False
        sent = asyncio.ensure_future(
            self.bumble.indicate_subscriber(connection, characteristic, payload)
        )
        lost = asyncio.ensure_future(self._disconnected.wait())
        try:
            # bumble would wait out its 30 s ATT timeout for a confirmation a lost link
            # cannot bring.
            await asyncio.wait((sent, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not sent.done():
                sent.cancel()
            await asyncio.gather(sent, lost, return_exceptions=True)
        confirmed = not sent.cancelled() and sent.exception() is None
        if confirmed:
            self._touch()
        return confirmed

    # --- battery, time, helpers -----------------------------------------------------------------

    @property
    def battery(self) -> int:
        return self._battery

    @battery.setter
    def battery(self, percent: int) -> None:
        BatteryLevel(percent).encode()
        self._battery = percent
        if self.connection is not None:
            self.spawn(self.notify(self.battery_level, BatteryLevel(percent).encode()))

    def timestamp(self, measurement: SimulatedMeasurement) -> GattDateTime:
        """The device's own time stamp for ``measurement``: local wall clock plus its error."""
        return device_timestamp(
            measurement.measured_at, self.zone, self.clock_offset, follows_dst=self.follows_dst
        )

    def _check_kind(self, measurement: SimulatedMeasurement) -> None:
        if measurement.device is not self.kind:
            raise ValueError(f"a {self.kind} cannot record a {measurement.device} measurement")

    def spawn(
        self, coroutine: Coroutine[Any, Any, Any], *, radio: bool = False
    ) -> asyncio.Task[Any]:
        """Run ``coroutine`` in the background while the device runs. :meth:`stop` cancels
        it, unless it is a ``radio`` change (HCI commands), which it lets finish."""
        task = asyncio.ensure_future(coroutine)
        (self._radio_tasks if radio else self._tasks).add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        self._radio_tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.warning("%s: background task failed", self.name, exc_info=error)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.address}>"
