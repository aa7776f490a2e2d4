"""The authorisation matrix: each role x each patient-data route x own/other patient, no leaks."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from pypdf import PdfReader

from dashboard.authz import current_user, signed_in
from tests.dashboard.conftest import World
from tests.dashboard.support import STAFF, login

# Every role of both organisations (support.STAFF), and nobody signed in.
ROLES: dict[str, str | None] = {**STAFF, "anonymous": None}
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
# the path gets it without SpO2 (dashboard/restrictions.py, tests/dashboard/test_restrictions.py):
# pages and their live fragments, the API, FHIR search, read and $everything, exports, reports
# and the SMS outbox. A list is judged by the own patient's rows: the others' may name SpO2.
SPO2_WORDS = ("Oxygen saturation", "SpO2", "59408-5")


def _names_spo2(text: str) -> bool:
    return any(w in text for w in SPO2_WORDS)


def _rows_naming(text: str, marker: str) -> str:
    """The table rows of an HTML list that contain ``marker`` (the own patient's)."""
    return "".join(row for row in text.split("<tr") if marker in row)


def _pdf_text(response: Response) -> str:
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)


SpO2Check = Callable[[Response, World], bool]
SPO2_PATHS: dict[str, SpO2Check] = {
    "/patients/{p}": lambda r, w: _names_spo2(r.text),
    "/api/patients": lambda r, w: any(
        "spo2" in str(x) for x in r.json() if x["id"] == w.patients["own"]
    ),
    "/patients/fragment": lambda r, w: _names_spo2(
        _rows_naming(r.text, f'data-patient-id="{w.patients["own"]}"')
    ),
    "/episodes/{e}": lambda r, w: _names_spo2(r.text),
    "/api/patients/{p}/episodes": lambda r, w: '"spo2"' in r.text,
    "/api/patients/{p}/series/spo2?days=7": lambda r, w: bool(r.json()["points"]),
    "/api/episodes/{e}": lambda r, w: any(f["metric"] == "spo2" for f in r.json()["findings"]),
    "/api/episodes/{e}/events": lambda r, w: "spo2" in r.text,
    "/api/alerts/{a}": lambda r, w: r.json()["metric"] == "spo2",
    "/fhir/Observation?patient={p}&code=59408-5": lambda r, w: r.json()["total"] > 0,
    "/fhir/Observation/{o}": lambda r, w: "59408-5" in r.text,  # the newest reading: SpO2
    "/fhir/Patient/{p}/$everything": lambda r, w: "59408-5" in r.text,
    "/fhir/Patient/{p}/$everything?_format=text/csv": lambda r, w: ",spo2," in r.text,
    "/patients/{p}/readings.csv": lambda r, w: ",spo2," in r.text,
    "/patients/{p}/report": lambda r, w: _names_spo2(r.text),
    "/patients/{p}/report.pdf": lambda r, w: _names_spo2(_pdf_text(r)),
    # The service centre's: the queue, its live fragment, the SMS outbox.
    "/api/triage": lambda r, w: any(
        f["metric"] == "spo2"
        for q in r.json()
        if q["patient_code"] == "P-0001"
        for f in q["findings"]
    ),
    "/triage/fragment": lambda r, w: _names_spo2(
        _rows_naming(r.text, f'data-episode-id="{w.episodes["own"]}"')
    ),
    "/sms": lambda r, w: _names_spo2(_rows_naming(r.text, f'href="/episodes/{w.episodes["own"]}"')),
    "/api/notifications/outboxed": lambda r, w: any(
        _names_spo2(n["body"]) for n in r.json() if n["patient_id"] == w.patients["own"]
    ),
}
CENTRE_ONLY = {"/api/triage", "/triage/fragment", "/sms", "/api/notifications/outboxed"}


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
    shown, reached = [], []
    for template, has_spo2 in SPO2_PATHS.items():
        path = template.format(
            p=world.patients["own"],
            e=world.episodes["own"],
            a=world.alerts["own"],
            o=world.observations["own"],
        )
        response = client.get(path)
        if response.status_code != 200:
            assert response.status_code in (403, 404), (role, path)
            continue
        reached.append(template)
        if has_spo2(response, world):
            shown.append(template)
    if role == "gp":
        # The control: the GP reaches every path but the centre's, and each names SpO2.
        assert shown == reached == [p for p in SPO2_PATHS if p not in CENTRE_ONLY]
    else:
        assert shown == [], role
    if role == "nurse":
        # She reaches all the GP does and the centre's lists, but not the hidden finding and
        # reading themselves (404, as any she may not see) nor the whole record (the GP's and
        # the officer's).
        hidden_whole = {
            "/api/alerts/{a}",
            "/fhir/Observation/{o}",
            *(p for p in SPO2_PATHS if "$everything" in p),
        }
        assert reached == [p for p in SPO2_PATHS if p not in hidden_whole]
    if role == "privacy":
        assert reached == [p for p in SPO2_PATHS if "$everything" in p]
