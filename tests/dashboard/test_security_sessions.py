"""Sessions: no fixation across a login, logout ends the session on the server, cookie flags."""

from __future__ import annotations

import hashlib
import re

import psycopg
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.authz import SESSION_COOKIE
from dashboard.routes.auth import LANGUAGE_COOKIE, LOGIN_CSRF_COOKIE
from dashboard.sessions import ABSOLUTE_TIMEOUT
from tests.dashboard.conftest import World
from tests.dashboard.support import PASSWORD, login


def _login_response(client: TestClient, username: str):
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    return client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )


def _with_cookie(app, token: str) -> TestClient:
    return TestClient(app, follow_redirects=False, cookies={SESSION_COOKIE: token})


def test_a_session_id_set_before_login_is_replaced(app, client: TestClient, world: World) -> None:
    planted = "attacker-chosen-session-id"
    client.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    response = _login_response(client, "nurse.greco")
    issued = _cookies(response)[SESSION_COOKIE].split(";")[0].split("=", 1)[1]
    assert response.status_code == 303 and len(issued) >= 40 and issued != planted
    with _with_cookie(app, planted) as attacker:
        assert attacker.get("/api/me").status_code == 401
    print("session fixation: a planted session id is replaced at login and opens nothing")


def test_signing_in_over_a_live_session_ends_it(
    app, client: TestClient, world: World, db: psycopg.Connection
) -> None:
    """A shared ward PC: the next user signs in without the previous one signing out."""
    login(client, "nurse.greco")
    first = client.cookies.get(SESSION_COOKIE)
    assert _login_response(client, "dr.rossi").status_code == 303
    second = client.cookies.get(SESSION_COOKIE)
    assert second != first
    assert client.get("/api/me").json()["username"] == "dr.rossi"
    with _with_cookie(app, first) as replay:
        replayed = replay.get("/api/me").status_code
    live = db.execute("SELECT count(*) FROM dashboard_sessions").fetchone()[0]
    print(f"session fixation: login over a live session -> old id {replayed}, {live} live session")
    assert replayed == 401 and live == 1


def test_logout_invalidates_the_session_on_the_server(
    app, client: TestClient, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "dr.rossi")
    token = client.cookies.get(SESSION_COOKIE)
    # Only the token's hash is stored: a copy of the table opens no session.
    stored = db.execute("SELECT token_hash FROM dashboard_sessions").fetchone()[0]
    assert stored == hashlib.sha256(token.encode()).hexdigest() and stored != token
    response = client.post("/logout", headers={"x-csrf-token": csrf})
    assert response.status_code == 303
    assert 'telemon_session=""' in response.headers["set-cookie"]
    # The browser forgets the cookie; an attacker who copied it replays it.
    with _with_cookie(app, token) as replay:
        statuses = [
            replay.get("/api/me").status_code,
            replay.get("/patients").status_code,
            replay.post(
                f"/api/episodes/{world.episodes['own']}/claim", headers={"x-csrf-token": csrf}
            ).status_code,
        ]
    remaining = db.execute("SELECT count(*) FROM dashboard_sessions").fetchone()[0]
    print(f"logout: old cookie replayed -> {statuses}, {remaining} sessions left")
    assert statuses == [401, 303, 401] and remaining == 0


def _cookies(response) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.get_list("set-cookie")}


def _flags(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]} | {
        part.strip().lower() for part in header.split(";")[1:]
    }


def test_cookie_flags_over_http_and_https(database_url: str, world: World) -> None:
    checked = 0
    for public_url, base_url in (
        ("http://testserver", "http://testserver"),
        ("https://telemon.example.it", "https://telemon.example.it"),
    ):
        https = public_url.startswith("https")
        app = create_app(database_url, public_url=public_url, language="en", twilio_auth_token="")
        with TestClient(app, base_url=base_url, follow_redirects=False) as client:
            # Each from the response that issues it (the login response deletes the form's).
            issued = {
                LANGUAGE_COOKIE: _cookies(client.get("/lang/it"))[LANGUAGE_COOKIE],
                LOGIN_CSRF_COOKIE: _cookies(client.get("/login"))[LOGIN_CSRF_COOKIE],
                SESSION_COOKIE: _cookies(_login_response(client, "dr.rossi"))[SESSION_COOKIE],
            }
        for name in (SESSION_COOKIE, LOGIN_CSRF_COOKIE, LANGUAGE_COOKIE):
            flags = _flags(issued[name])
            assert {"httponly", "samesite=lax", "path=/"} <= flags, (name, issued[name])
            assert ("secure" in flags) is https, (name, public_url)
            checked += 1
        assert f"max-age={int(ABSOLUTE_TIMEOUT.total_seconds())}" in _flags(issued[SESSION_COOKIE])
    print(f"cookie flags: {checked} cookies checked (HttpOnly, SameSite=Lax, Secure iff https)")
