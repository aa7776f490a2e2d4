"""The service centre's technical worklists: offline gateways, flat batteries, undelivered SMS."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row

from dashboard.authz import Principal, patient_scope
from dashboard.i18n import translator
from dashboard.models import (
    CLOCK_OFF_S,
    DeviceClock,
    GatewayIssue,
    InboundItem,
    LowBattery,
    NotificationItem,
    SerialMismatch,
)
from dashboard.restrictions import finding_visible, visible
from dashboard.web import LOCAL_TZ

LOW_BATTERY_PCT = 20
# What an SMS naming hidden data says in the outbox instead, by what it names.
WITHHELD_TEXT = {
    "finding": "restriction.sms_withheld",
    "reminder": "restriction.sms_withheld_reminder",
}
CLOCK_SET_RECENTLY_DAYS = 30


def _equipment_scope(user: Principal) -> tuple[str, dict[str, object]]:
    # Admins look after their organisation's patients' equipment and the unassigned stock
    # (codes, not clinical data); clinicians their patients'.
    if user.role == "admin":
        scope, params = patient_scope(user, permission="patient.enrol")
        return f"(p.id IS NULL OR {scope})", params
    scope, params = patient_scope(user)
    return f"({scope})", params


def offline_gateways(conn: psycopg.Connection, user: Principal) -> list[GatewayIssue]:
    scope, params = _equipment_scope(user)
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""
            SELECT g.id, g.code, g.patient_id,
                   p.given_name || ' ' || p.family_name AS patient_name,
                   g.online, g.last_seen_at, g.offline_since, g.outbox_depth
            FROM gateways g LEFT JOIN patients p ON p.id = g.patient_id
            WHERE NOT g.online AND {scope}
            ORDER BY g.offline_since NULLS FIRST, g.code
            """,
            params,
        )
        .fetchall()
    )
    if user.role == "admin":
        rows = [r | {"patient_name": None} for r in rows]
    return [GatewayIssue(**r) for r in rows]


def low_batteries(conn: psycopg.Connection, user: Principal) -> list[LowBattery]:
    scope, params = _equipment_scope(user)
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""
            SELECT d.id AS device_id, d.kind, d.battery_pct, g.code AS gateway_code,
                   g.patient_id, p.given_name || ' ' || p.family_name AS patient_name,
                   d.last_seen_at
            FROM devices d JOIN gateways g ON g.id = d.gateway_id
            LEFT JOIN patients p ON p.id = g.patient_id
            WHERE d.unpaired_at IS NULL AND d.battery_pct <= %(low)s AND {scope}
            ORDER BY d.battery_pct, g.code
            """,
            params | {"low": LOW_BATTERY_PCT},
        )
        .fetchall()
    )
    if user.role == "admin":
        rows = [r | {"patient_name": None} for r in rows]
    return [LowBattery(**r) for r in rows]


def device_clocks(conn: psycopg.Connection, user: Principal) -> list[DeviceClock]:
    """Clocks still off beyond what the gateway corrects by writing, or set by it lately: the
    readings they stamped were shifted, and a clock that keeps drifting wants a new device.
    Also clocks that show another time than the patient's wall clock and are read right all
    the same (issue 19): one that keeps standard time all year, one kept in a zone or DST
    offset it declares other than local time now; a nurse otherwise cannot tell why the
    device's display and its readings' times differ by an hour."""
    scope, params = _equipment_scope(user)
    local_offset = datetime.now(LOCAL_TZ).utcoffset()
    assert local_offset is not None  # a ZoneInfo always has one
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""
            SELECT d.id AS device_id, d.kind, g.code AS gateway_code, g.patient_id,
                   p.given_name || ' ' || p.family_name AS patient_name,
                   d.clock_skew_s, d.clock_set_at, d.clock_set_from_s,
                   coalesce(d.clock_set_at > now() - make_interval(days => %(days)s), false)
                       AS set_lately,
                   d.clock_ignores_dst, d.clock_zone_min, d.clock_dst_min
            FROM devices d JOIN gateways g ON g.id = d.gateway_id
            LEFT JOIN patients p ON p.id = g.patient_id
            WHERE d.unpaired_at IS NULL AND {scope}
              AND (abs(d.clock_skew_s) > %(off)s
                   OR d.clock_set_at > now() - make_interval(days => %(days)s)
                   OR d.clock_ignores_dst
                   OR d.clock_zone_min + d.clock_dst_min <> %(local_min)s)
            ORDER BY abs(coalesce(d.clock_skew_s, 0)) DESC, d.clock_set_at DESC NULLS LAST,
                     g.code, d.kind
            """,
            params
            | {
                "off": CLOCK_OFF_S,
                "days": CLOCK_SET_RECENTLY_DAYS,
                "local_min": round(local_offset.total_seconds() / 60),
            },
        )
        .fetchall()
    )
    if user.role == "admin":
        rows = [r | {"patient_name": None} for r in rows]
    return [DeviceClock(**r) for r in rows]


