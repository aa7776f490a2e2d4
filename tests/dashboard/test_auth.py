"""Login, sessions, lockout, logout, cookie flags and security headers."""

from __future__ import annotations

import re

import psycopg
from fastapi.testclient import TestClient

from dashboard.accounts import MAX_FAILED_LOGINS, authenticate, set_password
from dashboard.app import create_app
from tests.dashboard.conftest import World
from tests.dashboard.support import PASSWORD, login


def _login_form(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def test_set_password_hashes_with_argon2_and_authenticates(db: psycopg.Connection) -> None:
    db.execute("INSERT INTO staff (username, display_name, role) VALUES ('dr.verdi', 'V', 'gp')")
    set_password(db, "dr.verdi", "a-long-demo-password")
    stored = db.execute("SELECT password_hash FROM staff WHERE username = 'dr.verdi'").fetchone()
    assert stored[0].startswith("$argon2id$")
    from datetime import UTC, datetime

    ok = authenticate(
        db, "dr.verdi", "a-long-demo-password", client_address=None, now=datetime.now(UTC)
    )
    assert ok.staff_id is not None


def test_login_sets_a_server_side_session_cookie_and_logout_ends_it(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    token = _login_form(client)
    response = client.post(
        "/login", data={"username": "nurse.greco", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "telemon_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # http public_url
    assert client.get("/").headers["location"] == "/triage"
    csrf = client.get("/api/me").json()["csrf_token"]
    assert db.execute("SELECT count(*) FROM dashboard_sessions").fetchone()[0] == 1
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert db.execute("SELECT count(*) FROM dashboard_sessions").fetchone()[0] == 0
    assert client.get("/api/me").status_code == 401
    actions = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions[0] == "login" and "logout" in actions


def test_secure_cookie_and_hsts_when_public_url_is_https(database_url: str, world: World) -> None:
    app = create_app(
        database_url, public_url="https://telemon.example.it", language="en", twilio_auth_token=""
    )
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        token = _login_form(client)
        response = client.post(
            "/login", data={"username": "dr.rossi", "password": PASSWORD, "csrf_token": token}
        )
        assert "Secure" in response.headers["set-cookie"]
        assert "max-age" in response.headers["strict-transport-security"]


def test_wrong_password_locks_the_account_after_repeated_failures(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    for _ in range(MAX_FAILED_LOGINS):
        response = client.post(
            "/login",
            data={
                "username": "dr.rossi",
                "password": "wrong-pass",
                "csrf_token": _login_form(client),
            },
        )
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
    locked = client.post(
        "/login",
        data={"username": "dr.rossi", "password": PASSWORD, "csrf_token": _login_form(client)},
    )
    assert locked.status_code == 401 and "locked for 15 minutes" in locked.text
    assert (
        db.execute("SELECT count(*) FROM audit_log WHERE action = 'login.failed'").fetchone()[0]
        == MAX_FAILED_LOGINS + 1
    )


def test_unknown_users_and_login_without_form_token_are_refused(
    client: TestClient, world: World
) -> None:
    assert (
        client.post(
            "/login",
            data={"username": "nobody", "password": PASSWORD, "csrf_token": _login_form(client)},
        ).status_code
        == 401
    )
    client.cookies.clear()
    assert (
        client.post(
            "/login", data={"username": "dr.rossi", "password": PASSWORD, "csrf_token": "x"}
        ).status_code
        == 403
    )


def test_expired_sessions_and_deactivated_staff_are_signed_out(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    login(client, "dr.rossi")
    db.execute("UPDATE dashboard_sessions SET expires_at = now() - interval '1 second'")
    assert client.get("/patients").headers["location"] == "/login"
    login(client, "dr.rossi")
    db.execute("UPDATE staff SET active = false WHERE username = 'dr.rossi'")
    assert client.get("/api/patients").status_code == 401


def test_security_headers_and_no_stack_traces(client: TestClient, world: World) -> None:
    response = client.get("/login")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in response.text and " style=" not in response.text
    login(client, "dr.rossi")
    missing = client.get("/patients/999999")
    assert missing.status_code == 404 and "Traceback" not in missing.text
    bad = client.get("/api/patients/abc")
    assert bad.status_code == 422 and "abc" not in bad.text
