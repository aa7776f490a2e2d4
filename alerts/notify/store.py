"""The notifications table as a work queue, and the alert events that tell its story.

Statements only: the sender decides where the transactions begin and end.

A row being sent is marked 'sending' and committed before Twilio is called, so the call runs
outside any transaction. The sender also holds a session-level advisory lock on the row until
its outcome is written: a 'sending' row whose lock is free was left by a process that died
mid-call (PostgreSQL drops the locks of a closed session), one whose lock is held is in
flight. That is exact, unlike a lease, and needs the sender's connection to be a real session
(not a transaction-mode pgbouncer).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb

# Two-int advisory keys: (namespace, id modulo 2^31). A collision only delays a recovery.
LOCK_NAMESPACE = 0x7E1E_0002
_KEY_MODULUS = 2**31

EventKind = Literal["notified", "notify_failed", "notify_delivered"]


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    alert_id: int | None
    recipient_kind: str
    to: str
    body: str
    attempts: int  # including the one this claim starts
    created_at: datetime


_CLAIM_COLUMNS = "id, alert_id, recipient_kind, to_address, body, attempts, created_at"


def claim_due(conn: psycopg.Connection, now: datetime, skip: Collection[int] = ()) -> Claim | None:
    """Take the next due row: mark it 'sending', count the attempt, lock it for this session."""
    passed_over = list(skip)
    while True:
        row = conn.execute(
            f"""
            SELECT {_CLAIM_COLUMNS} FROM notifications
            WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= %s)
              AND id <> ALL(%s)
            ORDER BY next_attempt_at NULLS FIRST, id
            LIMIT 1
            FOR UPDATE SKIP LOCKED
            """,
            (now, passed_over),
        ).fetchone()
        if row is None:
            return None
        if _try_lock(conn, row[0]):
            break
        passed_over.append(row[0])  # its key collides with a row in flight elsewhere
    conn.execute(
        "UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = %s "
        "WHERE id = %s",
        (now, row[0]),
    )
    return _claim(row, attempts=row[5] + 1)


def sending_ids(conn: psycopg.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM notifications WHERE status = 'sending'")]


def lock_abandoned(conn: psycopg.Connection, notification_id: int) -> Claim | None:
    """The row, if it is 'sending' and nobody alive is sending it; locked until the commit."""
    row = conn.execute(
        f"SELECT {_CLAIM_COLUMNS} FROM notifications WHERE id = %s AND status = 'sending' "
        "FOR UPDATE SKIP LOCKED",
        (notification_id,),
    ).fetchone()
    if row is None:
        return None
    free = conn.execute(
        "SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, _key(notification_id))
    ).fetchone()
    return _claim(row, attempts=row[5]) if free and free[0] else None


def release(conn: psycopg.Connection, notification_id: int) -> None:
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, _key(notification_id)))


def mark_sent(conn: psycopg.Connection, claim: Claim, provider_id: str, now: datetime) -> None:
    # A status callback may have come first and already recorded the SID and a later status.
    conn.execute(
        """
        UPDATE notifications
        SET provider_id = %s,
            status = CASE WHEN status IN ('pending', 'sending', 'failed') THEN 'sent'
                          ELSE status END,
            sent_at = coalesce(sent_at, %s), last_error = NULL, next_attempt_at = NULL,
            updated_at = %s
        WHERE id = %s
        """,
        (provider_id, now, now, claim.id),
    )


def mark_retry(
    conn: psycopg.Connection, claim: Claim, error: str, next_attempt_at: datetime, now: datetime
) -> bool:
    """Back to 'pending' for a later attempt; False when a status callback settled it meanwhile."""
    cur = conn.execute(
        "UPDATE notifications SET status = 'pending', last_error = %s, next_attempt_at = %s, "
        "updated_at = %s WHERE id = %s AND status = 'sending'",
        (error, next_attempt_at, now, claim.id),
    )
    return cur.rowcount == 1


def mark_failed(conn: psycopg.Connection, claim: Claim, error: str, now: datetime) -> bool:
    cur = conn.execute(
        "UPDATE notifications SET status = 'failed', last_error = %s, next_attempt_at = NULL, "
        "updated_at = %s WHERE id = %s AND status = 'sending'",
        (error, now, claim.id),
    )
    return cur.rowcount == 1


def mark_outboxed(conn: psycopg.Connection, claim: Claim, now: datetime) -> None:
    conn.execute(
        "UPDATE notifications SET status = 'outboxed', next_attempt_at = NULL, updated_at = %s "
        "WHERE id = %s",
        (now, claim.id),
    )


def record_event(
    conn: psycopg.Connection,
    alert_id: int | None,
    kind: EventKind,
    details: dict[str, Any],
    at: datetime,
) -> None:
    if alert_id is None:
        return  # a notification about no alert (none exist yet) has no alert history to join
    conn.execute(
        "INSERT INTO alert_events (alert_id, at, kind, details) VALUES (%s, %s, %s, %s)",
        (alert_id, at, kind, Jsonb(details)),
    )


def _try_lock(conn: psycopg.Connection, notification_id: int) -> bool:
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, _key(notification_id))
    ).fetchone()
    return bool(row and row[0])


def _key(notification_id: int) -> int:
    return notification_id % _KEY_MODULUS


def _claim(row: tuple[Any, ...], *, attempts: int) -> Claim:
    return Claim(
        id=row[0],
        alert_id=row[1],
        recipient_kind=row[2],
        to=row[3],
        body=row[4],
        attempts=attempts,
        created_at=row[6],
    )
