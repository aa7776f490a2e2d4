"""Alerts in the database: reading the unresolved ones, writing what a step decided.

Everything here runs inside the caller's transaction, which also saves the debounce state:
an alert change, its ``alert_events`` row, its notification rows and the state that led to
them commit together or not at all. Events written by the engine have ``actor_id`` NULL.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from alerts.engine.decide import Action, OpenAlerts
from alerts.evaluate import NO_TIME
from alerts.notify import cancel_moot_notifications, enqueue_alert_notifications
from alerts.notify.texts import Reason
from telemon.config import Settings
from telemon.metrics import METRICS

log = logging.getLogger(__name__)


def epoch(value: datetime | None) -> int:
    return NO_TIME if value is None else int(value.timestamp())


def load_open_alerts(
    conn: psycopg.Connection,
    protocol: str,
    rules: list[str],
    patient_ids: np.ndarray,
    *,
    everyone: bool = False,
) -> dict[str, OpenAlerts]:
    """The unresolved alert of each patient and rule (the partial unique index allows one)."""
    result = {rule: OpenAlerts.none(patient_ids.size) for rule in rules}
    query = (
        "SELECT rule, patient_id, id, severity, state, opened_at, escalated_at, snoozed_until "
        "FROM alerts WHERE protocol = %s AND state <> 'resolved'"
    )
    params: tuple[Any, ...] = (protocol,)
    if not everyone:
        query += " AND patient_id = ANY(%s)"
        params += (patient_ids.tolist(),)
    for rule, patient_id, alert_id, severity, state, opened, escalated, snoozed in conn.execute(
        query, params
    ):
        index = int(np.searchsorted(patient_ids, patient_id))
        if rule not in result or index >= patient_ids.size or patient_ids[index] != patient_id:
            continue
        alerts = result[rule]
        alerts.alert_id[index] = alert_id
        alerts.severity[index] = severity
        alerts.acknowledged[index] = state == "acknowledged"
        alerts.opened_at[index] = epoch(opened)
        alerts.notified_at[index] = epoch(escalated or opened)
        alerts.snoozed_until[index] = epoch(snoozed)
    return result


@dataclass(frozen=True, slots=True)
class RuleContext:
    protocol: str
    rule: Any  # the protocol's rule
    patient_ids: np.ndarray


@dataclass(slots=True)
class Applied:
    opened: int = 0
    worsened: int = 0
    downgraded: int = 0
    resolved: int = 0
    escalated: int = 0
    snooze_expired: int = 0
    confirmed: int = 0  # unconfirmed alerts a second reading confirmed
    conflicts: int = 0  # opens another engine got to first
    notifications: int = 0
    cancelled: int = 0  # SMS still waiting (a GP's quiet hours) when their alert resolved


def apply_actions(
    conn: psycopg.Connection,
    context: RuleContext,
    actions: list[Action],
    settings: Settings,
    now: int,
    applied: Applied,
) -> None:
    when = datetime.fromtimestamp(now, UTC)
    for action in actions:
        patient_id = int(context.patient_ids[action.patient])
        if action.kind == "open":
            alert_id = _open(conn, context, action, patient_id, when)
            if alert_id is None:
                applied.conflicts += 1
                continue
            applied.opened += 1
            applied.notifications += _notify(conn, context, alert_id, "opened", settings, when)
            continue
        assert action.alert_id is not None
        _UPDATES[action.kind](conn, action, when)
        if action.kind == "worsen":
            applied.worsened += 1
            reason: Reason | None = "worsened"
        elif action.kind == "escalate":
            applied.escalated += 1
            reason = "escalated"
        elif action.kind == "snooze_expired":
            # The acknowledgement lapsed while the alert is still active: remind the GP.
            applied.snooze_expired += 1
            reason = "escalated"
        elif action.kind == "resolve":
            applied.resolved += 1
            # SMS still waiting (a GP's quiet hours) lost their point with the alert's own.
            applied.cancelled += cancel_moot_notifications(conn, when, action.alert_id)
            reason = None
        elif action.kind == "confirm":
            applied.confirmed += 1
            reason = None
        else:
            applied.downgraded += 1
            reason = None
        if reason is not None:
            applied.notifications += _notify(conn, context, action.alert_id, reason, settings, when)


def _open(
    conn: psycopg.Connection,
    context: RuleContext,
    action: Action,
    patient_id: int,
    when: datetime,
) -> int | None:
    rule = context.rule
    channel = action.reason.split(":", 1)[0]
    metric = METRICS.get(channel)
    details = {
        "rule_title": rule.title,
        "rule_kind": rule.kind,
        "channel": channel,
        "reading_at": datetime.fromtimestamp(action.at, UTC).isoformat()
        if action.at != NO_TIME
        else None,
    }
    if action.unconfirmed:
        # Opened by the confirm timeout: no second reading yet (false once _confirm ran).
        details["unconfirmed"] = True
    row = conn.execute(
        """
        INSERT INTO alerts (patient_id, protocol, rule, kind, severity, state, opened_at,
                            updated_at, metric_id, trigger_value, reason, details)
        VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s, %s)
        ON CONFLICT (patient_id, protocol, rule) WHERE state <> 'resolved' DO NOTHING
        RETURNING id
        """,
        (
            patient_id,
            context.protocol,
            rule.key,
            "not_measuring" if rule.kind == "missing_data" else "clinical",
            action.level,
            when,
            when,
            metric.id if metric else None,
            action.value,
            action.reason,
            Jsonb(details),
        ),
    ).fetchone()
    if row is None:
        log.info("alert %s/%s for patient %s already open", context.protocol, rule.key, patient_id)
        return None
    _event(conn, row[0], when, "opened", None, "open", action)
    return row[0]


def _worsen(conn: psycopg.Connection, action: Action, when: datetime) -> None:
    # A worse level breaks a snooze: the alert is no longer the one that was acknowledged.
    before = _lock(conn, action)
    to_state = "open" if before == "acknowledged" else before
    conn.execute(
        "UPDATE alerts SET severity = %s, trigger_value = %s, reason = %s, state = %s, "
        "snoozed_until = NULL, updated_at = %s WHERE id = %s",
        (action.level, action.value, action.reason, to_state, when, action.alert_id),
    )
    _event(conn, action.alert_id, when, "worsened", before, to_state, action)


def _downgrade(conn: psycopg.Connection, action: Action, when: datetime) -> None:
    before = _lock(conn, action)
    conn.execute(
        "UPDATE alerts SET severity = %s, updated_at = %s WHERE id = %s",
        (action.level, when, action.alert_id),
    )
    _event(conn, action.alert_id, when, "downgraded", before, before, action)


def _resolve(conn: psycopg.Connection, action: Action, when: datetime) -> None:
    before = _lock(conn, action)
    conn.execute(
        "UPDATE alerts SET state = 'resolved', resolved_at = %s, outcome = 'auto_resolved', "
        "updated_at = %s WHERE id = %s",
        (when, when, action.alert_id),
    )
    _event(conn, action.alert_id, when, "auto_resolved", before, "resolved", action)


def _confirm(conn: psycopg.Connection, action: Action, when: datetime) -> None:
    before = _lock(conn, action)
    conn.execute(
        "UPDATE alerts SET details = details || %s, updated_at = %s WHERE id = %s",
        (Jsonb({"unconfirmed": False}), when, action.alert_id),
    )
    _event(conn, action.alert_id, when, "confirmed", before, before, action)


def _escalate(conn: psycopg.Connection, action: Action, when: datetime) -> None:
    before = _lock(conn, action)
    conn.execute(
        "UPDATE alerts SET state = 'escalated', escalated_at = %s, updated_at = %s WHERE id = %s",
        (when, when, action.alert_id),
    )
    _event(conn, action.alert_id, when, "escalated", before, "escalated", action)


def _snooze_expired(conn: psycopg.Connection, action: Action, when: datetime) -> None:
    before = _lock(conn, action)
    conn.execute(
        "UPDATE alerts SET state = 'open', snoozed_until = NULL, updated_at = %s WHERE id = %s",
        (when, action.alert_id),
    )
    _event(conn, action.alert_id, when, "snooze_expired", before, "open", action)


_UPDATES = {
    "worsen": _worsen,
    "downgrade": _downgrade,
    "resolve": _resolve,
    "confirm": _confirm,
    "escalate": _escalate,
    "snooze_expired": _snooze_expired,
}


def _lock(conn: psycopg.Connection, action: Action) -> str:
    row = conn.execute(
        "SELECT state FROM alerts WHERE id = %s FOR UPDATE", (action.alert_id,)
    ).fetchone()
    return row[0]


def _event(
    conn: psycopg.Connection,
    alert_id: int,
    when: datetime,
    kind: str,
    from_state: str | None,
    to_state: str,
    action: Action,
) -> None:
    conn.execute(
        "INSERT INTO alert_events (alert_id, at, actor_id, kind, from_state, to_state, severity, "
        "details) VALUES (%s, %s, NULL, %s, %s, %s, %s, %s)",
        (
            alert_id,
            when,
            kind,
            from_state,
            to_state,
            action.level or None,
            Jsonb({"value": action.value, "reason": action.reason, "stage": action.stage}),
        ),
    )


def _notify(
    conn: psycopg.Connection,
    context: RuleContext,
    alert_id: int,
    reason: Reason,
    settings: Settings,
    when: datetime,
) -> int:
    # Only gp_and_centre rules text anyone: 'centre' alerts wait for the nurses' triage in the
    # dashboard and 'centre_task' (not measuring) is never a reason to text a GP.
    if context.rule.routing != "gp_and_centre":
        return 0
    return len(enqueue_alert_notifications(conn, alert_id, reason, settings, now=when))
