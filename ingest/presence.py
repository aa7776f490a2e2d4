"""Gateway presence: the retained ``status`` topic and its 'offline' last will."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from ingest.inbound import StatusMessage
from telemon.payload import DEVICE_IDENTITY_FIELDS
from telemon.payload_schema import DeviceHealthModel

# A retained message proves nothing about now, so it leaves last_seen_at alone; a will repeated
# by the broker keeps the time the gateway first went offline.
_ONLINE = """
UPDATE gateways SET
    online = true,
    offline_since = NULL,
    last_seen_at = CASE WHEN %(retained)s THEN last_seen_at ELSE now() END,
    software_version = coalesce(%(version)s, software_version),
    system_id = coalesce(%(system_id)s, system_id),
    outbox_depth = %(outbox_depth)s,
    outbox_oldest_at = %(outbox_oldest_at)s,
    recoveries = %(recoveries)s,
    last_status = %(status)s
WHERE code = %(code)s
RETURNING id
"""

_OFFLINE = """
UPDATE gateways SET
    online = false,
    offline_since = CASE WHEN online OR offline_since IS NULL THEN now() ELSE offline_since END,
    last_status = %(status)s
WHERE code = %(code)s
RETURNING id
"""

# The gateway's inventory is the pairing it actually uses: a device it reports is registered.
# A device returned or swapped out (dashboard/kit.py) is no longer the patient's equipment: the
# gateway may still hear it until it is switched off, but its row keeps what it was at return.
# The clock as last measured (issue 19); a gateway that does not report it leaves it as it was.
# Device Information (issue 19): the kit's manufacturer, model and serial stay as an admin
# entered them (the device fills only those left empty); the serial it reports is kept apart,
# for the equipment page to compare; nothing reported (an older gateway) changes nothing.
# The clock's facts (whether it keeps standard time all year, the zone and DST offset it declares)
# are one report, taken whole when the gateway says anything of them or has set the clock since
# (what was learnt of the old clock is then forgotten); a status silent on them (an older
# gateway, a device not read yet since a restart) leaves them as they were.
_CLOCK_FACTS_REPORTED = (
    "excluded.clock_ignores_dst IS NOT NULL OR excluded.clock_zone_min IS NOT NULL "
    "OR excluded.clock_set_at > coalesce(devices.clock_set_at, '-infinity')"
)
_CLOCK_FACTS = ",\n".join(
    f"    {column} = CASE WHEN {_CLOCK_FACTS_REPORTED} "
    f"THEN excluded.{column} ELSE devices.{column} END"
    for column in ("clock_ignores_dst", "clock_zone_min", "clock_dst_min")
)
_DEVICE = f"""
INSERT INTO devices (gateway_id, address, kind, battery_pct, rssi, last_seen_at, last_reading_at,
                     clock_skew_s, clock_set_at, clock_set_from_s, clock_ignores_dst,
                     clock_zone_min, clock_dst_min, system_id, manufacturer, model,
                     serial_number, reported_serial_number, firmware, identity_reported_at)
VALUES (%(gateway_id)s, %(address)s, %(kind)s, %(battery_pct)s, %(rssi)s, %(last_seen_at)s,
        %(last_reading_at)s, %(clock_skew_s)s, %(clock_set_at)s, %(clock_set_from_s)s,
        %(clock_ignores_dst)s, %(clock_zone_min)s, %(clock_dst_min)s,
        %(system_id)s, %(manufacturer)s, %(model)s, %(serial_number)s, %(serial_number)s,
        %(firmware)s, CASE WHEN %(identified)s THEN now() END)