def serial_mismatches(conn: psycopg.Connection, user: Principal) -> list[SerialMismatch]:
    """Devices in use whose reported serial is not the kit's: a box swapped in the home, or a
    serial mistyped at enrolment; either way the record is not the device. Compared without
    case or surrounding blanks, which a label and a device's string may differ by."""
    scope, params = _equipment_scope(user)
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""
            SELECT d.id AS device_id, d.kind, d.address, g.code AS gateway_code, g.patient_id,
                   p.given_name || ' ' || p.family_name AS patient_name,
                   d.serial_number AS kit_serial, d.reported_serial_number AS reported_serial,
                   d.system_id, d.identity_reported_at AS reported_at
            FROM devices d JOIN gateways g ON g.id = d.gateway_id
            LEFT JOIN patients p ON p.id = g.patient_id
            WHERE d.unpaired_at IS NULL AND {scope}
              AND upper(btrim(d.serial_number)) <> upper(btrim(d.reported_serial_number))
            ORDER BY g.code, d.kind
            """,
            params,
        )
        .fetchall()
    )
    if user.role == "admin":
        rows = [r | {"patient_name": None} for r in rows]
    return [SerialMismatch(**r) for r in rows]


def notifications(
    conn: psycopg.Connection, user: Principal, status: str, limit: int = 200
) -> list[NotificationItem]:
    """Notifications in ``status`` ('failed', 'outboxed' or 'cancelled') about patients in
    scope; a cancelled one says why (``cancel_reason``). The text of one naming what the
    patient hid from ``user`` (the GP's SMS about a hidden finding, or one written before the
    request; a reminder to measure a hidden metric) is replaced by words naming none, as the
    service centre's own SMS about it says."""
    scope, params = patient_scope(user)
    reminded = visible(user, patient="p.id", metric="n.reminder_metric_id")
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""
            SELECT n.id, n.episode_id, n.alert_id, p.id AS patient_id, n.recipient_kind,
                   n.to_address, n.body, n.status, n.attempts, n.last_error, n.cancel_reason,
                   n.created_at,
                   CASE WHEN a.id IS NOT NULL AND NOT ({finding_visible(user)}) THEN 'finding'
                        WHEN n.reminder_metric_id IS NOT NULL AND NOT ({reminded})
                        THEN 'reminder' END AS withheld
            FROM notifications n
            LEFT JOIN episodes e ON e.id = n.episode_id
            LEFT JOIN alerts a ON a.id = n.alert_id
            -- A GP's amber digest names several patients and belongs to none: not listed here.
            -- A patient's reminder names its patient and no episode.
            JOIN patients p ON p.id = coalesce(n.patient_id, e.patient_id, a.patient_id)
            WHERE n.status = %(status)s AND {scope}
            ORDER BY n.created_at DESC LIMIT %(limit)s
            """,
            params | {"status": status, "limit": limit},
        )
        .fetchall()
    )
    t = translator(user.language)
    return [
        NotificationItem(
            **r | {"body": t(WITHHELD_TEXT[r["withheld"]]), "withheld": True}
            if r["withheld"]
            else r | {"withheld": False}
        )
        for r in rows
    ]


def inbound_messages(
    conn: psycopg.Connection, user: Principal, limit: int = 100
) -> list[InboundItem]:
    """The SMS people sent to our number, newest first: those of patients in scope, and those
    from numbers of no single patient (a stranger, a relative's phone, a shared one), which
    the service centre answers for. What telemon made of each is its ``outcome``."""
    scope, params = patient_scope(user)
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"""
            SELECT i.id, i.received_at, i.from_address, i.body, i.patient_id, i.outcome
            FROM inbound_sms i LEFT JOIN patients p ON p.id = i.patient_id
            WHERE (i.patient_id IS NULL AND %(centre)s) OR {scope}
            ORDER BY i.received_at DESC, i.id DESC LIMIT %(limit)s
            """,
            params | {"limit": limit, "centre": user.role == "nurse"},
        )
        .fetchall()
    )
    return [InboundItem(**r) for r in rows]
