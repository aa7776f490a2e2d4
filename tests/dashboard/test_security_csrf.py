"""CSRF: every state-changing route refuses a valid session cookie without the session's token.

Routes are enumerated from the app. Session routes are forged six ways (no token, a wrong one in
the header or the form, another session's token, and the right token sent by another site's
page or an opaque origin); the login form (double-submit cookie) three ways; the Twilio webhook,
which no cookie authenticates, must carry Twilio's signature.
"""

from __future__ import annotations

import re

import psycopg
from fastapi.testclient import TestClient

from dashboard.app import create_app
from dashboard.authz import SESSION_COOKIE
from tests.dashboard.conftest import World
from tests.dashboard.support import PASSWORD, login
from tests.dashboard.test_security_routes import endpoints

USERS = {"gp": "dr.rossi", "nurse": "nurse.greco", "admin": "admin"}
# What Chromium sends with a form post from our own pages (observed: our Referrer-Policy:
# no-referrer makes the Origin "null"; Sec-Fetch-Site still tells).
OUR_PAGE = {"origin": "null", "sec-fetch-site": "same-origin"}
# The right token, sent by someone else's page.
OTHER_SITES = {
    "another site's page": {"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
    "a sibling subdomain": {"origin": "http://evil.testserver", "sec-fetch-site": "same-site"},
    "a sandboxed frame elsewhere": {"origin": "null", "sec-fetch-site": "cross-site"},
    "another site, no Fetch Metadata": {"origin": "https://evil.example"},
}
# State-changing routes no session cookie authenticates, and what protects each instead.
LOGIN = {("POST", "/login"): "double-submit cookie set with the form"}
WEBHOOKS = {
    ("POST", "/sms/status"): "Twilio's X-Twilio-Signature over the public URL",
    ("POST", "/sms/inbound"): "Twilio's X-Twilio-Signature over the public URL",
}


def _forgeries(csrf: str, foreign_csrf: str) -> dict[str, dict]:
    """Request arguments of each forged variant, given the session's and another's token."""
    return {
        "no token": {},
        "wrong header token": {"headers": {"x-csrf-token": "forged"}},
        "wrong form token": {"data": {"csrf_token": "forged"}},
        "another session's token": {"headers": {"x-csrf-token": foreign_csrf}},
    } | {name: {"headers": {"x-csrf-token": csrf} | h} for name, h in OTHER_SITES.items()}


def _state(db: psycopg.Connection) -> tuple:
    """Everything a state-changing route could touch, and the audit rows of any write."""
    return (
        db.execute(
            "SELECT id, state, claimed_by, outcome, updated_at FROM alerts ORDER BY id"
        ).fetchall(),
        db.execute(
            "SELECT id, state, claimed_by, outcome, updated_at FROM episodes ORDER BY id"
        ).fetchall(),
        db.execute(
            "SELECT id, role, active, language, phone, quiet_hours_start, password_hash "
            "FROM staff ORDER BY id"
        ).fetchall(),
        db.execute("SELECT count(*) FROM patients").fetchone(),
        db.execute("SELECT count(*) FROM gateways").fetchone(),
        db.execute("SELECT count(*) FROM dashboard_sessions").fetchone(),
        db.execute(
            "SELECT count(*) FROM audit_log WHERE action NOT LIKE '%%read' "
            "AND action NOT IN ('login', 'patient.list')"
        ).fetchone(),
    )


def test_session_routes_refuse_forged_requests(app, world: World, db: psycopg.Connection) -> None:
    routes = [e for e in endpoints(app) if e.state_changing and e.key not in LOGIN | WEBHOOKS]
    assert all(e.needs_session for e in routes), "classify the new state-changing route here"
    # Logout last: its control request ends the session the others use.
    routes.sort(key=lambda e: e.path == "/logout")
    # One client per role; only the first runs the app's lifespan (its pool) as a context.
    clients = {role: TestClient(app, follow_redirects=False) for role in USERS}
    with clients["gp"]:
        tokens = {role: login(c, USERS[role]) for role, c in clients.items()}
        before = _state(db)
        refused, requests, failures = 0, [], []
        for endpoint in routes:
            role = endpoint.role()
            other = next(r for r in USERS if r != role)
            ids = {
                "patient_id": world.patients["own"],
                "episode_id": world.episodes["own"],
                "alert_id": world.alerts["own"],
                "staff_id": world.staff["gp"],
            }
            for url in endpoint.urls(ids):
                requests.append((endpoint, role, url))
                for name, kwargs in _forgeries(tokens[role], tokens[other]).items():
                    response = clients[role].request(endpoint.method, url, **kwargs)
                    refused += response.status_code == 403
                    if response.status_code != 403:
                        failures.append((endpoint.key, url, name, response.status_code))
        after = _state(db)
        # The control: the same requests from our own page pass the CSRF check.
        passed = 0
        for endpoint, role, url in requests:
            response = clients[role].request(
                endpoint.method,
                url,
                headers={"x-csrf-token": tokens[role]} | OUR_PAGE,
            )  # without a body: a 422 past the CSRF check proves the point as well as a 200
            passed += response.status_code not in (401, 403)
    print(
        f"CSRF: {len(routes)} state-changing session routes, {len(requests)} URLs x "
        f"{len(_forgeries('', ''))} forgeries: {refused} refused with 403, "
        f"{len(failures)} accepted, state unchanged: {after == before}; "
        f"control, the token from our own page: {passed}/{len(requests)} passed the check"
    )
    assert failures == []
    assert after == before, "a forged request changed state or wrote an audit row"
    assert passed == len(requests)
    assert len(routes) >= 17


def _login_form(client: TestClient) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def test_login_form_refuses_forged_posts(client: TestClient, world: World, db) -> None:
    form = {"username": "dr.rossi", "password": PASSWORD}
    # A fresh form before each post: a refused post renders the form with a new cookie.
    forged = {"wrong token": lambda: ({**form, "csrf_token": "forged"}, {})}
    for name, headers in OTHER_SITES.items():
        forged[name] = lambda h=headers: ({**form, "csrf_token": _login_form(client)}, h)
    for name, make in forged.items():
        data, headers = make()
        response = client.post("/login", data=data, headers=headers)
        assert response.status_code == 403, name
        assert SESSION_COOKIE not in response.headers.get("set-cookie", ""), name
    token = _login_form(client)
    client.cookies.clear()  # no cookie from the form: a cross-site form cannot read one
    no_cookie = client.post("/login", data={**form, "csrf_token": token})
    sessions = db.execute("SELECT count(*) FROM dashboard_sessions").fetchone()[0]
    ok = client.post("/login", data={**form, "csrf_token": _login_form(client)}, headers=OUR_PAGE)
    print(f"CSRF login: {len(forged) + 1} forged posts refused, {sessions} sessions opened")
    assert no_cookie.status_code == 403 and sessions == 0
    assert ok.status_code == 303


def test_twilio_webhook_needs_its_signature(database_url: str, world: World, db) -> None:
    app = create_app(
        database_url,
        public_url="https://telemon.example.it",
        language="en",
        twilio_auth_token="twilio-secret",
    )
    report = {"MessageSid": "SM1", "MessageStatus": "delivered"}
    before = db.execute("SELECT id, status, provider_id FROM notifications ORDER BY id").fetchall()
    reply = {"MessageSid": "SM2", "From": "+393331234567", "Body": "STOP"}
    with TestClient(app) as client:
        unsigned = client.post("/sms/status", data=report)
        forged = client.post("/sms/status", data=report, headers={"x-twilio-signature": "AAAA"})
        inbound = [
            client.post("/sms/inbound", data=reply, headers=headers)
            for headers in ({}, {"x-twilio-signature": "AAAA"})
        ]
    after = db.execute("SELECT id, status, provider_id FROM notifications ORDER BY id").fetchall()
    print(f"CSRF webhooks: {len(WEBHOOKS)} signature-checked, unsigned and forged refused")
    assert unsigned.status_code == 404 and forged.status_code == 404
    assert [r.status_code for r in inbound] == [404, 404]
    assert after == before
    assert db.execute("SELECT count(*) FROM inbound_sms").fetchone()[0] == 0
