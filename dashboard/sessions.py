"""Server-side sessions: a random token in the cookie, its hash and the CSRF token in the table."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)  # one nurse's shift, then a fresh login
# How stale the recorded activity may get before a request writes it again. Writing it at every
# request made every page view two commits (session and audit), each a WAL flush; the idle
# timeout is kept to within this much.
ACTIVITY_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Session:
    token_hash: str
    staff_id: int
    csrf_token: str
    created_at: datetime
    # The primary's WAL position after the session's last write (dashboard.databases).
    written_lsn: str | None = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(
    conn: psycopg.Connection,
    staff_id: int,
    *,
    now: datetime,
    client_address: str | None,
    user_agent: str | None,
) -> str:
    """A new session for ``staff_id``; returns the cookie's token (never stored as such)."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO dashboard_sessions (token_hash, staff_id, csrf_token, created_at, "
        "last_seen_at, expires_at, client_address, user_agent) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            _hash(token),
            staff_id,
            secrets.token_urlsafe(32),
            now,
            now,
            now + IDLE_TIMEOUT,
            client_address,
            (user_agent or "")[:300],
        ),
    )
    # Housekeeping rides on logins: expired rows are dead anyway, this just keeps the table small.
    conn.execute("DELETE FROM dashboard_sessions WHERE expires_at < %s", (now,))
    return token


def lookup(conn: psycopg.Connection, token: str, *, now: datetime) -> Session | None:
    """The live session for ``token``, its idle expiry pushed forward (written only when the
    last recorded activity is older than ``ACTIVITY_RESOLUTION``); None if absent or expired."""
    row = conn.execute(
        """
        WITH live AS (
            SELECT token_hash, staff_id, csrf_token, created_at, last_seen_at, written_lsn
            FROM dashboard_sessions WHERE token_hash = %(hash)s AND expires_at > %(now)s
        ), touched AS (
            UPDATE dashboard_sessions d
            SET last_seen_at = %(now)s, expires_at = least(%(idle)s, d.created_at + %(absolute)s)
            FROM live
            WHERE d.token_hash = live.token_hash AND live.last_seen_at <= %(stale)s
        )
        SELECT token_hash, staff_id, csrf_token, created_at, written_lsn::text FROM live
        """,
        {
            "hash": _hash(token),
            "now": now,
            "idle": now + IDLE_TIMEOUT,
            "absolute": ABSOLUTE_TIMEOUT,
            "stale": now - ACTIVITY_RESOLUTION,
        },
    ).fetchone()
    return Session(*row) if row else None


def is_live(conn: psycopg.Connection, token: str, staff_id: int, *, now: datetime) -> bool:
    """Whether ``token`` is still a live session of ``staff_id``, an active staff member.

    Read only, unlike :func:`lookup`: cheap enough for an event stream to ask at every poll, and
    not counted as the person's activity.
    """
    row = conn.execute(
        "SELECT 1 FROM dashboard_sessions s JOIN staff st ON st.id = s.staff_id AND st.active "
        "WHERE s.token_hash = %s AND s.staff_id = %s AND s.expires_at > %s",
        (_hash(token), staff_id, now),
    ).fetchone()
    return row is not None


def remember_write(conn: psycopg.Connection, token: str) -> None:
    """Record the primary's WAL position as the session's last write: its reads wait for a
    replica that has replayed this far (dashboard.databases)."""
    conn.execute(
        "UPDATE dashboard_sessions SET written_lsn = pg_current_wal_insert_lsn() "
        "WHERE token_hash = %s",
        (_hash(token),),
    )


def delete(conn: psycopg.Connection, token: str) -> None:
    conn.execute("DELETE FROM dashboard_sessions WHERE token_hash = %s", (_hash(token),))


def delete_for_staff(conn: psycopg.Connection, staff_id: int) -> None:
    """Ends every session of a staff member (deactivated, role or password changed)."""
    conn.execute("DELETE FROM dashboard_sessions WHERE staff_id = %s", (staff_id,))
