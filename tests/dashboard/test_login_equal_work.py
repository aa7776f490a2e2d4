"""Every refused login costs the same work: exactly one argon2 verification, whatever the reason.

A locked account used to answer before any password check (7-125 ms, against 184-441 ms for an
unknown name): the bodies were identical, the time told that the username existed. Counted with
the app's own password pool (``app.state.password_checks.verifications``, the argon2 runs it
did), then one coarse look at the clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from dashboard.accounts import MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS
from tests.dashboard.conftest import World
from tests.dashboard.support import PASSWORD
from tests.dashboard.test_security_bruteforce import _post_login

ADDRESS = "203.0.113.70"


def _lock(db: psycopg.Connection, username: str) -> None:
    db.execute(
        "UPDATE staff SET locked_until = now() + interval '10 minutes', failed_logins = 5 "
        "WHERE username = %s",
        (username,),
    )


def _prepare(db: psycopg.Connection) -> None:
    """One account per way of being refused before the password decides."""
    _lock(db, "dr.bianchi")
    db.execute("UPDATE staff SET active = false WHERE username = 'nurse.conti'")
    db.execute(
        "INSERT INTO staff (username, display_name, role) VALUES ('dr.nopass', 'No Pass', 'gp')"
    )
    now = datetime.now(UTC)
    for _ in range(MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS):
        db.execute(
            "INSERT INTO dashboard_login_attempts (at, username, client_address, succeeded) "
            "VALUES (%s, 'admin', %s, false)",
            (now - timedelta(minutes=1), ADDRESS),
        )


# (username, password, the status answered, the reason the audit log keeps)
ATTEMPTS = {
    "wrong password": ("dr.rossi", "wrong-password", 401, "invalid"),
    "unknown username": ("dr.nobody", "wrong-password", 401, "invalid"),
    "locked account": ("dr.bianchi", PASSWORD, 401, "locked"),
    "deactivated account": ("nurse.conti", PASSWORD, 401, "inactive"),
    "account without a password": ("dr.nopass", "telemon-no-such-user", 401, "invalid"),
    "throttled (name, address)": ("admin", PASSWORD, 429, "throttled"),
    "right password": ("nurse.greco", PASSWORD, 303, None),
}


def test_every_refusal_runs_exactly_one_password_verification(
    app, world: World, db: psycopg.Connection
) -> None:
    _prepare(db)
    checks = app.state.password_checks
    runs, answers = {}, {}
    with TestClient(app, follow_redirects=False, client=(ADDRESS, 40000)) as client:
        for name, (username, password, _, _) in ATTEMPTS.items():
            before = checks.verifications
            answers[name] = _post_login(client, username, password).status_code
            runs[name] = checks.verifications - before
    reasons = [
        r[0]
        for r in db.execute(
            "SELECT details->>'reason' FROM audit_log WHERE action LIKE 'login%%' ORDER BY id"
        )
    ]
    print(f"argon2 runs per attempt: {runs}")
    assert runs == dict.fromkeys(ATTEMPTS, 1)
    assert answers == {name: status for name, (_, _, status, _) in ATTEMPTS.items()}
    assert reasons == [reason for _, _, _, reason in ATTEMPTS.values()]


def test_a_locked_account_takes_as_long_as_an_unknown_name(
    app, world: World, db: psycopg.Connection
) -> None:
    """Coarse: the fastest of three each, so a slow moment of the machine cannot fake it."""
    _lock(db, "dr.bianchi")
    seconds: dict[str, list[float]] = {"dr.bianchi": [], "dr.nobody": []}
    with TestClient(app, follow_redirects=False, client=(ADDRESS, 40000)) as client:
        for _ in range(3):
            for username, spent in seconds.items():
                started = time.monotonic()
                assert _post_login(client, username, "wrong-password").status_code == 401
                spent.append(time.monotonic() - started)
    locked, unknown = min(seconds["dr.bianchi"]), min(seconds["dr.nobody"])
    print(f"fastest answer: locked {locked * 1000:.0f} ms, unknown {unknown * 1000:.0f} ms")
    assert locked > unknown / 2
