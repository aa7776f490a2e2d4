"""Staff passwords (argon2id) and the login check: per-account lockout, per-address throttling.

A login is three steps, so that the argon2 run (the slow one) can go to a pool of its own
(``dashboard.password_checks``) between two short database steps: ``begin_login`` decides
whether the attempt may be tried at all and which hash to check, ``verify_password`` checks it,
``finish_login`` records the outcome. ``authenticate`` runs the three in one thread.

Throttling, counted over the last ``ADDRESS_WINDOW`` in ``dashboard_login_attempts``:
- an account locks after ``MAX_FAILED_LOGINS`` failures in a row, from anywhere;
- one address may fail ``MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS`` times for one username,
  whether it exists or not, so a throttled answer tells nothing about the name;
- one address may fail ``MAX_FAILURES_PER_ADDRESS`` times over all usernames: a ceiling only
  a spray over many names reaches, not a clinic of colleagues behind one NAT address.
A client without an IP address (a Unix socket, ``X-Forwarded-For: unknown``) is one address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from telemon.database import one_row

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
ADDRESS_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS = 20
MAX_FAILURES_PER_ADDRESS = 100
MIN_PASSWORD_LENGTH = 10

Refusal = Literal["invalid", "locked", "inactive", "throttled"]

_hasher = PasswordHasher()
# Verified when there is no real hash to check (an unknown username, a throttled attempt), so
# every attempt costs one argon2 run and response times do not tell which accounts exist.
_DUMMY_HASH = _hasher.hash("telemon-no-such-user")


class PasswordPolicyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class LoginResult:
    staff_id: int | None
    reason: Refusal | None = None  # None on success


@dataclass(frozen=True, slots=True)
class Attempt:
    """A login attempt between its two database steps."""

    username: str
    staff_id: int | None
    password_hash: str  # the account's, or the dummy one: every attempt verifies exactly one
    refusal: Refusal | None  # decided before the password is checked; None: the password decides


def normalise_username(username: str) -> str:
    return username.strip().lower()[:64]


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def check_policy(password: str) -> None:
    """Raise PasswordPolicyError for a password too weak to store."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")


def verify_password(password_hash: str, password: str) -> bool:
    """One argon2 verification: the CPU-bound step, run in ``dashboard.password_checks``."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_password(conn: psycopg.Connection, username: str, password: str) -> None:
    """Set a staff member's password and clear any lockout (the demo calls this)."""
    row = conn.execute(
        "SELECT id FROM staff WHERE username = %s", (normalise_username(username),)
    ).fetchone()
    if row is None:
        raise LookupError(f"no staff member {username!r}")
    store_password(conn, row[0], hash_password(password), must_change=False)


def store_password(
    conn: psycopg.Connection, staff_id: int, password_hash: str, *, must_change: bool
) -> None:
    """A new password for a staff member, lockout cleared; ``must_change`` when someone else
    chose it (an admin's reset), so its owner replaces it at their next login."""
    conn.execute(
        "UPDATE staff SET password_hash = %s, must_change_password = %s, failed_logins = 0, "
        "locked_until = NULL WHERE id = %s",
        (password_hash, must_change, staff_id),
    )


