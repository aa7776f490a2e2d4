"""The notifications table as a work queue, and the episode events that tell its story.

Statements only: the sender decides where the transactions begin and end.

A row being sent is marked 'sending' and committed before Twilio is called, so the call runs
outside any transaction. The sender also holds a session-level advisory lock on the row until
its outcome is written: a 'sending' row whose lock is free was left by a process that died
mid-call (PostgreSQL drops the locks of a closed session), one whose lock is held is in
flight. That is exact, unlike a lease, and needs the sender's connection to be a real session
(not a transaction-mode pgbouncer).

Taking a due row also takes a share lock on its episode until the claim commits: whether the
SMS still has a point (``alerts.notify.cancel``) is decided on the episode's committed state, and
nobody can resolve or acknowledge the episode between that look and the row going 'sending'. A
row whose episode is being changed at that moment is passed over until the next round, so the
sender never waits on the engine or the dashboard.

A patient's reminder has no episode: its point goes with its patient (discharged, opted out, or
measured what it asks for since the reading it counted from), read under a share lock on the
patient's row in the same way, so that an opt-out or a discharge committing at that moment is
either seen or waited for by the next round.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import psycopg

from alerts.lifecycle import record_episode_event
from alerts.notify.routing import DISCHARGED, MEASURED, OPTED_OUT
from alerts.notify.texts import Reason
from telemon.alert_lifecycle import AlertState
from telemon.flags import UNRELIABLE_FLAGS

# Two-int advisory keys: (namespace, id modulo 2^31). A collision only delays a recovery.
LOCK_NAMESPACE = 0x7E1E_0002
_KEY_MODULUS = 2**31

EventKind = Literal["notified", "notify_failed", "notify_delivered", "notify_cancelled"]


@dataclass(frozen=True, slots=True)
class Claim:
    id: int
    episode_id: int | None
    recipient_kind: str
    to: str
    body: str
    attempts: int  # handed to Twilio so far, counting the one under way once started
    created_at: datetime
    reason: Reason | None = None  # None: a row written before reasons were recorded
    # As the claim saw it; None: no episode, or not looked at.
    episode_state: AlertState | None = None
    superseded: bool = False  # a later row has the same episode, reason and recipient
    patient_id: int | None = None  # a patient's reminder names its patient
    reminder_moot: str | None = None  # why a reminder lost its point, as the claim saw it


_CLAIM_COLUMNS = (
    "n.id, n.episode_id, n.recipient_kind, n.to_address, n.body, n.attempts, n.created_at, "
    "n.reason, n.patient_id"
)
if not all(re.fullmatch(r"[a-z_]+", flag) for flag in UNRELIABLE_FLAGS):
    raise RuntimeError("flags are written into SQL as literals: lower-case words only")
_UNRELIABLE = ", ".join(f"'{flag}'" for flag in sorted(UNRELIABLE_FLAGS))
# Why a reminder (notifications n, its patient p) lost its point; NULL while it has one. The
# reading it counts from is the newest when it was written (the row's created_at for the rows
# written before that was recorded); only a reliable one, as the engine counts, is a measurement.
_REMINDER_MOOT = f"""
    CASE
        WHEN p.discharged_at IS NOT NULL THEN '{DISCHARGED}'
        WHEN p.reminders_opt_out_at IS NOT NULL THEN '{OPTED_OUT}'
        WHEN EXISTS (
            SELECT 1 FROM observations o
            WHERE o.patient_id = p.id AND o.metric_id = n.reminder_metric_id
              AND o.measured_at > coalesce(n.reminder_anchor, n.created_at)
              AND NOT coalesce(o.flags && ARRAY[{_UNRELIABLE}]::text[], false)
        ) THEN '{MEASURED}'
    END
"""
# A later SMS that says the same to the same phone, and is (or will be) sent.
_SUPERSEDED = """
    EXISTS (
        SELECT 1 FROM notifications later
        WHERE later.episode_id = n.episode_id AND later.id > n.id AND later.reason = n.reason
          AND later.recipient_kind = n.recipient_kind AND later.to_address = n.to_address
          AND later.status NOT IN ('cancelled', 'failed', 'undelivered')
    )
"""


def next_due(conn: psycopg.Connection, now: datetime, skip: Collection[int] = ()) -> Claim | None:
    """The next due row, locked for this transaction and (advisory) for this session, with its
    episode's state share-locked until the commit. Nothing is marked: see :func:`start_attempt`."""
    passed_over = list(skip)
    while True:
        row = conn.execute(
            f"""
            SELECT {_CLAIM_COLUMNS}, {_SUPERSEDED} FROM notifications n
            WHERE n.status = 'pending' AND (n.next_attempt_at IS NULL OR n.next_attempt_at <= %s)
              AND n.id <> ALL(%s)
            ORDER BY n.next_attempt_at NULLS FIRST, n.id
            LIMIT 1
            FOR UPDATE OF n SKIP LOCKED
            """,
            (now, passed_over),
        ).fetchone()
        if row is None:
            return None
        state: AlertState | None = None
        why: str | None = None
        if row[1] is not None:
            held = conn.execute(
                "SELECT state FROM episodes WHERE id = %s FOR SHARE SKIP LOCKED", (row[1],)
            ).fetchone()
            if held is None:
                passed_over.append(row[0])  # its episode is being changed: look again next round
                continue
            state = held[0]
        elif row[7] == "reminder" and row[8] is not None:
            held = conn.execute(
                "SELECT 1 FROM patients WHERE id = %s FOR SHARE SKIP LOCKED", (row[8],)
            ).fetchone()
            if held is None:
                passed_over.append(row[0])  # its patient is being changed: next round
                continue
            why = reminder_moot(conn, row[0])  # a statement of its own: sees what committed
        if _try_lock(conn, row[0]):
            return _claim(row, episode_state=state, superseded=row[9], reminder_moot=why)
        passed_over.append(row[0])  # its key collides with a row in flight elsewhere


