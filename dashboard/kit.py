"""A patient's kit: the home gateway and its devices; assign, swap, return; the device card.

Readings name the patient (observations.patient_id) and the device row that measured them, so a
swapped or returned device keeps its row (unpaired_at, replaced_by) and the patient keeps every
reading it took: the history is the patient's, not the cuff's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dashboard import audit
from dashboard.administration import InvalidInput
from dashboard.authz import Principal
from dashboard.enrolment import record_history
from dashboard.enrolment_form import Errors
from telemon.database import one_row
from telemon.device_kinds import DeviceKind

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# A Bluetooth device address as the gateway reports it: six hex pairs.
BT_ADDRESS = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")


@dataclass(frozen=True)
class DeviceForm:
    kind: str
    address: str
    model: str | None
    manufacturer: str | None
    serial_number: str | None
    udi: str | None


def parse_device(form: dict[str, str]) -> tuple[DeviceForm | None, Errors]:
    errors: Errors = {}
    kind = form.get("kind", "")
    if kind not in {k.value for k in DeviceKind}:
        errors["kind"] = ("enrol.error.required", {})
    address = form.get("address", "").strip().upper().replace("-", ":")
    if not BT_ADDRESS.match(address):
        errors["address"] = ("kit.error.address", {})
    fields = {
        n: (form.get(n, "").strip() or None)
        for n in ("model", "manufacturer", "serial_number", "udi")
    }
    for name, value in fields.items():
        if value is not None and (len(value) > 200 or "\x00" in value):
            errors[name] = ("enrol.error.required", {})
    if errors:
        return None, errors
    return DeviceForm(kind, address, **fields), {}


def kit(conn: psycopg.Connection, patient_id: int) -> list[dict[str, Any]]:
    """The patient's gateways, each with its devices (current first, then returned/swapped)."""
    cur = conn.cursor(row_factory=dict_row)
    gateways = cur.execute(
        "SELECT id, code, registered_at, online, last_seen_at, system_id FROM gateways "
        "WHERE patient_id = %s ORDER BY id",
        (patient_id,),
    ).fetchall()
    for g in gateways:
        g["devices"] = cur.execute(
            "SELECT d.id, d.kind, d.address, d.manufacturer, d.model, d.serial_number, d.udi, "
            "d.system_id, d.firmware, d.reported_serial_number, d.paired_at, d.unpaired_at, "
            "d.return_reason, r.serial_number AS replaced_by_serial, "
            "(SELECT count(*) FROM observations o WHERE o.patient_id = %s AND o.device_id = d.id) "
            "AS readings FROM devices d LEFT JOIN devices r ON r.id = d.replaced_by "
            "WHERE d.gateway_id = %s ORDER BY d.unpaired_at IS NOT NULL, d.kind, d.paired_at",
            (patient_id, g["id"]),
        ).fetchall()
    return gateways


def _gateway_of(conn: psycopg.Connection, patient_id: int, gateway_id: int) -> None:
    if (
        conn.execute(
            "SELECT 1 FROM gateways WHERE id = %s AND patient_id = %s", (gateway_id, patient_id)
        ).fetchone()
        is None
    ):
        raise InvalidInput("no such gateway in the patient's kit")


def _device_of(conn: psycopg.Connection, patient_id: int, device_id: int) -> dict[str, Any]:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT d.* FROM devices d JOIN gateways g ON g.id = d.gateway_id "
            "WHERE d.id = %s AND g.patient_id = %s AND d.unpaired_at IS NULL FOR UPDATE OF d",
            (device_id, patient_id),
        )
        .fetchone()
    )
    if row is None:
        raise InvalidInput("no such device in use in the patient's kit")
    return row


def _record(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    action: str,
    changes: dict[str, Any],
    reason: str | None,
    object_type: str,
    object_id: int,
) -> None:
    record_history(conn, user, patient_id, action, changes, reason)
    audit.record(
        conn,
        user,
        action,
        patient_id=patient_id,
        object_type=object_type,
        object_id=object_id,
        details=changes | ({"reason": reason} if reason else {}),
    )


def assign_gateway(conn: psycopg.Connection, user: Principal, patient_id: int, code: str) -> int:
    """Give the patient a gateway: a new code registers it, a free one is reassigned."""
    if not CODE.match(code):
        raise InvalidInput("a gateway code is letters, digits and . _ : -")
    with conn.transaction():
        row = conn.execute(
            "SELECT id, patient_id FROM gateways WHERE code = %s FOR UPDATE", (code,)
        ).fetchone()
        if row is not None and row[1] is not None:
            raise InvalidInput(f"gateway {code} is in another patient's kit")
        if row is None:
            gateway_id = one_row(
                conn.execute(
                    "INSERT INTO gateways (code, patient_id) VALUES (%s, %s) RETURNING id",
                    (code, patient_id),
                )
            )[0]
        else:
            gateway_id = row[0]
            conn.execute(
                "UPDATE gateways SET patient_id = %s WHERE id = %s", (patient_id, gateway_id)
            )
        _record(
            conn, user, patient_id, "kit.assign", {"gateway": code}, None, "gateway", gateway_id
        )
    return int(gateway_id)


