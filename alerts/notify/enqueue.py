"""Writing the notifications an episode calls for, before anything is sent.

Run it in the transaction that opens, worsens or escalates the episode, after writing the
episode's event: then either both the change and its notification rows exist, or neither does,
and a crash in between loses nothing. The event also sets the stage (``alerts.notify.stages``)
in the unique idempotency key: calling again for the same event is a no-op, while the
episode's next escalation is a new stage, so a new SMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row

from alerts.lifecycle import record_episode_event
from alerts.notify.plan import Finding, PatientFacts, PlannedNotification, plan_notifications
from alerts.notify.routing import EpisodeFacts, GpContact, ServiceCentre
from alerts.notify.stages import EVENT_STAGES, Stage, stage_of
from alerts.notify.texts import Language, Reason
from alerts.protocol import Recipient
from telemon.config import Settings
from telemon.findings import evidence_in
from telemon.metrics import METRICS_BY_ID
from telemon.store.restrictions import not_hidden


@dataclass(frozen=True, slots=True)
class EpisodeContext:
    episode: EpisodeFacts
    finding: Finding
    patient: PatientFacts
    gp: GpContact
    centre: ServiceCentre


# Oscuramento: a finding the patient hid from everyone but their GP (by its protocol, its metric
# or when it opened) is named to the GP only; the service centre's SMS says there is a finding.
_FINDING_SHOWN = not_hidden(
    patient="a.patient_id",
    metric="a.metric_id",
    protocol="a.protocol",
    at="a.opened_at",
    evidence="(a.details -> 'evidence')",
)


def load_episode_context(
    conn: psycopg.Connection,
    episode_id: int,
    *,
    fallback_centre_phone: str | None = None,
    centre_language: Language = "it",
) -> EpisodeContext | None:
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            """
        SELECT e.id, e.alert_level, e.state,
               -- Acknowledged as it is now: a worsening since then broke the acknowledgement.
               EXISTS (
                   SELECT 1 FROM episode_events ack
                   WHERE ack.episode_id = e.id AND ack.kind = 'acknowledge'
                     AND NOT EXISTS (
                         SELECT 1 FROM episode_events w
                         WHERE w.episode_id = e.id AND w.kind = 'worsened' AND w.id > ack.id
                     )
               ) AS acknowledged_before,
               f.id AS alert_id, f.metric_id, f.trigger_value, f.details, f.withheld,
               p.given_name, p.family_name,
               g.id AS gp_id, CASE WHEN g.active THEN g.phone END AS gp_phone,
               g.language AS gp_language, g.quiet_hours_start, g.quiet_hours_end,
               g.amber_digest_at, c.id AS centre_id, c.duty_phone
        FROM episodes e
        JOIN patients p ON p.id = e.patient_id
        JOIN staff g ON g.id = p.gp_id
        LEFT JOIN LATERAL (
            -- The finding the SMS names: the worst open one routed to the GP, the oldest first.
            SELECT a.id, a.metric_id, a.trigger_value, a.details,
                   NOT ({shown}) AS withheld FROM alerts a
            WHERE a.episode_id = e.id AND a.state <> 'resolved'
            ORDER BY a.routing = 'gp_and_centre' DESC, a.severity DESC, a.opened_at, a.id
            LIMIT 1
        ) f ON true
        LEFT JOIN LATERAL (
            -- The patient's own service centre if they have one, else the cooperative's.
            SELECT t.id, t.duty_phone FROM care_teams t
            WHERE t.kind = 'service_centre' AND t.duty_phone IS NOT NULL
            ORDER BY t.id = p.care_team_id DESC, t.id
            LIMIT 1
        ) c ON true
        WHERE e.id = %s
        """.replace("{shown}", _FINDING_SHOWN),
            (episode_id,),
        )
        .fetchone()
    )
    if row is None:
        return None
    metric = METRICS_BY_ID.get(row["metric_id"]) if row["metric_id"] is not None else None
    return EpisodeContext(
        episode=EpisodeFacts(
            row["id"], row["alert_level"], row["state"], row["acknowledged_before"]
        ),
        finding=Finding(
            row["alert_id"],
            metric.key if metric else None,
            row["trigger_value"],
            evidence_in(row["details"]),
            withheld=bool(row["withheld"]),
        ),
        patient=PatientFacts(row["given_name"], row["family_name"]),
        gp=GpContact(
            row["gp_id"],
            row["gp_phone"],
            row["gp_language"],
            row["quiet_hours_start"],
            row["quiet_hours_end"],
            row["amber_digest_at"],
        ),
        centre=ServiceCentre(
            row["centre_id"], row["duty_phone"] or fallback_centre_phone, centre_language
        ),
    )


def enqueue_episode_notifications(
    conn: psycopg.Connection,
    episode_id: int,
    reason: Reason,
    settings: Settings,
    *,
    now: datetime | None = None,
    to: Recipient | None = None,
) -> list[int]:
    """Plan and write the SMS for ``episode_id``; the ids of the rows this call created.

    ``to``: the recipient of an escalation step; None for a nurse's escalation (the GP).
    """
    context = load_episode_context(
        conn,
        episode_id,
        fallback_centre_phone=settings.service_centre_phone,
        centre_language=settings.language,
    )
    if context is None:
        raise LookupError(f"no episode {episode_id}")
    now = now or datetime.now(UTC)
    planned = plan_notifications(
        context.episode,
        context.finding,
        context.patient,
        context.gp,
        context.centre,
        reason,
        load_stage(conn, episode_id, reason),
        now,
        settings.public_url,
        to,
    )
    return insert_notifications(conn, planned, now)


def load_stage(conn: psycopg.Connection, episode_id: int, reason: Reason) -> Stage:
    """The stage the episode's events put an SMS for ``reason`` at, in the caller's transaction."""
    kinds = conn.execute(
        "SELECT kind FROM episode_events WHERE episode_id = %s AND kind = ANY(%s) ORDER BY id",
        (episode_id, list(EVENT_STAGES)),
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
            INSERT INTO notifications (idempotency_key, episode_id, alert_id, reason, stage,
                                       recipient_kind, recipient_id, to_address, body, status,
                                       next_attempt_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s)
            ON CONFLICT (idempotency_key) DO NOTHING
            RETURNING id
            """,
            (
                item.idempotency_key,
                item.episode_id,
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
            record_episode_event(
                conn,
                item.episode_id,
                "notify_queued",
                now=now,
                alert_id=item.alert_id,
                details={
                    "notification_id": row[0],
                    "recipient_kind": item.recipient_kind,
                    "reason": item.reason,
                    "stage": item.stage.label,
                    "not_before": item.not_before.isoformat(),
                },
            )
    if created:
        conn.execute(f"NOTIFY {DUE_CHANNEL}")
    return created
