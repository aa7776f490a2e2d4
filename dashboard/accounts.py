"""Staff passwords (argon2id) and the login check with per-account lockout and per-address limit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
# Failures from one address in ADDRESS_WINDOW before it is refused outright.
MAX_FAILURES_PER_ADDRESS = 20
ADDRESS_WINDOW = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()
# Verified when the username is unknown, so a wrong username costs the same time as a wrong
# password and response times do not reveal which staff accounts exist.
_DUMMY_HASH = _hasher.hash("telemon-no-such-user")


class PasswordPolicyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LoginResult:
    staff_id: int | None
    reason: str | None = None  # None on success; "invalid", "locked" or "throttled"


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher.hash(password)


def set_password(conn: psycopg.Connection, username: str, password: str) -> None:
    """Set a staff member's password and clear any lockout (the demo calls this)."""
    cur = conn.execute(
        "UPDATE staff SET password_hash = %s, failed_logins = 0, locked_until = NULL "
        "WHERE username = %s",
        (hash_password(password), username),
    )
    if cur.rowcount != 1:
        raise LookupError(f"no staff member {username!r}")


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def authenticate(
    conn: psycopg.Connection,
    username: str,
    password: str,
    *,
    client_address: str | None,
    now: datetime,
) -> LoginResult:
    username = username.strip().lower()
    # Housekeeping rides on attempts: only the last ADDRESS_WINDOW is ever counted, and the
    # audit log, not this table, keeps the history.
    conn.execute("DELETE FROM dashboard_login_attempts WHERE at < %s", (now - ADDRESS_WINDOW,))
    failures = conn.execute(
        "SELECT count(*) FROM dashboard_login_attempts "
        "WHERE client_address = %s AND NOT succeeded AND at > %s",
        (client_address, now - ADDRESS_WINDOW),
    ).fetchone()
    if failures is not None and failures[0] >= MAX_FAILURES_PER_ADDRESS:
        _record(conn, username, client_address, False, now)
        return LoginResult(None, "throttled")
    with conn.transaction():
        row = conn.execute(
            "SELECT id, password_hash, locked_until, active FROM staff WHERE username = %s "
            "FOR UPDATE",
            (username,),
        ).fetchone()
        if row is None:
            _verify(None, password)
            _record(conn, username, client_address, False, now)
            return LoginResult(None, "invalid")
        staff_id, password_hash, locked_until, active = row
        if locked_until is not None and locked_until > now:
            _record(conn, username, client_address, False, now)
            return LoginResult(None, "locked")
        if not _verify(password_hash, password) or not active:
            conn.execute(
                "UPDATE staff SET failed_logins = failed_logins + 1, "
                "locked_until = CASE WHEN failed_logins + 1 >= %s THEN %s END WHERE id = %s",
                (MAX_FAILED_LOGINS, now + LOCKOUT, staff_id),
            )
            _record(conn, username, client_address, False, now)
            return LoginResult(None, "invalid")
        if _hasher.check_needs_rehash(password_hash):
            conn.execute(
                "UPDATE staff SET password_hash = %s WHERE id = %s",
                (_hasher.hash(password), staff_id),
            )
        conn.execute(
            "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = %s", (staff_id,)
        )
        _record(conn, username, client_address, True, now)
    return LoginResult(staff_id)


def _record(
    conn: psycopg.Connection, username: str, address: str | None, ok: bool, now: datetime
) -> None:
    conn.execute(
        "INSERT INTO dashboard_login_attempts (at, username, client_address, succeeded) "
        "VALUES (%s, %s, %s, %s)",
        (now, username[:64], address, ok),
    )
