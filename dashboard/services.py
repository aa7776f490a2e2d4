"""What a page and its API twin both do: access check, read or write, audit. One function each."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from dashboard import alert_actions, audit, clinical, glance, operations, tags
from dashboard.authz import NotFound, Principal, ensure_alert, ensure_episode, ensure_patient
from dashboard.models import (
    DeviceClock,
    EpisodeEvent,
    EpisodeItem,
    FindingItem,
    GatewayIssue,
    InboundItem,
    LowBattery,
    MySettings,
    NotificationItem,
    PatientDetail,
    SerialMismatch,
    Series,
    SettingsIn,
)
from telemon.alert_lifecycle import PersonAction
from telemon.config import Settings

PERIODS = (7, 30, 90)


class InvalidPeriod(ValueError):
    """Charts cover 7, 30 or 90 days."""


def patient_list(
    conn: psycopg.Connection, user: Principal, query: glance.ListQuery
) -> glance.PatientPage:
    found = glance.patient_list(conn, user, now=datetime.now(UTC), query=query)
    # The patients shown are those read: the page's, not the whole list's.
    audit.record(
        conn,
        user,
        "patient.list",
        object_type="patient_list",
        details={"patients": [p.id for p in found.patients], "page": found.page},
    )
    return found


def change_tag(
    conn: psycopg.Connection, user: Principal, patient_id: int, tag: str, action: tags.TagAction
) -> str:
    """Add or remove one of the GP's own tags on their patient; audited. Returns the tag as
    stored (normalised); raises ``tags.InvalidTag``."""
    ensure_patient(conn, user, patient_id)
    text = tags.normalise(tag)
    if tags.change(conn, user.id, patient_id, text, action):
        audit.record(
            conn,
            user,
            f"patient.tag.{action}",
            patient_id=patient_id,
            object_type="patient",
            object_id=patient_id,
            details={"tag": text},
        )
    return text


def triage_queue(conn: psycopg.Connection, user: Principal) -> list[EpisodeItem]:
    queue = clinical.triage_queue(conn, user)
    _audit_queue(conn, user, queue)
    return queue


def triage_page(conn: psycopg.Connection, user: Principal, *, page: int) -> clinical.QueuePage:
    found = clinical.triage_page(conn, user, page=page)
    # The episodes shown are those read: the page's.
    _audit_queue(conn, user, found.clinical + found.tasks)
    return found


def _audit_queue(conn: psycopg.Connection, user: Principal, shown: list[EpisodeItem]) -> None:
    audit.record(
        conn,
        user,
        "triage.read",
        object_type="episode_list",
        details={
            "episodes": [e.id for e in shown],
            "patients": sorted({e.patient_id for e in shown}),
        },
    )


def offline_gateways(conn: psycopg.Connection, user: Principal) -> list[GatewayIssue]:
    gateways = operations.offline_gateways(conn, user)
    _audit_worklist(conn, user, "gateways.offline.read", [g.patient_id for g in gateways])
    return gateways


def low_batteries(conn: psycopg.Connection, user: Principal) -> list[LowBattery]:
    devices = operations.low_batteries(conn, user)
    _audit_worklist(conn, user, "devices.low_battery.read", [d.patient_id for d in devices])
    return devices


def device_clocks(conn: psycopg.Connection, user: Principal) -> list[DeviceClock]:
    clocks = operations.device_clocks(conn, user)
    _audit_worklist(conn, user, "devices.clock.read", [c.patient_id for c in clocks])
    return clocks


def serial_mismatches(conn: psycopg.Connection, user: Principal) -> list[SerialMismatch]:
    devices = operations.serial_mismatches(conn, user)
    _audit_worklist(conn, user, "devices.serial_mismatch.read", [d.patient_id for d in devices])
    return devices


def notifications(conn: psycopg.Connection, user: Principal, status: str) -> list[NotificationItem]:
    # SMS bodies carry vital values: reading them is reading health data.
    items = operations.notifications(conn, user, status)
    _audit_worklist(conn, user, f"notifications.{status}.read", [n.patient_id for n in items])
    return items


def inbound_messages(conn: psycopg.Connection, user: Principal) -> list[InboundItem]:
    # What patients write may be about their health: reading it is on record, as SMS bodies.
    items = operations.inbound_messages(conn, user)
    _audit_worklist(conn, user, "sms.inbound.read", [i.patient_id for i in items])
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


def patient_episodes(
    conn: psycopg.Connection, user: Principal, patient_id: int
) -> list[EpisodeItem]:
    ensure_patient(conn, user, patient_id)
    found = clinical.patient_episodes(conn, user, patient_id)
    audit.record(
        conn,
        user,
        "patient.episodes.read",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
    )
    return found


def patient_series(
    conn: psycopg.Connection, user: Principal, patient_id: int, metric: str, days: int
) -> Series:
    if days not in PERIODS:
        raise InvalidPeriod(days)
    ensure_patient(conn, user, patient_id)
    series = clinical.series(
        conn, user, patient_id, metric, days, now=datetime.now(UTC), language=user.language
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


def episode(conn: psycopg.Connection, user: Principal, episode_id: int) -> EpisodeItem:
    patient_id = ensure_episode(conn, user, episode_id)
    item = clinical.episode(conn, user, episode_id)
    if item is None:
        raise NotFound
    audit.record(
        conn,
        user,
        "episode.read",
        patient_id=patient_id,
        object_type="episode",
        object_id=episode_id,
    )
    return item


def episode_events(
    conn: psycopg.Connection, user: Principal, episode_id: int
) -> list[EpisodeEvent]:
    patient_id = ensure_episode(conn, user, episode_id)
    found = clinical.events(conn, user, episode_id=episode_id)
    audit.record(
        conn,
        user,
        "episode.events.read",
        patient_id=patient_id,
        object_type="episode",
        object_id=episode_id,
    )
    return found


def finding(conn: psycopg.Connection, user: Principal, alert_id: int) -> FindingItem:
    patient_id = ensure_alert(conn, user, alert_id)
    item = clinical.finding(conn, user, alert_id)
    if item is None:
        raise NotFound
    audit.record(
        conn, user, "alert.read", patient_id=patient_id, object_type="alert", object_id=alert_id
    )
    return item


def finding_events(conn: psycopg.Connection, user: Principal, alert_id: int) -> list[EpisodeEvent]:
    """A finding's own events: the history of one that belongs to no episode."""
    patient_id = ensure_alert(conn, user, alert_id)
    found = clinical.events(conn, user, alert_id=alert_id)
    audit.record(
        conn,
        user,
        "alert.events.read",
        patient_id=patient_id,
        object_type="alert",
        object_id=alert_id,
    )
    return found


