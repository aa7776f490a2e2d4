"""What a page and its API twin both do: access check, read or write, audit. One function each."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from dashboard import alert_actions, audit, clinical, operations
from dashboard.authz import NotFound, Principal, ensure_alert, ensure_patient
from dashboard.models import (
    AlertEvent,
    AlertItem,
    GatewayIssue,
    LowBattery,
    MySettings,
    NotificationItem,
    PatientDetail,
    PatientSummary,
    Series,
    SettingsIn,
)
from telemon.config import Settings

PERIODS = (7, 30, 90)


class InvalidPeriod(ValueError):
    """Charts cover 7, 30 or 90 days."""


def patient_list(conn: psycopg.Connection, user: Principal) -> list[PatientSummary]:
    patients = clinical.patient_list(conn, user)
    audit.record(
        conn,
        user,
        "patient.list",
        object_type="patient_list",
        details={"patients": [p.id for p in patients]},
    )
    return patients


def triage_queue(conn: psycopg.Connection, user: Principal) -> list[AlertItem]:
    queue = clinical.triage_queue(conn, user)
    audit.record(
        conn,
        user,
        "triage.read",
        object_type="alert_list",
        details={
            "alerts": [a.id for a in queue],
            "patients": sorted({a.patient_id for a in queue}),
        },
    )
    return queue


def offline_gateways(conn: psycopg.Connection, user: Principal) -> list[GatewayIssue]:
    gateways = operations.offline_gateways(conn, user)
    _audit_worklist(conn, user, "gateways.offline.read", [g.patient_id for g in gateways])
    return gateways


def low_batteries(conn: psycopg.Connection, user: Principal) -> list[LowBattery]:
    devices = operations.low_batteries(conn, user)
    _audit_worklist(conn, user, "devices.low_battery.read", [d.patient_id for d in devices])
    return devices


def notifications(conn: psycopg.Connection, user: Principal, status: str) -> list[NotificationItem]:
    # SMS bodies carry vital values: reading them is reading health data.
    items = operations.notifications(conn, user, status)
    _audit_worklist(conn, user, f"notifications.{status}.read", [n.patient_id for n in items])
    return items


def _audit_worklist(
    conn: psycopg.Connection, user: Principal, action: str, patients: list[int | None]
) -> None:
    """The technical worklists name patients: which ones a user saw is on record, as for lists."""
    audit.record(
        conn,
        user,
        action,
        object_type="worklist",
        details={"patients": sorted({p for p in patients if p is not None})},
    )


def patient_detail(conn: psycopg.Connection, user: Principal, patient_id: int) -> PatientDetail:
    ensure_patient(conn, user, patient_id)
    detail = clinical.patient_detail(conn, user, patient_id)
    if detail is None:
        raise NotFound
    audit.record(
        conn,
        user,
        "patient.read",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
    )
    return detail


def patient_alerts(conn: psycopg.Connection, user: Principal, patient_id: int) -> list[AlertItem]:
    ensure_patient(conn, user, patient_id)
    alerts = clinical.patient_alerts(conn, user, patient_id)
    audit.record(
        conn,
        user,
        "patient.alerts.read",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
    )
    return alerts


def patient_series(
    conn: psycopg.Connection, user: Principal, patient_id: int, metric: str, days: int
) -> Series:
    if days not in PERIODS:
        raise InvalidPeriod(days)
    ensure_patient(conn, user, patient_id)
    series = clinical.series(
        conn, patient_id, metric, days, now=datetime.now(UTC), language=user.language
    )
    audit.record(
        conn,
        user,
        "patient.vitals.read",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
        details={"metric": metric, "days": days},
    )
    return series


def alert(conn: psycopg.Connection, user: Principal, alert_id: int) -> AlertItem:
    patient_id = ensure_alert(conn, user, alert_id)
    item = clinical.alert(conn, user, alert_id)
    if item is None:
        raise NotFound
    audit.record(
        conn, user, "alert.read", patient_id=patient_id, object_type="alert", object_id=alert_id
    )
    return item


def alert_events(conn: psycopg.Connection, user: Principal, alert_id: int) -> list[AlertEvent]:
    patient_id = ensure_alert(conn, user, alert_id)
    events = clinical.alert_events(conn, user, alert_id)
    audit.record(
        conn,
        user,
        "alert.events.read",
        patient_id=patient_id,
        object_type="alert",
        object_id=alert_id,
    )
    return events


def act(
    conn: psycopg.Connection,
    user: Principal,
    alert_id: int,
    action: str,
    *,
    note: str = "",
    outcome: str | None = None,
    force: bool = False,
    notify: Settings | None = None,
) -> AlertItem:
    ensure_alert(conn, user, alert_id, action)
    alert_actions.perform(
        conn,
        user,
        alert_id,
        action,
        now=datetime.now(UTC),
        note=note,
        outcome=outcome,
        force=force,
        notify=notify,
    )
    item = clinical.alert(conn, user, alert_id)
    assert item is not None
    return item


def my_settings(conn: psycopg.Connection, user: Principal) -> MySettings:
    row = conn.execute(
        "SELECT language, phone, quiet_hours_start, quiet_hours_end FROM staff WHERE id = %s",
        (user.id,),
    ).fetchone()
    assert row is not None
    return MySettings(
        language=row[0], phone=row[1], quiet_hours_start=row[2], quiet_hours_end=row[3]
    )


def set_language(conn: psycopg.Connection, user: Principal, language: str) -> None:
    """The interface language alone, as the page's language switch sets it; audited."""
    with conn.transaction():
        conn.execute("UPDATE staff SET language = %s WHERE id = %s", (language, user.id))
        audit.record(
            conn,
            user,
            "settings.update",
            object_type="staff",
            object_id=user.id,
            details={"language": language},
        )


def update_settings(conn: psycopg.Connection, user: Principal, change: SettingsIn) -> MySettings:
    current = my_settings(conn, user)
    language = change.language or current.language
    with conn.transaction():
        conn.execute(
            "UPDATE staff SET language = %s, phone = %s, quiet_hours_start = %s, "
            "quiet_hours_end = %s WHERE id = %s",
            (
                language,
                change.phone or None,
                change.quiet_hours_start,
                change.quiet_hours_end,
                user.id,
            ),
        )
        audit.record(
            conn,
            user,
            "settings.update",
            object_type="staff",
            object_id=user.id,
            details={
                "language": language,
                "quiet_hours": [str(change.quiet_hours_start), str(change.quiet_hours_end)],
            },
        )
    return my_settings(conn, user)