ON CONFLICT (gateway_id, address) DO UPDATE SET
    kind = excluded.kind,
    battery_pct = coalesce(excluded.battery_pct, devices.battery_pct),
    rssi = coalesce(excluded.rssi, devices.rssi),
    last_seen_at = greatest(excluded.last_seen_at, devices.last_seen_at),
    last_reading_at = greatest(excluded.last_reading_at, devices.last_reading_at),
    clock_skew_s = coalesce(excluded.clock_skew_s, devices.clock_skew_s),
    clock_set_at = greatest(excluded.clock_set_at, devices.clock_set_at),
    clock_set_from_s = CASE
        WHEN excluded.clock_set_at > devices.clock_set_at OR devices.clock_set_at IS NULL
        THEN coalesce(excluded.clock_set_from_s, devices.clock_set_from_s)
        ELSE devices.clock_set_from_s
    END,
{_CLOCK_FACTS},
    system_id = coalesce(excluded.system_id, devices.system_id),
    manufacturer = coalesce(devices.manufacturer, excluded.manufacturer),
    model = coalesce(devices.model, excluded.model),
    serial_number = coalesce(devices.serial_number, excluded.serial_number),
    reported_serial_number = coalesce(excluded.reported_serial_number,
                                      devices.reported_serial_number),
    firmware = coalesce(excluded.firmware, devices.firmware),
    identity_reported_at = coalesce(excluded.identity_reported_at, devices.identity_reported_at)
WHERE devices.unpaired_at IS NULL
"""

_RETURNED = """
SELECT address, unpaired_at FROM devices
WHERE gateway_id = %s AND address = ANY(%s) AND unpaired_at IS NOT NULL
"""


@dataclass(frozen=True, slots=True)
class Applied:
    """A status recorded: the devices it reported that had been returned, by index in
    ``status.devices``, with when they were (their status was left out)."""

    returned: dict[int, datetime] = field(default_factory=dict)


def apply_status(conn: psycopg.Connection, message: StatusMessage) -> Applied | None:
    """Record a status message; None when the gateway is unknown."""
    status = message.status
    document = Jsonb(status.model_dump(mode="json", exclude_none=True))
    if status.state == "offline":
        row = conn.execute(_OFFLINE, {"status": document, "code": status.gateway_id}).fetchone()
        return Applied() if row is not None else None
    row = conn.execute(
        _ONLINE,
        {
            "retained": message.retained,
            "version": status.version,
            "outbox_depth": status.outbox_depth,
            "outbox_oldest_at": status.outbox_oldest_at,
            "recoveries": Jsonb(status.recoveries),
            "system_id": status.system_id,
            "status": document,
            "code": status.gateway_id,
        },
    ).fetchone()
    if row is None:
        return None
    if not status.devices:
        return Applied()
    gateway_id = row[0]
    since: dict[str, datetime] = dict(
        conn.execute(_RETURNED, (gateway_id, [d.device_id for d in status.devices])).fetchall()
    )
    with conn.cursor() as cur:
        cur.executemany(
            _DEVICE,
            [_device_row(gateway_id, d) for d in status.devices if d.device_id not in since],
        )
    return Applied(
        {i: since[d.device_id] for i, d in enumerate(status.devices) if d.device_id in since}
    )


def _device_row(gateway_id: int, d: DeviceHealthModel) -> dict[str, object]:
    return {
        "gateway_id": gateway_id,
        "address": d.device_id,
        "kind": d.kind,
        "battery_pct": d.battery_pct,
        "rssi": d.rssi,
        "last_seen_at": d.last_seen_at,
        "last_reading_at": d.last_reading_at,
        "clock_skew_s": d.clock_skew_s,
        "clock_set_at": d.clock_set_at,
        "clock_set_from_s": d.clock_set_from_s,
        "clock_ignores_dst": d.clock_ignores_dst,
        "clock_zone_min": d.clock_zone_min,
        "clock_dst_min": d.clock_dst_min,
        "system_id": d.system_id,
        "manufacturer": d.manufacturer_name,
        "model": d.model_number,
        "serial_number": d.serial_number,
        "firmware": d.firmware_revision,
        "identified": any(getattr(d, name) is not None for name in DEVICE_IDENTITY_FIELDS),
    }