def act(
    conn: psycopg.Connection,
    user: Principal,
    episode_id: int,
    action: PersonAction,
    *,
    note: str = "",
    outcome: str | None = None,
    force: bool = False,
    notify: Settings | None = None,
) -> EpisodeItem:
    ensure_episode(conn, user, episode_id, action)
    alert_actions.perform(
        conn,
        user,
        episode_id,
        action,
        now=datetime.now(UTC),
        note=note,
        outcome=outcome,
        force=force,
        notify=notify,
    )
    item = clinical.episode(conn, user, episode_id)
    assert item is not None
    return item


def resolve_finding(
    conn: psycopg.Connection, user: Principal, alert_id: int, *, note: str, settings: Settings
) -> FindingItem:
    ensure_alert(conn, user, alert_id, "resolve")
    alert_actions.resolve_finding(
        conn, user, alert_id, now=datetime.now(UTC), settings=settings, note=note
    )
    item = clinical.finding(conn, user, alert_id)
    assert item is not None
    return item


def my_settings(conn: psycopg.Connection, user: Principal) -> MySettings:
    row = conn.execute(
        "SELECT language, phone, quiet_hours_start, quiet_hours_end, amber_digest_at "
        "FROM staff WHERE id = %s",
        (user.id,),
    ).fetchone()
    assert row is not None
    return MySettings(
        language=row[0],
        phone=row[1],
        quiet_hours_start=row[2],
        quiet_hours_end=row[3],
        amber_digest_at=row[4],
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
        # Only a GP has amber escalations to gather into a digest.
        digest = change.amber_digest_at if user.role == "gp" else None
        conn.execute(
            "UPDATE staff SET language = %s, phone = %s, quiet_hours_start = %s, "
            "quiet_hours_end = %s, amber_digest_at = %s WHERE id = %s",
            (
                language,
                change.phone or None,
                change.quiet_hours_start,
                change.quiet_hours_end,
                digest,
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
                "amber_digest_at": str(digest) if digest else None,
            },
        )
    return my_settings(conn, user)
