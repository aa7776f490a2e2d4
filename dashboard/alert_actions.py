"""What staff do to an alert: each action is one transaction with its alert event and audit row."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.notify import cancel_moot_notifications, enqueue_alert_notifications
from dashboard import audit
from dashboard.authz import Principal
from dashboard.bands import protocols
from telemon.config import Settings

Action = str  # "claim", "outcome", "acknowledge", "resolve", "escalate"


class Conflict(Exception):
    """The alert's state does not allow the action (someone else got there first)."""


# States each action may start from.
_FROM: dict[str, frozenset[str]] = {
    "claim": frozenset({"open", "acknowledged", "escalated"}),
    "outcome": frozenset({"open", "acknowledged", "escalated"}),
    "acknowledge": frozenset({"open", "escalated"}),
    "resolve": frozenset({"open", "acknowledged", "escalated"}),
    "escalate": frozenset({"open", "acknowledged"}),
}

# Actions after which an SMS still waiting (a GP's quiet hours) may have lost its point:
# cancelled in the action's own transaction, not at the sender's next round.
_MOOTS_NOTIFICATIONS = frozenset({"acknowledge", "resolve"})


def _snooze(protocol: str, rule: str) -> timedelta:
    try:
        return timedelta(seconds=protocols()[protocol].rule(rule).snooze_after_ack)
    except KeyError:
        return timedelta(hours=4)


def perform(
    conn: psycopg.Connection,
    user: Principal,
    alert_id: int,
    action: Action,
    *,
    now: datetime,
    note: str = "",
    outcome: str | None = None,
    force: bool = False,
    notify: Settings | None = None,
) -> None:
    """Apply ``action``; the caller has checked the user may act on this alert.

    An escalation queues the GP's SMS (``notify`` says how) in the same transaction; a
    resolution or an acknowledgement cancels the waiting SMS it made pointless.
    """
    note = note.strip()
    with conn.transaction():
        row = conn.execute(
            "SELECT patient_id, state, claimed_by, protocol, rule FROM alerts WHERE id = %s "
            "FOR UPDATE",
            (alert_id,),
        ).fetchone()
        if row is None:
            raise Conflict("no such alert")
        patient_id, state, claimed_by, protocol, rule = row
        if state not in _FROM[action]:
            raise Conflict(f"the alert is {state}")
        new_state = state
        details: dict[str, Any] = {}
        if action == "claim":
            if claimed_by not in (None, user.id) and not force:
                raise Conflict("already claimed by a colleague")
            conn.execute(
                "UPDATE alerts SET claimed_by = %s, claimed_at = %s, updated_at = %s WHERE id = %s",
                (user.id, now, now, alert_id),
            )
            details = {"previous_claim": claimed_by}
        elif action == "outcome":
            # Recording a call makes the caller its owner if nobody had claimed the alert.
            conn.execute(
                "UPDATE alerts SET outcome = %s, updated_at = %s, "
                "claimed_by = coalesce(claimed_by, %s), claimed_at = coalesce(claimed_at, %s) "
                "WHERE id = %s",
                (outcome, now, user.id, now, alert_id),
            )
            details = {"outcome": outcome}
        elif action == "acknowledge":
            new_state = "acknowledged"
            conn.execute(
                "UPDATE alerts SET state = 'acknowledged', acknowledged_by = %s, "
                "acknowledged_at = %s, snoozed_until = %s, updated_at = %s WHERE id = %s",
                (user.id, now, now + _snooze(protocol, rule), now, alert_id),
            )
        elif action == "resolve":
            new_state = "resolved"
            conn.execute(
                "UPDATE alerts SET state = 'resolved', resolved_by = %s, resolved_at = %s, "
                "resolution_note = %s, outcome = coalesce(%s, outcome), updated_at = %s "
                "WHERE id = %s",
                (user.id, now, note or None, outcome, now, alert_id),
            )
            details = {"outcome": outcome} if outcome else {}
        elif action == "escalate":
            new_state = "escalated"
            conn.execute(
                "UPDATE alerts SET state = 'escalated', escalated_at = %s, updated_at = %s "
                "WHERE id = %s",
                (now, now, alert_id),
            )
            details = {"to": "gp"}
        conn.execute(
            "INSERT INTO alert_events (alert_id, at, actor_id, kind, from_state, to_state, note, "
            "details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (alert_id, now, user.id, action, state, new_state, note or None, Jsonb(details)),
        )
        audit.record(
            conn,
            user,
            f"alert.{action}",
            patient_id=patient_id,
            object_type="alert",
            object_id=alert_id,
            details={"from": state, "to": new_state, **details},
        )
        if action in _MOOTS_NOTIFICATIONS:
            cancel_moot_notifications(conn, now, alert_id)
        if action == "escalate" and notify is not None:
            enqueue_alert_notifications(conn, alert_id, "escalated", notify, now=now)
