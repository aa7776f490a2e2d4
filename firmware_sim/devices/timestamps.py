"""The time a device writes in its records: its own wall clock, which is local and can be off.

A home device is set to local time (by its owner, or by the phone app that paired it) and keeps
no time zone; GATT Date Time has none either. ``clock_offset`` is how far its clock is off.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.gatt import GattDateTime

DEVICE_ZONE = "Europe/Rome"


def device_wall_time(
    moment: datetime, zone: ZoneInfo, clock_offset: timedelta, *, follows_dst: bool = True
) -> datetime:
    """The naive local time a device whose clock is ``clock_offset`` off shows at ``moment``.

    A clock that does not follow DST shows the zone's standard time all year.
    """
    if moment.utcoffset() is None:
        raise ValueError("measurement times must be timezone-aware")
    aware = moment.astimezone(zone)
    local = aware.replace(tzinfo=None) + clock_offset
    if not follows_dst:
        local -= aware.dst() or timedelta(0)
    # The device clock ticks in whole seconds; GATT Date Time has no fraction either.
    return local.replace(microsecond=0)


def device_timestamp(
    moment: datetime, zone: ZoneInfo, clock_offset: timedelta, *, follows_dst: bool = True
) -> GattDateTime:
    return GattDateTime.from_datetime(
        device_wall_time(moment, zone, clock_offset, follows_dst=follows_dst)
    )
