"""Writing the notifications an alert calls for, before anything is sent.

Run it in the transaction that opens, worsens or escalates the alert, after writing the alert's
event: then either both the alert change and its notification rows exist, or neither does, and
a crash in between loses nothing. The event also sets the stage (``alerts.notify.stages``) in
the unique idempotency key: calling again for the same event is a no-op, while the alert's next
escalation or lapsed snooze is a new stage, so a new SMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from alerts.notify.plan import Finding, PatientFacts, PlannedNotification, plan_notifications
from alerts.notify.routing import AlertFacts, GpContact, ServiceCentre
from alerts.notify.stages import EVENT_STAGES, Stage, stage_of
from alerts.notify.texts import Language, Reason
from telemon.config import Settings
from telemon.metrics import METRICS_BY_ID


@dataclass(frozen=True, slots=True)
class AlertContext:
    alert: AlertFacts
    finding: Finding
    patient: PatientFacts
    gp: GpContact
    centre: ServiceCentre


def load_alert_context(
    conn: psycopg.Connection,
    alert_id: int,
    *,
    fallback_centre_phone: str | None = None,
    centre_language: Language = "it",
) -> AlertContext | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """
        SELECT a.id, a.severity, a.kind, a.state, a.metric_id, a.trigger_value,
               p.given_name, p.family_name,
               g.id AS gp_id, CASE WHEN g.active THEN g.phone END AS gp_phone,
               g.language AS gp_language, g.quiet_hours_start, g.quiet_hours_end,
               c.id AS centre_id, c.duty_phone
        FROM alerts a
        JOIN patients p ON p.id = a.patient_id
        JOIN staff g ON g.id = p.gp_id
        LEFT JOIN LATERAL (
            -- The patient's own service centre if they have one, else the cooperative's.
            SELECT t.id, t.duty_phone FROM care_teams t
            WHERE t.kind = 'service_centre' AND t.duty_phone IS NOT NULL
            ORDER BY t.id = p.care_team_id DESC, t.id
            LIMIT 1
        ) c ON true
        WHERE a.id = %s
        """,
            (alert_id,),
        )
        .fetchone()
    )
    if row is None:
        return None
    metric = METRICS_BY_ID.get(row["metric_id"]) if row["metric_id"] is not None else None
    return AlertContext(
        alert=AlertFacts(row["id"], row["severity"], row["kind"], row["state"]),
        finding=Finding(metric.key if metric else None, row["trigger_value"]),
        patient=PatientFacts(row["given_name"], row["family_name"]),
        gp=GpContact(
            row["gp_id"],
            row["gp_phone"],
            row["gp_language"],
            row["quiet_hours_start"],
            row["quiet_hours_end"],
        ),
        centre=ServiceCentre(
            row["centre_id"], row["duty_phone"] or fallback_centre_phone, centre_language
        ),
    )


def enqueue_alert_notifications(
    conn: psycopg.Connection,
    alert_id: int,
    reason: Reason,
    settings: Settings,
    *,
    now: datetime | None = None,
) -> list[int]:
    """Plan and write the SMS for ``alert_id``; the ids of the rows this call created."""
    context = load_alert_context(
        conn,
        alert_id,
        fallback_centre_phone=settings.service_centre_phone,
        centre_language=settings.language,
    )
    if context is None:
        raise LookupError(f"no alert {alert_id}")
    now = now or datetime.now(UTC)
    planned = plan_notifications(
        context.alert,
        context.finding,
        context.patient,
        context.gp,
        context.centre,
        reason,
        load_stage(conn, alert_id, reason),
        now,
        settings.public_url,
    )
    return insert_notifications(conn, planned, now)


def load_stage(conn: psycopg.Connection, alert_id: int, reason: Reason) -> Stage:
    """The stage the alert's events put an SMS for ``reason`` at, in the caller's transaction."""
    kinds = conn.execute(
        "SELECT kind FROM alert_events WHERE alert_id = %s AND kind = ANY(%s) ORDER BY id",
        (alert_id, list(EVENT_STAGES)),
    ).fetchall()
    return stage_of(reason, [row[0] for row in kinds])


# Senders LISTEN here: a row written in any process (engine, dashboard) wakes them at commit
# instead of waiting for their next round.
DUE_CHANNEL = "telemon_notifications_due"


def insert_notifications(
    conn: psycopg.Connection, planned: list[PlannedNotification], now: datetime
) -> list[int]:
    """Write the rows, each with its 'notify_queued' event at ``now``: the engine's clock, so
    that on a simulated clock the history lists them before the SMS they queued."""
    created = []
    for item in planned:
        row = conn.execute(
            """
            INSERT INTO notifications (idempotency_key, alert_id, reason, stage, recipient_kind,
                                       recipient_id, to_address, body, status, next_attempt_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id
            """,
            (
                item.idempotency_key,
                item.alert_id,
                item.reason,
                item.stage.label,
                item.recipient_kind,
                item.staff_id,
                item.to,
                item.body,
                item.not_before,
            ),
        ).fetchone()
        if row is not None:
            created.append(row[0])
            conn.execute(
                "INSERT INTO alert_events (alert_id, at, kind, details) VALUES (%s, %s, %s, %s)",
                (
                    item.alert_id,
                    now,
                    "notify_queued",
                    Jsonb(
                        {
                            "notification_id": row[0],
                            "recipient_kind": item.recipient_kind,
                            "reason": item.reason,
                            "stage": item.stage.label,
                            "not_before": item.not_before.isoformat(),
                        }
                    ),
                ),
            )
    if created:
        conn.execute(f"NOTIFY {DUE_CHANNEL}")
    return created
