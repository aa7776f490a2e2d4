"""The authorisation matrix: each role x each patient-data route x own/other patient, no leaks."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from dashboard.authz import current_user, signed_in
from tests.dashboard.conftest import World
from tests.dashboard.support import login

ROLES = {
    "gp": "dr.rossi",
    "nurse": "nurse.greco",
    "admin": "admin",
    "privacy": "privacy.officer",
    # The second organisation's staff (conftest): the same roles, another organisation.
    "org_b_gp": "dr.verdi",
    "org_b_nurse": "nurse.galli",
    "org_b_admin": "admin.milano",
    "org_b_privacy": "privacy.milano",
    "anonymous": None,
}
ROLE = {key: key.removeprefix("org_b_") for key in ROLES}
TARGETS = ("own", "other_gp", "far", "org_b")
NAMES = {"own": "Colombo", "other_gp": "Ferrari", "far": "Ricci", "org_b": "Marino"}
# Who may see each seeded patient: "own" is dr.rossi's in centre A, "other_gp" dr.bianchi's in
# centre A, "far" dr.bianchi's in centre B (nurse.greco works in centre A); "org_b" dr.verdi's
# in the second organisation's centre (nurse.galli's).
VISIBLE = {
    "gp": {"own"},
    "nurse": {"own", "other_gp"},
    "admin": set(),
    # The audit log and, on request, the whole record of every patient of the organisation;
    # no clinical views.
    "privacy": {"own", "other_gp", "far"},
    "org_b_gp": {"org_b"},
    "org_b_nurse": {"org_b"},
    "org_b_admin": set(),
    "org_b_privacy": {"org_b"},
    "anonymous": set(),
}
# In this order: one finding resolved on its own, then the episode worked to its resolution.
PATIENT_ROUTES = [
    ("GET", "/api/patients/{p}"),
    ("GET", "/api/patients/{p}/episodes"),
    ("GET", "/api/patients/{p}/series/spo2?days=30"),
    ("GET", "/patients/{p}"),
    ("GET", "/fhir/Patient/{p}"),
    ("GET", "/fhir/Observation?patient={p}"),
    ("GET", "/fhir/Patient/{p}/$everything"),
    ("GET", "/fhir/Patient/{p}/$everything?_format=text/csv"),
    ("GET", "/api/episodes/{e}"),
    ("GET", "/api/episodes/{e}/events"),
    ("GET", "/episodes/{e}"),
    ("GET", "/api/alerts/{a}"),
    ("GET", "/alerts/{a}"),
    ("POST", "/api/alerts/{a}/resolve"),
    ("POST", "/api/episodes/{e}/claim"),
    ("POST", "/api/episodes/{e}/outcome"),
    ("POST", "/api/episodes/{e}/acknowledge"),
    ("POST", "/api/episodes/{e}/escalate"),
    ("POST", "/api/episodes/{e}/resolve"),
]
BODIES = {"outcome": {"outcome": "advised", "note": "n"}}


def _expected(key: str, target: str, method: str, path: str) -> int:
    role = ROLE[key]
    if role == "anonymous":
        return 303 if not path.startswith(("/api", "/fhir")) else 401
    if role == "privacy" and "/$everything" in path:
        return 200 if target in VISIBLE[key] else 404
    if role in ("admin", "privacy"):
        return 403
    if path.endswith("/escalate") and role == "gp":
        return 403
    # The whole record (record.export) is the GP's: a nurse reads it a view at a time.
    if "/$everything" in path and role == "nurse":
        return 403
    if target not in VISIBLE[key]:
        return 404
    # A finding's page is its episode's.
    return 303 if path.startswith("/alerts/") and method == "GET" else 200


@pytest.mark.parametrize("role", list(ROLES))
def test_patient_routes_matrix(client: TestClient, world: World, role: str) -> None:
    csrf = login(client, ROLES[role]) if ROLES[role] else ""
    failures = []
    for target in TARGETS:
        for method, template in PATIENT_ROUTES:
            path = template.format(
                p=world.patients[target], e=world.episodes[target], a=world.alerts[target]
            )
            action = path.rsplit("/", 1)[-1]
            response = client.request(
                method,
                path,
                headers={"x-csrf-token": csrf},
                json=BODIES.get(action) if method == "POST" else None,
            )
            expected = _expected(role, target, method, path)
            if response.status_code != expected:
                failures.append((target, method, path, response.status_code, expected))
            if expected != 200:
                # No name of any patient in any refusal.
                for name in NAMES.values():
                    assert name not in response.text, (role, path)
    assert failures == []


LIST_ROUTES = {
    "/api/triage": {"nurse"},
    "/api/patients": {"gp", "nurse"},
    "/triage": {"nurse"},
    "/patients": {"gp", "nurse"},
    "/equipment": {"nurse", "admin"},
    "/sms": {"nurse"},
    "/api/gateways/offline": {"nurse", "admin"},
    "/api/devices/low-battery": {"nurse", "admin"},
    "/api/notifications/failed": {"nurse"},
    "/api/notifications/outboxed": {"nurse"},
    "/api/admin/staff": {"admin"},
    "/api/admin/protocols": {"admin"},
    "/admin": {"admin"},
    "/admin/access-report": {"privacy"},
    "/admin/restrictions": {"admin", "gp"},
    "/api/me/settings": {"gp", "nurse", "admin", "privacy"},
    "/settings": {"gp", "nurse", "admin", "privacy"},
}


@pytest.mark.parametrize("role", list(ROLES))
def test_list_routes_matrix_and_no_leak(client: TestClient, world: World, role: str) -> None:
    if ROLES[role]:
        login(client, ROLES[role])
    for path, allowed in LIST_ROUTES.items():
        response = client.get(path)
        if role == "anonymous":
            assert response.status_code == (401 if path.startswith("/api") else 303), path
        else:
            assert response.status_code == (200 if ROLE[role] in allowed else 403), (role, path)
        if response.status_code == 200:
            for target, name in NAMES.items():
                if target not in VISIBLE[role]:
                    assert name not in response.text, (role, path, name)
    events = client.get("/events") if ROLE[role] in ("admin", "privacy", "anonymous") else None
    if events is not None:
        assert events.status_code == (401 if role == "anonymous" else 403)


def test_every_route_is_protected_or_explicitly_public(app) -> None:
    public = {
        "/login",
        "/lang/{language}",
        "/healthz",
        "/sms/status",
        "/sms/inbound",
        "/fhir/metadata",
    }
    # Routes that decide for themselves, and the test that holds them to it.
    own_check = {"/status": "an admin's session or the status token: test_service_status.py"}
    # Signed in with a password an admin set: only these, until it is changed.
    before_password_change = {"/password", "/logout"}

    def depends_on(dependant, call) -> bool:
        return any(d.call is call or depends_on(d, call) for d in dependant.dependencies)

    def depends_on_login(route) -> bool:
        if route.path in before_password_change:
            return depends_on(route.dependant, signed_in)
        return depends_on(route.dependant, current_user)

    def routes(items):
        for route in items:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "routes"):
                yield from routes(route.routes)
            elif hasattr(route, "original_router"):  # FastAPI's include_router wrapper
                yield from routes(route.original_router.routes)

    checked = 0
    for route in routes(app.routes):
        checked += 1
        if route.path in public or route.path in own_check:
            continue
        assert depends_on_login(route), f"{route.path} has no authorisation"
    assert checked >= 40


def test_state_changing_requests_need_the_csrf_token(client: TestClient, world: World) -> None:
    login(client, "nurse.greco")
    episode = world.episodes["own"]
    assert client.post(f"/api/episodes/{episode}/claim").status_code == 403
    assert (
        client.post(
            f"/api/episodes/{episode}/claim", headers={"x-csrf-token": "forged"}
        ).status_code
        == 403
    )
    forged = {"csrf_token": "forged"}
    assert client.post(f"/episodes/{episode}/claim", data=forged).status_code == 403
    assert client.post(f"/alerts/{world.alerts['own']}/resolve", data=forged).status_code == 403
    assert client.get(f"/api/episodes/{episode}").json()["claimed_by"] is None
    assert client.get(f"/api/alerts/{world.alerts['own']}").json()["state"] == "open"


# Oscuramento in the matrix: with the "own" patient's SpO2 hidden at their request (recorded by
# their GP), every read path that carries SpO2 shows it to that GP alone; whoever else reaches
# the path gets it without SpO2 (dashboard/restrictions.py, tests/dashboard/test_restrictions.py).
SPO2_PATHS = {
    "/api/patients/{p}/series/spo2?days=7": lambda r: bool(r.json()["points"]),
    "/fhir/Observation?patient={p}&code=59408-5": lambda r: r.json()["total"] > 0,
    "/fhir/Patient/{p}/$everything": lambda r: "59408-5" in r.text,
    "/fhir/Patient/{p}/$everything?_format=text/csv": lambda r: ",spo2," in r.text,
    "/api/episodes/{e}": lambda r: any(f["metric"] == "spo2" for f in r.json()["findings"]),
    "/api/alerts/{a}": lambda r: r.json()["metric"] == "spo2",
    "/api/triage": lambda r: any(
        f["metric"] == "spo2"
        for q in r.json()
        if q["patient_code"] == "P-0001"
        for f in q["findings"]
    ),
    "/patients/{p}/readings.csv": lambda r: ",spo2," in r.text,
}


@pytest.mark.parametrize("role", [r for r in ROLES if r != "anonymous"])
def test_oscuramento_matrix(client: TestClient, world: World, role: str) -> None:
    csrf = login(client, "dr.rossi")
    recorded = client.post(
        f"/api/patients/{world.patients['own']}/restrictions",
        headers={"x-csrf-token": csrf},
        json={"kind": "metric_category", "category": "spo2", "requested_on": "2024-01-01"},
    )
    assert recorded.status_code == 201
    client.cookies.clear()
    login(client, ROLES[role])
    shown, reached = [], 0
    for template, has_spo2 in SPO2_PATHS.items():
        path = template.format(
            p=world.patients["own"], e=world.episodes["own"], a=world.alerts["own"]
        )
        response = client.get(path)
        if response.status_code != 200:
            assert response.status_code in (403, 404), (role, path)
            continue
        reached += 1
        if has_spo2(response):
            shown.append(path)
    if role == "gp":
        assert len(shown) == reached == len(SPO2_PATHS) - 1  # all but the centre's queue
    else:
        assert shown == [], role
    if role in ("nurse", "privacy"):
        assert reached > 0  # the paths they reach, without SpO2
