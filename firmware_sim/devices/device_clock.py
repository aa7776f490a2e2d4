"""A simulated device's clock as a GATT characteristic: Current Time, or a bare Date Time.

Few health devices expose their clock; those that do let a gateway read it (the PHD IG's
coincident time stamp) and some let it be written. Writing sets the device's ``clock_offset`` so
that its wall clock shows what was written: every stamp it makes afterwards follows.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

from bumble.core import UUID
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service

from firmware_sim.devices.timestamps import device_wall_time
from gateway.gatt import CharacteristicUuid, CurrentTime, GattDateTime, LocalTimeInformation
from gateway.gatt.current_time import CURRENT_TIME, DATE_TIME

CURRENT_TIME_SERVICE = 0x1805
LOCAL_TIME_INFORMATION = CharacteristicUuid.LOCAL_TIME_INFORMATION

_Props = Characteristic.Properties
_Perms = Characteristic.Permissions


class ClockCharacteristic(StrEnum):
    CURRENT_TIME = "current_time"
    DATE_TIME = "date_time"


class Clocked(Protocol):
    """What a device's clock characteristic needs of the device."""

    zone: ZoneInfo
    clock_offset: timedelta
    follows_dst: bool
    clock_now: Callable[[], datetime]
    clock_writes: list[datetime]


def shows(device: Clocked) -> datetime:
    """The device's wall clock now (naive, whole seconds)."""
    return device_wall_time(
        device.clock_now(), device.zone, device.clock_offset, follows_dst=device.follows_dst
    )


def set_to(device: Clocked, wall: datetime) -> None:
    """Set the device's clock to show ``wall`` now."""
    true_wall = device_wall_time(
        device.clock_now(), device.zone, timedelta(0), follows_dst=device.follows_dst
    )
    device.clock_offset = wall - true_wall
    device.clock_writes.append(wall)


def local_time_information(device: Clocked) -> LocalTimeInformation:
    """The zone and DST offset the device's clock is kept in now (no DST if it ignores it)."""
    local = device.clock_now().astimezone(device.zone)
    offset, dst = local.utcoffset(), local.dst()
    assert offset is not None and dst is not None  # a ZoneInfo always answers both
    minutes = round((offset - dst).total_seconds() / 60)
    dst_min = round(dst.total_seconds() / 60) if device.follows_dst else 0
    return LocalTimeInformation.of_minutes(minutes, dst_min)


def clock_service(
    device: Clocked, kind: ClockCharacteristic, *, writable: bool, local_time: bool = False
) -> Service:
    """The Current Time Service with the device's clock, read-only or writable, and its Local
    Time Information (``local_time``: the zone and DST offset it keeps its clock in).

    A bare Date Time is no part of the Current Time Service; devices that offer one put it in a
    service of their own, which is all a gateway can tell apart from this one (it finds
    characteristics by UUID).
    """

    def read(_connection: Connection) -> bytes:
        wall = shows(device)
        if kind is ClockCharacteristic.CURRENT_TIME:
            return CurrentTime.at(wall, adjust_reason=0).pack()
        return GattDateTime.from_datetime(wall).pack()

    def write(_connection: Connection, value: bytes) -> None:
        if kind is ClockCharacteristic.CURRENT_TIME:
            stamp = CurrentTime.unpack(value).date_time
        else:
            stamp = GattDateTime.unpack(value)
        wall = stamp.to_datetime()
        if wall is not None:
            set_to(device, wall)

    number = CURRENT_TIME if kind is ClockCharacteristic.CURRENT_TIME else DATE_TIME
    properties = _Props.READ | (_Props.WRITE if writable else 0)
    permissions = _Perms.READABLE | (_Perms.WRITEABLE if writable else 0)
    characteristic: Characteristic[bytes] = Characteristic(
        UUID.from_16_bits(number),
        properties,
        permissions,
        CharacteristicValue(read=read, write=write if writable else None),
    )
    characteristics = [characteristic]
    if local_time:
        characteristics.append(
            Characteristic(
                UUID.from_16_bits(LOCAL_TIME_INFORMATION),
                _Props.READ,
                _Perms.READABLE,
                CharacteristicValue(read=lambda _c: local_time_information(device).encode()),
            )
        )
    return Service(UUID.from_16_bits(CURRENT_TIME_SERVICE), characteristics)


def wall_clock_now() -> datetime:
    return datetime.now(UTC)
