"""Brute force: per-account lockout and the per-address ceiling, refused even with the right
password, and both expire (the per-(account, address) limit: test_login_throttle.py).
Time passes by moving the stored timestamps back (the HTTP flow) or by calling ``authenticate``
with a later ``now`` (the exact boundary)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient

from dashboard.accounts import (
    ADDRESS_WINDOW,
    LOCKOUT,
    MAX_FAILED_LOGINS,
    MAX_FAILURES_PER_ADDRESS,
    authenticate,
)
from dashboard.authz import SESSION_COOKIE
from tests.dashboard.conftest import World
from tests.dashboard.support import PASSWORD

ADDRESS = "203.0.113.7"  # the TestClient's own "testclient" is no IP: the throttle needs one


def _post_login(client: TestClient, username: str, password: str):
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )


def _signed_in(response) -> bool:
    return response.status_code == 303 and SESSION_COOKIE in response.headers.get("set-cookie", "")


def test_account_locks_refuses_the_right_password_then_unlocks(
    app, world: World, db: psycopg.Connection
) -> None:
    with TestClient(app, follow_redirects=False, client=(ADDRESS, 40000)) as client:
        wrong = [_post_login(client, "dr.rossi", "wrong-password").status_code]
        wrong += [_post_login(client, "dr.rossi", f"guess-{i}").status_code for i in range(4)]
        during = _post_login(client, "dr.rossi", PASSWORD)
        sessions = db.execute("SELECT count(*) FROM dashboard_sessions").fetchone()[0]
        # Another account is not affected by dr.rossi's lockout.
        other = _post_login(client, "dr.bianchi", PASSWORD)
        # Fifteen minutes later.
        db.execute("UPDATE staff SET locked_until = locked_until - %s", (LOCKOUT,))
        after = _post_login(client, "dr.rossi", PASSWORD)
    reasons = [
        r[0]
        for r in db.execute(
            "SELECT details->>'reason' FROM audit_log WHERE action = 'login.failed' "
            "AND actor_username = 'dr.rossi' ORDER BY id"
        )
    ]
    print(
        f"brute force: {len(wrong)} wrong passwords -> {wrong}; right password while locked -> "
        f"{during.status_code} ({sessions} sessions); other account -> {other.status_code}; "
        f"after {LOCKOUT} -> {after.status_code}; audited reasons {reasons}"
    )
    assert len(wrong) == MAX_FAILED_LOGINS and set(wrong) == {401}
    assert during.status_code == 401 and not _signed_in(during)
    assert sessions == 0
    assert _signed_in(other)
    assert _signed_in(after)
    assert reasons == ["invalid"] * MAX_FAILED_LOGINS + ["locked"]
    # A successful login starts the count afresh.
    assert db.execute(
        "SELECT failed_logins, locked_until FROM staff WHERE username = 'dr.rossi'"
    ).fetchone() == (0, None)


def _message(response) -> str:
    return re.search(r'<p class="error"[^>]*>(.*?)</p>', response.text, re.S).group(1).strip()


def test_a_locked_account_answers_as_a_wrong_password_does(
    app, world: World, db: psycopg.Connection
) -> None:
    """Five guesses must not tell an attacker that a username exists."""
    with TestClient(app, follow_redirects=False, client=(ADDRESS, 40000)) as client:
        for i in range(MAX_FAILED_LOGINS):
            _post_login(client, "dr.rossi", f"guess-{i}")
        locked = _post_login(client, "dr.rossi", PASSWORD)
        unknown = _post_login(client, "dr.nobody", "guess")
    assert (locked.status_code, _message(locked)) == (unknown.status_code, _message(unknown))
    assert "locked for 15 minutes" in _message(unknown)  # the real user still learns why
    reasons = db.execute(
        "SELECT details->>'reason' FROM audit_log WHERE action = 'login.failed' ORDER BY id DESC "
        "LIMIT 2"
    ).fetchall()
    assert reasons == [("invalid",), ("locked",)]  # the audit log keeps the difference


def test_an_address_spraying_usernames_is_throttled_then_released(
    app, world: World, db: psycopg.Connection
) -> None:
    # Unknown names and one wrong guess per real account: no account reaches its lockout, no
    # name its per-address allowance. The unknown names' failures are stored as their attempts
    # left them (an argon2 check each would take half a minute), the real accounts' are made.
    accounts = ["dr.rossi", "dr.bianchi", "nurse.greco", "admin"]
    names = [f"user{i}" for i in range(MAX_FAILURES_PER_ADDRESS - len(accounts))] + accounts
    for name in names[: -len(accounts)]:
        db.execute(
            "INSERT INTO dashboard_login_attempts (username, client_address, succeeded) "
            "VALUES (%s, %s, false)",
            (name, ADDRESS),
        )
    with TestClient(app, follow_redirects=False, client=(ADDRESS, 40000)) as client:
        sprayed = [_post_login(client, name, "wrong-password").status_code for name in accounts]
        throttled = _post_login(client, "nurse.conti", PASSWORD)
        locked = db.execute("SELECT count(*) FROM staff WHERE locked_until > now()").fetchone()[0]
        # Not a context manager: leaving one would run the app's shutdown and close its pool.
        other = TestClient(app, follow_redirects=False, client=("198.51.100.1", 40000))
        elsewhere = _post_login(other, "nurse.conti", PASSWORD)
        db.execute("UPDATE dashboard_login_attempts SET at = at - %s", (ADDRESS_WINDOW,))
        released = _post_login(client, "nurse.conti", PASSWORD)
    # Attempts older than the window count for nothing and are gone; the audit log keeps them.
    kept = db.execute("SELECT count(*) FROM dashboard_login_attempts").fetchone()[0]
    print(
        f"brute force: {len(sprayed)} failures from {ADDRESS} over {len(names)} usernames "
        f"({locked} accounts locked) -> right password refused with {throttled.status_code}; "
        f"from another address {elsewhere.status_code}; after {ADDRESS_WINDOW} "
        f"{released.status_code}"
    )
    assert set(sprayed) == {401} and locked == 0
    assert throttled.status_code == 429 and not _signed_in(throttled)
    assert _signed_in(elsewhere)
    assert _signed_in(released)
    assert kept == 1  # the release itself


def test_lockout_ends_exactly_when_it_says(db: psycopg.Connection, world: World) -> None:
    start = datetime.now(UTC)
    for i in range(MAX_FAILED_LOGINS):
        result = authenticate(db, "dr.rossi", "wrong", client_address=None, now=start)
        assert result.reason == "invalid", i
    just_before = authenticate(
        db, "dr.rossi", PASSWORD, client_address=None, now=start + LOCKOUT - timedelta(seconds=1)
    )
    just_after = authenticate(
        db, "dr.rossi", PASSWORD, client_address=None, now=start + LOCKOUT + timedelta(seconds=1)
    )
    assert just_before.reason == "locked" and just_before.staff_id is None
    assert just_after.staff_id == world.staff["gp"]
