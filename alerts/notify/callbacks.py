"""Twilio's delivery reports: checking they come from Twilio, and applying them to our rows.

The dashboard mounts the route (``POST {public_url}/sms/status?notification={id}``), checks the
``X-Twilio-Signature`` header with :func:`is_valid_signature` against the URL exactly as Twilio
called it (the public one, not the one behind a proxy), then calls
:func:`apply_status_callback`. Only signed reports get here: without an auth token the route
does not exist. The notification id in the URL (signed with it) names the row; a row that has a
SID takes only reports about that SID, and a report may only move it forward along Twilio's
message lifecycle. A row with no SID yet takes the first report about a SID no other row has:
the sender died, or has not yet stored the SID, while Twilio was answering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

import psycopg
from psycopg.rows import TupleRow
from twilio.request_validator import RequestValidator, get_signature_algorithm

from alerts.notify import store

STATUS_CALLBACK_PATH = "/sms/status"

# Twilio's MessageStatus values, in our notifications.status vocabulary.
PROVIDER_STATUS: Mapping[str, str] = MappingProxyType(
    {
        "accepted": "sent",
        "scheduled": "sent",
        "queued": "sent",
        "sending": "sent",
        "sent": "sent",
        "delivered": "delivered",
        "read": "delivered",
        "undelivered": "undelivered",
        "failed": "failed",
        "canceled": "failed",
    }
)

# How far along a message is, in Twilio's lifecycle: queued < sending < sent < a final status.
# A report never moves a row back, nor from one final status to another: a late or replayed
# 'failed' cannot undo 'delivered', nor a 'delivered' a 'failed' (Twilio documents delivered,
# undelivered and failed as final; its callbacks may arrive out of order).
_PROGRESS: Mapping[str, int] = MappingProxyType(
    {
        "pending": 0,
        "cancelled": 0,
        "sending": 1,
        "outboxed": 1,
        "sent": 2,
        "delivered": 3,
        "undelivered": 3,
        "failed": 3,
    }
)

# A row without a SID in one of these statuses holds our own verdict, not Twilio's: in flight,
# 'failed' with its outcome unknown, or 'cancelled' after a look-up at Twilio that came too early.
# The first report about the row's message overrules it.
_ADOPTABLE = frozenset({"sending", "failed", "cancelled"})

# updated/unchanged: applied (or already known); unknown: no row awaits this report;
# mismatched: the row named has another SID, or the SID is another row's.
CallbackOutcome = Literal["updated", "unchanged", "unknown", "mismatched"]


@dataclass(frozen=True, slots=True)
class StatusReport:
    message_sid: str
    message_status: str
    error_code: int | None = None
    notification_id: int | None = None

    @classmethod
    def from_request(
        cls, form: Mapping[str, str], query: Mapping[str, str] | None = None
    ) -> StatusReport:
        error = form.get("ErrorCode") or ""
        notification = (query or {}).get("notification") or ""
        return cls(
            message_sid=form["MessageSid"],
            message_status=form["MessageStatus"],
            error_code=int(error) if error.isdigit() else None,
            notification_id=int(notification) if notification.isdigit() else None,
        )


def status_callback_url(public_url: str, notification_id: int) -> str | None:
    """Where Twilio reports on a message; None when Twilio could not reach the dashboard."""
    if not public_url.startswith("https://"):
        return None
    return f"{public_url.rstrip('/')}{STATUS_CALLBACK_PATH}?notification={notification_id}"


def is_valid_signature(
    auth_token: str,
    url: str,
    params: Mapping[str, str],
    signature: str | None,
    signature_settings: str | None = None,
) -> bool:
    """Whether ``X-Twilio-Signature`` signs this URL and form; pass the
    ``X-Twilio-Webhooks-Signature-Settings`` header too when Twilio sends one."""
    if not signature:
        return False
    algorithm = get_signature_algorithm(signature_settings)
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature, algorithm))


def next_status(current: str, reported: str, *, adopting: bool = False) -> str | None:
    """The row's new status, or None to leave it. ``adopting``: the row has no SID yet, so its
    status is our own verdict, which the first report overrules."""
    new = PROVIDER_STATUS.get(reported)
    if new is None:
        return None
    if adopting and current in _ADOPTABLE:
        return new
    if _PROGRESS[new] > _PROGRESS[current]:
        return new
    return None


_ROW = "SELECT id, episode_id, recipient_kind, status, provider_id FROM notifications "


def _row_for(conn: psycopg.Connection, report: StatusReport) -> TupleRow | CallbackOutcome:
    """The row the report is about, locked, or why there is none to apply it to."""
    if report.notification_id is None:
        row = conn.execute(
            _ROW + "WHERE provider_id = %s FOR UPDATE", (report.message_sid,)
        ).fetchone()
        return row if row is not None else "unknown"
    row = conn.execute(_ROW + "WHERE id = %s FOR UPDATE", (report.notification_id,)).fetchone()
    if row is None:
        return "unknown"
    provider_id = row[4]
    if provider_id is not None:
        return row if provider_id == report.message_sid else "mismatched"
    if row[3] not in _ADOPTABLE:
        return "unknown"
    taken = conn.execute(
        "SELECT 1 FROM notifications WHERE provider_id = %s", (report.message_sid,)
    ).fetchone()
    return "mismatched" if taken is not None else row


def apply_status_callback(
    conn: psycopg.Connection, report: StatusReport, *, now: datetime | None = None
) -> CallbackOutcome:
    at = now or datetime.now(UTC)
    with conn.transaction():
        found = _row_for(conn, report)
        if isinstance(found, str):
            return found
        notification_id, episode_id, recipient_kind, current, provider_id = found
        new = next_status(current, report.message_status, adopting=provider_id is None)
        if new is None:
            return "unchanged"
        error = (
            f"Twilio reported {report.message_status} (error {report.error_code})"
            if new in ("undelivered", "failed")
            else None
        )
        conn.execute(
            """
            UPDATE notifications
            SET status = %s, provider_id = %s, last_error = %s, next_attempt_at = NULL,
                cancel_reason = NULL, sent_at = coalesce(sent_at, %s), updated_at = %s
            WHERE id = %s
            """,
            (new, report.message_sid, error, at, at, notification_id),
        )
        details = {
            "notification_id": notification_id,
            "recipient_kind": recipient_kind,
            "provider_id": report.message_sid,
            "status": new,
            "source": "status_callback",
        }
        if error is not None:
            store.record_event(conn, episode_id, "notify_failed", details | {"error": error}, at)
        elif new == "delivered":
            store.record_event(conn, episode_id, "notify_delivered", details, at)
        elif provider_id is None:
            store.record_event(conn, episode_id, "notified", details, at)
    return "updated"
