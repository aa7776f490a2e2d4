"""A simulated BLE peripheral on an in-process bumble link, for the bumble backend tests."""

from __future__ import annotations

import asyncio

from bumble import att
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Descriptor, Service
from bumble.link import LocalLink

from firmware_sim.ble import radio

# SIG-assigned UUIDs go on air in their 16-bit form; bleak spells them out in full.
BATTERY_SERVICE_16 = "180F"
BATTERY_LEVEL_16 = "2A19"
USER_DESCRIPTION_16 = "2901"
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL = "00002a19-0000-1000-8000-00805f9b34fb"
MEASUREMENT_SERVICE = "7e1e0001-1c2a-4c39-9c1b-0bd1a3a5a001"
MEASUREMENT = "7e1e0002-1c2a-4c39-9c1b-0bd1a3a5a001"
CONTROL_POINT = "7e1e0003-1c2a-4c39-9c1b-0bd1a3a5a001"
SETTING_DESCRIPTOR = "7e1e0004-1c2a-4c39-9c1b-0bd1a3a5a001"
SECRET = "7e1e0005-1c2a-4c39-9c1b-0bd1a3a5a001"
SLOW = "7e1e0006-1c2a-4c39-9c1b-0bd1a3a5a001"
USER_DESCRIPTION = "00002901-0000-1000-8000-00805f9b34fb"
CCCD = "00002902-0000-1000-8000-00805f9b34fb"

TEST_COMPANY_ID = 0xFFFF  # Reserved by the Bluetooth SIG for tests.
REJECTED_COMMAND = b"\xff"
TX_POWER = -8
ADVERTISING_INTERVAL_MS = 20


class SimulatedPeripheral:
    """A bumble GATT server advertising on the link, as a health device would.

    Battery Service (Battery Level: read + notify), and a vendor service with an
    indicate-only measurement, a control point writable with and without response
    (whose user description and a read/write setting descriptor can be read), and a
    characteristic readable only over an encrypted link, and one whose reads are
    answered only when the test releases them.
    """

    def __init__(self, link: LocalLink, name: str, *, battery_level: int = 87) -> None:
        self.name = name
        self.device = radio.create_link_device(link, name)
        self.address = self.device.random_address.to_string(with_type_qualifier=False)
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.setting = b"\x00"
        self.manufacturer_payload = name.encode()[-2:]
        self.service_data = bytes([battery_level])
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self.read_requested = asyncio.Event()
        self.release_reads = asyncio.Event()
        self.connection: Connection | None = None

        self.battery_level = Characteristic(
            BATTERY_LEVEL_16,
            Characteristic.Properties.READ | Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            bytes([battery_level]),
        )
        self.measurement = Characteristic(
            MEASUREMENT, Characteristic.Properties.INDICATE, Characteristic.READABLE, b""
        )
        self.control_point = Characteristic(
            CONTROL_POINT,
            Characteristic.Properties.WRITE | Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_control_write),
            descriptors=[
                Descriptor(USER_DESCRIPTION_16, Descriptor.READABLE, b"Control point"),
                Descriptor(
                    SETTING_DESCRIPTOR,
                    Descriptor.READABLE | Descriptor.WRITEABLE,
                    CharacteristicValue(read=self._read_setting, write=self._write_setting),
                ),
            ],
        )
        self.secret = Characteristic(
            SECRET,
            Characteristic.Properties.READ,
            Characteristic.READABLE | Characteristic.READ_REQUIRES_ENCRYPTION,
            b"only-when-paired",
        )
        self.slow = Characteristic(
            SLOW,
            Characteristic.Properties.READ,
            Characteristic.READABLE,
            CharacteristicValue(read=self._read_slowly),
        )
        self.device.add_services(
            [
                Service(BATTERY_SERVICE_16, [self.battery_level]),
                Service(
                    MEASUREMENT_SERVICE,
                    [self.measurement, self.control_point, self.secret, self.slow],
                ),
            ]
        )
        self.device.advertising_data = bytes(
            AdvertisingData(
                [
                    (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        UUID(BATTERY_SERVICE_16).to_bytes(),
                    ),
                    (
                        AdvertisingData.MANUFACTURER_SPECIFIC_DATA,
                        TEST_COMPANY_ID.to_bytes(2, "little") + self.manufacturer_payload,
                    ),
                    (
                        AdvertisingData.SERVICE_DATA_16_BIT_UUID,
                        UUID(BATTERY_SERVICE_16).to_bytes() + self.service_data,
                    ),
                    (AdvertisingData.TX_POWER_LEVEL, TX_POWER.to_bytes(1, "little", signed=True)),
                ]
            )
        )
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection
        self._disconnected.clear()
        self._connected.set()

        def on_disconnection(_reason: int) -> None:
            self.connection = None
            self._connected.clear()
            self._disconnected.set()

        connection.on(connection.EVENT_DISCONNECTION, on_disconnection)

    def _on_control_write(self, _connection: Connection, value: bytes) -> None:
        if value == REJECTED_COMMAND:
            # What a device says to an opcode it does not support.
            raise att.ATT_Error(att.ErrorCode.VALUE_NOT_ALLOWED)
        self.received.put_nowait(bytes(value))

    def _read_setting(self, _connection: Connection) -> bytes:
        return self.setting

    def _write_setting(self, _connection: Connection, value: bytes) -> None:
        self.setting = bytes(value)

    async def _read_slowly(self, _connection: Connection) -> bytes:
        self.read_requested.set()
        await self.release_reads.wait()
        return b"late"

    async def start(self) -> None:
        await self.device.power_on()
        # auto_restart: advertise again after each disconnection, so the gateway can reconnect.
        await self.device.start_advertising(
            auto_restart=True,
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )

    async def stop(self, link: LocalLink) -> None:
        self.release_reads.set()
        if self.device.powered_on:
            await self.device.stop_advertising()
            if (connection := self.connection) is not None:
                await connection.disconnect()
            await self.device.power_off()
        radio.detach_from_link(link, self.device)

    async def wait_connected(self) -> Connection:
        async with asyncio.timeout(5):
            await self._connected.wait()
        assert self.connection is not None
        return self.connection

    async def wait_disconnected(self) -> None:
        await self._disconnected.wait()

    async def notify_battery(self, level: int) -> None:
        await self.device.notify_subscribers(self.battery_level, bytes([level]))

    async def indicate_measurement(self, value: bytes) -> None:
        """Returns once the central has confirmed the indication."""
        await self.device.indicate_subscribers(self.measurement, value)

    async def disconnect_central(self) -> None:
        connection = await self.wait_connected()
        await connection.disconnect()
