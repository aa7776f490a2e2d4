"""Twilio's delivery reports: checking they come from Twilio, and applying them to our rows.

The dashboard mounts the route (``POST {public_url}/sms/status?notification={id}``), checks the
``X-Twilio-Signature`` header with :func:`is_valid_signature` against the URL exactly as Twilio
called it (the public one, not the one behind a proxy), then calls
:func:`apply_status_callback`. The notification id in the URL lets a report settle a row whose
SID we never stored because the sender died while Twilio was answering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

import psycopg
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

# How far along a message is; a report never moves a row back.
_PROGRESS: Mapping[str, int] = MappingProxyType(
    {
        "pending": 0,
        "cancelled": 0,
        "sending": 1,
        "outboxed": 1,
        "sent": 2,
        "undelivered": 3,
        "failed": 3,
        "delivered": 4,
    }
)

CallbackOutcome = Literal["updated", "unchanged", "unknown"]


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
    """The row's new status, or None to leave it. ``adopting``: the row has no SID yet, so our
    own verdict ('failed: outcome unknown', or 'cancelled' after a look-up at Twilio that came
    too early) was a guess the report overrules."""
    new = PROVIDER_STATUS.get(reported)
    if new is None or current == "delivered":
        return None
    if adopting or _PROGRESS[new] > _PROGRESS[current]:
        return new
    return None


def apply_status_callback(
    conn: psycopg.Connection, report: StatusReport, *, now: datetime | None = None
) -> CallbackOutcome:
    at = now or datetime.now(UTC)
    with conn.transaction():
        row = conn.execute(
            "SELECT id, episode_id, recipient_kind, status, provider_id FROM notifications "
            "WHERE provider_id = %s FOR UPDATE",
            (report.message_sid,),
        ).fetchone()
        if row is None and report.notification_id is not None:
            row = conn.execute(
                "SELECT id, episode_id, recipient_kind, status, provider_id FROM notifications "
                "WHERE id = %s AND provider_id IS NULL "
                "AND status IN ('sending', 'failed', 'cancelled') "
                "FOR UPDATE",
                (report.notification_id,),
            ).fetchone()
        if row is None:
            return "unknown"
        notification_id, episode_id, recipient_kind, current, provider_id = row
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
