"""The time a device writes in its records: its own wall clock, which is local and can be off.

A home device is set to local time (by its owner, or by the phone app that paired it) and keeps
no time zone; GATT Date Time has none either. ``clock_offset`` is how far its clock is off.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.gatt import GattDateTime

DEVICE_ZONE = "Europe/Rome"


def device_wall_time(moment: datetime, zone: ZoneInfo, clock_offset: timedelta) -> datetime:
    """The naive local time a device whose clock is ``clock_offset`` off shows at ``moment``."""
    if moment.utcoffset() is None:
        raise ValueError("measurement times must be timezone-aware")
    local = moment.astimezone(zone).replace(tzinfo=None) + clock_offset
    # The device clock ticks in whole seconds; GATT Date Time has no fraction either.
    return local.replace(microsecond=0)


def device_timestamp(moment: datetime, zone: ZoneInfo, clock_offset: timedelta) -> GattDateTime:
    return GattDateTime.from_datetime(device_wall_time(moment, zone, clock_offset))