def reminder_moot(conn: psycopg.Connection, notification_id: int) -> str | None:
    """Why the reminder lost its point, or None (also for a row that is no reminder)."""
    row = conn.execute(
        f"SELECT {_REMINDER_MOOT} FROM notifications n JOIN patients p ON p.id = n.patient_id "
        "WHERE n.id = %s AND n.reason = 'reminder'",
        (notification_id,),
    ).fetchone()
    return row[0] if row else None


def start_attempt(conn: psycopg.Connection, claim: Claim, now: datetime) -> Claim:
    """Mark a row :func:`next_due` took 'sending' and count the attempt it starts."""
    conn.execute(
        "UPDATE notifications SET status = 'sending', attempts = attempts + 1, updated_at = %s "
        "WHERE id = %s",
        (now, claim.id),
    )
    return replace(claim, attempts=claim.attempts + 1)


def unsent_maybe_moot(conn: psycopg.Connection, episode_id: int | None = None) -> list[Claim]:
    """Rows never handed to Twilio whose episode was resolved or acknowledged, or that a later
    row superseded: the ones that may have lost their point. Locked like :func:`next_due`'s,
    skipping the rows being claimed and those whose episode is being changed; ``episode_id``:
    its rows only.
    """
    rows = conn.execute(
        f"""
        SELECT {_CLAIM_COLUMNS}, {_SUPERSEDED} AS superseded, e.state
        FROM notifications n JOIN episodes e ON e.id = n.episode_id
        WHERE n.status = 'pending' AND n.attempts = 0
          AND (%(episode)s::bigint IS NULL OR n.episode_id = %(episode)s)
          AND (e.state IN ('resolved', 'acknowledged') OR {_SUPERSEDED})
        ORDER BY n.id
        FOR UPDATE OF n SKIP LOCKED
        FOR SHARE OF e SKIP LOCKED
        """,
        {"episode": episode_id},
    ).fetchall()
    claims = [_claim(row, episode_state=row[10], superseded=row[9]) for row in rows]
    if episode_id is None:
        claims += unsent_moot_reminders(conn)
    return claims


def unsent_moot_reminders(conn: psycopg.Connection) -> list[Claim]:
    """Reminders never handed to Twilio that lost their point, locked like :func:`next_due`'s
    (passing over those whose patient is being changed), each with why."""
    rows = conn.execute(
        f"""
        SELECT {_CLAIM_COLUMNS}, {_REMINDER_MOOT}
        FROM notifications n JOIN patients p ON p.id = n.patient_id
        WHERE n.status = 'pending' AND n.attempts = 0 AND n.reason = 'reminder'
          AND ({_REMINDER_MOOT}) IS NOT NULL
        ORDER BY n.id
        FOR UPDATE OF n SKIP LOCKED
        FOR SHARE OF p SKIP LOCKED
        """
    ).fetchall()
    return [_claim(row, reminder_moot=row[9]) for row in rows]


def sending_ids(conn: psycopg.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM notifications WHERE status = 'sending'")]


def lock_abandoned(conn: psycopg.Connection, notification_id: int) -> Claim | None:
    """The row, if it is 'sending' and nobody alive is sending it; locked until the commit."""
    row = conn.execute(
        f"SELECT {_CLAIM_COLUMNS} FROM notifications n WHERE n.id = %s AND n.status = 'sending' "
        "FOR UPDATE SKIP LOCKED",
        (notification_id,),
    ).fetchone()
    if row is None:
        return None
    free = conn.execute(
        "SELECT pg_try_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, _key(notification_id))
    ).fetchone()
    return _claim(row) if free and free[0] else None


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


def mark_cancelled(conn: psycopg.Connection, claim: Claim, why: str, now: datetime) -> bool:
    """Never to be sent; False when the row was settled meanwhile (e.g. by a status callback)."""
    cur = conn.execute(
        "UPDATE notifications SET status = 'cancelled', cancel_reason = %s, "
        "next_attempt_at = NULL, updated_at = %s "
        "WHERE id = %s AND status IN ('pending', 'sending')",
        (why, now, claim.id),
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
    episode_id: int | None,
    kind: EventKind,
    details: dict[str, Any],
    at: datetime,
) -> None:
    if episode_id is None:
        return  # a notification about no episode (a digest) has no episode history to join
    record_episode_event(conn, episode_id, kind, now=at, details=details)


def _try_lock(conn: psycopg.Connection, notification_id: int) -> bool:
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, _key(notification_id))
    ).fetchone()
    return bool(row and row[0])


def _key(notification_id: int) -> int:
    return notification_id % _KEY_MODULUS


def _claim(
    row: tuple[Any, ...],
    *,
    episode_state: AlertState | None = None,
    superseded: bool = False,
    reminder_moot: str | None = None,
) -> Claim:
    return Claim(
        id=row[0],
        episode_id=row[1],
        recipient_kind=row[2],
        to=row[3],
        body=row[4],
        attempts=row[5],
        created_at=row[6],
        reason=row[7],
        episode_state=episode_state,
        superseded=superseded,
        patient_id=row[8],
        reminder_moot=reminder_moot,
    )
