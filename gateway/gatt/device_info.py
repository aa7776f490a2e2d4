"""Device health: Battery Level (0x2A19, Battery Service), the Device Information Service
strings and its System ID (0x2A23). None of them are readings; they describe the device."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

from gateway.gatt.errors import EncodeError
from gateway.gatt.model import Decoded
from gateway.gatt.reader import MAX_ATTRIBUTE_LENGTH, ByteReader
from gateway.gatt.uuids import CharacteristicUuid
from telemon.system_id import format_system_id

BATTERY_CHARACTERISTIC = CharacteristicUuid.BATTERY_LEVEL.label


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    percent: int  # 0-100; 101-255 are RFU

    def encode(self) -> bytes:
        if not 0 <= self.percent <= 100:
            raise EncodeError(f"battery level {self.percent} is outside 0..100 %")
        return bytes((self.percent,))


def decode_battery_level(payload: bytes) -> BatteryLevel:
    reader = ByteReader(BATTERY_CHARACTERISTIC, payload)
    percent = reader.uint(1, "battery level")
    if percent > 100:
        raise reader.error(f"battery level {percent} is reserved (above 100 %)", offset=0)
    reader.expect_end()
    return BatteryLevel(percent)


def interpret_battery_level(level: BatteryLevel) -> Decoded[BatteryLevel]:
    return Decoded(BATTERY_CHARACTERISTIC, level)


# The DIS strings, by characteristic, with the key the gateway reports them under.
DEVICE_INFORMATION_FIELDS: MappingProxyType[CharacteristicUuid, str] = MappingProxyType(
    {
        CharacteristicUuid.MANUFACTURER_NAME_STRING: "manufacturer_name",
        CharacteristicUuid.MODEL_NUMBER_STRING: "model_number",
        CharacteristicUuid.SERIAL_NUMBER_STRING: "serial_number",
        CharacteristicUuid.HARDWARE_REVISION_STRING: "hardware_revision",
        CharacteristicUuid.FIRMWARE_REVISION_STRING: "firmware_revision",
        CharacteristicUuid.SOFTWARE_REVISION_STRING: "software_revision",
    }
)

_CHARACTERISTIC_OF_FIELD = MappingProxyType(
    {field: characteristic for characteristic, field in DEVICE_INFORMATION_FIELDS.items()}
)


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    field: str  # a value of DEVICE_INFORMATION_FIELDS
    value: str

    def encode(self) -> bytes:
        if self.value.endswith("\x00"):
            raise EncodeError("trailing NULs are padding on the wire; the value cannot end in one")
        encoded = self.value.encode("utf-8")
        if len(encoded) > MAX_ATTRIBUTE_LENGTH:
            raise EncodeError(f"{self.field} is longer than {MAX_ATTRIBUTE_LENGTH} bytes")
        return encoded


def decode_device_information(
    characteristic: CharacteristicUuid, payload: bytes
) -> DeviceInformation:
    reader = ByteReader(characteristic.label, payload)
    raw = reader.rest()
    # utf8s is not NUL-terminated, but many devices pad or terminate with NULs anyway.
    text = raw.rstrip(b"\x00")
    try:
        value = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise reader.error(f"not UTF-8: {exc.reason}", offset=exc.start) from None
    return DeviceInformation(DEVICE_INFORMATION_FIELDS[characteristic], value)


def interpret_device_information(info: DeviceInformation) -> Decoded[DeviceInformation]:
    return Decoded(_CHARACTERISTIC_OF_FIELD[info.field].label, info)


SYSTEM_ID_CHARACTERISTIC = CharacteristicUuid.SYSTEM_ID.label


@dataclass(frozen=True, slots=True)
class SystemIdentifier:
    """Device Information's System ID: the device's EUI-64, as :mod:`telemon.system_id`
    writes it. Reported beside the strings, under ``field``."""

    value: str
    field: ClassVar[str] = "system_id"

    def encode(self) -> bytes:
        # On the wire a little-endian uint64: the 40-bit manufacturer-defined identifier in the
        # low bits, the 24-bit OUI in the high ones; reversed, the EUI-64 in reading order.
        return bytes.fromhex(self.value.replace("-", ""))[::-1]


def decode_system_id(payload: bytes) -> SystemIdentifier:
    reader = ByteReader(SYSTEM_ID_CHARACTERISTIC, payload)
    raw = reader.take(8, "system id")
    reader.expect_end()
    return SystemIdentifier(format_system_id(raw[::-1]))


def interpret_system_id(system_id: SystemIdentifier) -> Decoded[SystemIdentifier]:
    return Decoded(SYSTEM_ID_CHARACTERISTIC, system_id)