def _pair(conn: psycopg.Connection, gateway_id: int, new: DeviceForm, now: datetime) -> int:
    """Pair a device; one returned from this same gateway earlier is paired again (its row)."""
    row = conn.execute(
        "SELECT id, unpaired_at FROM devices WHERE gateway_id = %s AND address = %s",
        (gateway_id, new.address),
    ).fetchone()
    if row is not None and row[1] is None:
        raise InvalidInput(f"device {new.address} is already paired with this gateway")
    values = (new.kind, new.manufacturer, new.model, new.serial_number, new.udi, now)
    if row is not None:
        conn.execute(
            "UPDATE devices SET kind = %s, manufacturer = %s, model = %s, serial_number = %s, "
            "udi = %s, paired_at = %s, unpaired_at = NULL, replaced_by = NULL, "
            "return_reason = NULL WHERE id = %s",
            (*values, row[0]),
        )
        return int(row[0])
    return int(
        one_row(
            conn.execute(
                "INSERT INTO devices (kind, manufacturer, model, serial_number, udi, paired_at, "
                "gateway_id, address) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (*values, gateway_id, new.address),
            )
        )[0]
    )


def assign_device(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    gateway_id: int,
    new: DeviceForm,
    now: datetime,
) -> int:
    with conn.transaction():
        _gateway_of(conn, patient_id, gateway_id)
        device_id = _pair(conn, gateway_id, new, now)
        _record(
            conn,
            user,
            patient_id,
            "kit.assign",
            {"device": device_id, "kind": new.kind, "serial_number": new.serial_number},
            None,
            "device",
            device_id,
        )
    return device_id


def swap_device(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    old_id: int,
    new: DeviceForm,
    reason: str,
    now: datetime,
) -> int:
    """Replace a device by another of the same kind on the same gateway."""
    with conn.transaction():
        old = _device_of(conn, patient_id, old_id)
        if new.kind != old["kind"]:
            raise InvalidInput("a device is swapped for one of the same kind")
        conn.execute(
            "UPDATE devices SET unpaired_at = %s, return_reason = %s WHERE id = %s",
            (now, reason, old_id),
        )
        device_id = _pair(conn, old["gateway_id"], new, now)
        conn.execute("UPDATE devices SET replaced_by = %s WHERE id = %s", (device_id, old_id))
        _record(
            conn,
            user,
            patient_id,
            "kit.swap",
            {
                "device": [old_id, device_id],
                "serial_number": [old["serial_number"], new.serial_number],
            },
            reason,
            "device",
            device_id,
        )
    return device_id


def return_device(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    device_id: int,
    reason: str,
    now: datetime,
) -> None:
    with conn.transaction():
        old = _device_of(conn, patient_id, device_id)
        conn.execute(
            "UPDATE devices SET unpaired_at = %s, return_reason = %s WHERE id = %s",
            (now, reason, device_id),
        )
        _record(
            conn,
            user,
            patient_id,
            "kit.return",
            {"device": device_id, "serial_number": old["serial_number"]},
            reason,
            "device",
            device_id,
        )


def return_gateway(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    gateway_id: int,
    reason: str,
    now: datetime,
) -> None:
    """The whole kit comes back: the gateway leaves the patient (ingest stores nothing more of
    it for them) and its devices are returned with it; the readings stay the patient's."""
    with conn.transaction():
        _gateway_of(conn, patient_id, gateway_id)
        code = one_row(
            conn.execute(
                "UPDATE gateways SET patient_id = NULL WHERE id = %s RETURNING code",
                (gateway_id,),
            )
        )[0]
        returned = [
            r[0]
            for r in conn.execute(
                "UPDATE devices SET unpaired_at = %s, return_reason = %s "
                "WHERE gateway_id = %s AND unpaired_at IS NULL RETURNING id",
                (now, reason, gateway_id),
            )
        ]
        _record(
            conn,
            user,
            patient_id,
            "kit.return",
            {"gateway": code, "devices": sorted(returned)},
            reason,
            "gateway",
            gateway_id,
        )


def device_card(conn: psycopg.Connection, patient_id: int) -> dict[str, Any] | None:
    """The tesserino dispositivi: the patient, the devices in use, the gateway, whom to call."""
    cur = conn.cursor(row_factory=dict_row)
    patient = cur.execute(
        "SELECT p.id, p.code, p.given_name, p.family_name, p.birth_date, p.language, "
        "t.name AS centre, t.duty_phone FROM patients p "
        "LEFT JOIN care_teams t ON t.id = p.care_team_id WHERE p.id = %s",
        (patient_id,),
    ).fetchone()
    if patient is None:
        return None
    if patient["duty_phone"] is None:
        # No centre of their own recorded: the cooperative's service centre answers.
        centre = conn.execute(
            "SELECT name, duty_phone FROM care_teams WHERE kind = 'service_centre' "
            "AND duty_phone IS NOT NULL ORDER BY id LIMIT 1"
        ).fetchone()
        if centre is not None:
            patient["centre"], patient["duty_phone"] = centre
    patient["devices"] = cur.execute(
        "SELECT d.kind, d.manufacturer, d.model, d.serial_number, d.udi, d.address, d.paired_at, "
        "d.system_id, d.firmware, d.reported_serial_number, d.clock_ignores_dst, "
        "d.clock_zone_min, d.clock_dst_min, g.code AS gateway "
        "FROM devices d JOIN gateways g ON g.id = d.gateway_id "
        "WHERE g.patient_id = %s AND d.unpaired_at IS NULL ORDER BY g.code, d.kind",
        (patient_id,),
    ).fetchall()
    patient["gateways"] = conn.execute(
        "SELECT code, system_id FROM gateways WHERE patient_id = %s ORDER BY code", (patient_id,)
    ).fetchall()
    return patient