def begin_login(
    conn: psycopg.Connection, username: str, *, client_address: str | None, now: datetime
) -> Attempt:
    """Whether the attempt may be tried, and the hash it is checked against.

    A failure is counted before the password is checked (and forgiven on success), so parallel
    guesses cannot run more than MAX_FAILED_LOGINS checks against an account between lockouts.
    """
    username = normalise_username(username)
    # Housekeeping rides on attempts: only the last ADDRESS_WINDOW is ever counted, and the
    # audit log, not this table, keeps the history.
    conn.execute("DELETE FROM dashboard_login_attempts WHERE at < %s", (now - ADDRESS_WINDOW,))
    if _throttled(conn, username, client_address, now):
        return Attempt(username, None, _DUMMY_HASH, "throttled")
    with conn.transaction():
        counted = conn.execute(
            "UPDATE staff SET failed_logins = failed_logins + 1, "
            "locked_until = CASE WHEN failed_logins + 1 >= %(max)s THEN %(until)s END "
            "WHERE username = %(username)s AND (locked_until IS NULL OR locked_until <= %(now)s) "
            "RETURNING id, password_hash, active",
            {"max": MAX_FAILED_LOGINS, "until": now + LOCKOUT, "username": username, "now": now},
        ).fetchone()
        if counted is not None:
            staff_id, password_hash, active = counted
            refusal = _refusal(active=active, has_password=password_hash is not None)
            return Attempt(username, staff_id, password_hash or _DUMMY_HASH, refusal)
        locked = conn.execute(
            "SELECT id, password_hash FROM staff WHERE username = %s", (username,)
        ).fetchone()
    if locked is None:
        return Attempt(username, None, _DUMMY_HASH, "invalid")
    return Attempt(username, locked[0], locked[1] or _DUMMY_HASH, "locked")


def _refusal(*, active: bool, has_password: bool) -> Refusal | None:
    if not active:
        return "inactive"
    # An account never given a password checks the dummy hash, whose password must open nothing.
    return None if has_password else "invalid"


def _throttled(
    conn: psycopg.Connection, username: str, client_address: str | None, now: datetime
) -> bool:
    # NULL is an address here: clients without one share a bucket instead of escaping the count.
    same_address = "client_address IS NULL" if client_address is None else "client_address = %(a)s"
    from_address: int
    for_username: int
    from_address, for_username = one_row(
        conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE username = %(u)s) "
            "FROM dashboard_login_attempts "
            f"WHERE {same_address} AND NOT succeeded AND at > %(since)s",
            {"a": client_address, "u": username, "since": now - ADDRESS_WINDOW},
        )
    )
    return (
        from_address >= MAX_FAILURES_PER_ADDRESS
        or for_username >= MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS
    )


def finish_login(
    conn: psycopg.Connection,
    attempt: Attempt,
    verified: bool,
    *,
    client_address: str | None,
    now: datetime,
) -> LoginResult:
    """Record the attempt; on success the failure counted in ``begin_login`` is forgiven."""
    succeeded = verified and attempt.refusal is None
    with conn.transaction():
        if succeeded:
            conn.execute(
                "UPDATE staff SET failed_logins = 0, locked_until = NULL WHERE id = %s",
                (attempt.staff_id,),
            )
        conn.execute(
            "INSERT INTO dashboard_login_attempts (at, username, client_address, succeeded) "
            "VALUES (%s, %s, %s, %s)",
            (now, attempt.username, client_address, succeeded),
        )
    if succeeded:
        return LoginResult(attempt.staff_id)
    return LoginResult(None, attempt.refusal or "invalid")


def rehashed(attempt: Attempt, password: str) -> str | None:
    """After a successful login, the password hashed anew if the hasher's parameters changed
    since it was stored (argon2: run it where ``verify_password`` runs)."""
    if not _hasher.check_needs_rehash(attempt.password_hash):
        return None
    return _hasher.hash(password)


def store_rehash(conn: psycopg.Connection, staff_id: int, password_hash: str) -> None:
    conn.execute("UPDATE staff SET password_hash = %s WHERE id = %s", (password_hash, staff_id))


def authenticate(
    conn: psycopg.Connection,
    username: str,
    password: str,
    *,
    client_address: str | None,
    now: datetime,
) -> LoginResult:
    """The whole check in this thread (scripts, tests); the login route runs the same steps with
    the verification in its bounded pool."""
    attempt = begin_login(conn, username, client_address=client_address, now=now)
    verified = verify_password(attempt.password_hash, password)
    result = finish_login(conn, attempt, verified, client_address=client_address, now=now)
    if result.staff_id is not None and (new_hash := rehashed(attempt, password)) is not None:
        store_rehash(conn, result.staff_id, new_hash)
    return result
