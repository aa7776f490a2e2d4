"""Names and notes refuse Unicode's bidirectional controls (issue 15).

A right-to-left override (U+202E) stored in a name or a note shows a colleague other text than
the characters stored: "Dr \u202eissoR" reads "Dr Rossi" reversed, a note can hide a digit's
order. Every free-text field staff fill in, on the JSON API and on the HTML forms, must refuse
them with a 422 that names the character, and store nothing.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from dashboard.models import BIDI_CONTROLS
from tests.dashboard.conftest import World
from tests.dashboard.support import login
from tests.dashboard.test_security_inputs import NEW_PATIENT, NEW_STAFF, _fill, _state

RLO = "\u202e"
# (role, method, url, request arguments); placeholders as in test_security_inputs.
FIELDS = {
    "staff display name (API)": (
        "admin",
        "POST",
        "/api/admin/staff",
        {"json": {**NEW_STAFF, "display_name": f"Dr {RLO}issoR"}},
    ),
    "staff display name (form)": (
        "admin",
        "POST",
        "/admin/staff",
        {"data": {**NEW_STAFF, "display_name": f"Dr {RLO}issoR"}},
    ),
    "patient given name (API)": (
        "admin",
        "POST",
        "/api/admin/patients",
        {"json": {**NEW_PATIENT, "given_name": f"{RLO}annaiG"}},
    ),
    "patient family name (form)": (
        "admin",
        "POST",
        "/admin/patients",
        {"data": {**NEW_PATIENT, "family_name": f"{RLO}ittoreM"}},
    ),
    "discharge reason (form)": (
        "admin",
        "POST",
        "/admin/patients/{patient}/discharge",
        {"data": {"discharge_reason": f"{RLO}deriuc", "discharged_on": "2026-01-01"}},
    ),
    "device serial number (kit form)": (
        "admin",
        "POST",
        "/admin/patients/{patient}/kit",
        {"data": {"action": "assign_device", "serial_number": f"SN{RLO}21"}},
    ),
    "threshold override reason (API)": (
        "admin",
        "POST",
        "/api/admin/patients",
        {"json": {**NEW_PATIENT, "overrides": {"reason": f"baseline {RLO}88"}}},
    ),
    "device manufacturer (API)": (
        "admin",
        "POST",
        "/api/admin/gateways",
        {
            "json": {
                "code": "GW-9",
                "devices": [
                    {"address": "AA:09", "kind": "thermometer", "manufacturer": f"{RLO}ACME"}
                ],
            }
        },
    ),
    "acknowledgement note (API)": (
        "nurse",
        "POST",
        "/api/episodes/{episode}/acknowledge",
        {"json": {"note": f"called, SpO2 {RLO}88"}},
    ),
    "call outcome note (API)": (
        "nurse",
        "POST",
        "/api/episodes/{episode}/outcome",
        {"json": {"outcome": "reached", "note": f"{RLO}fine"}},
    ),
    "call outcome note (form)": (
        "nurse",
        "POST",
        "/episodes/{episode}/outcome",
        {"data": {"outcome": "reached", "note": f"{RLO}fine"}},
    ),
    "escalation note (API)": (
        "nurse",
        "POST",
        "/api/episodes/{episode}/escalate",
        {"json": {"note": f"{RLO}urgent"}},
    ),
    "episode resolution note (form)": (
        "nurse",
        "POST",
        "/episodes/{episode}/resolve",
        {"data": {"note": f"{RLO}resolved"}},
    ),
    "finding resolution note (API)": (
        "nurse",
        "POST",
        "/api/alerts/{alert}/resolve",
        {"json": {"note": f"{RLO}ok"}},
    ),
    "finding resolution note (form)": (
        "nurse",
        "POST",
        "/alerts/{alert}/resolve",
        {"data": {"note": f"{RLO}ok"}},
    ),
}


def _send(client: TestClient, world: World, csrf: str, method: str, url: str, kwargs: dict):
    url = url.replace("{alert}", str(world.alerts["own"]))
    url = url.replace("{episode}", str(world.episodes["own"]))
    url = url.replace("{patient}", str(world.patients["own"]))
    kwargs = _fill(kwargs, {"{gp}": world.staff["gp"]})
    if "data" in kwargs:
        kwargs = {**kwargs, "data": {**kwargs["data"], "csrf_token": csrf}}
    return client.request(method, url, headers={"x-csrf-token": csrf}, **kwargs)


@pytest.mark.parametrize("role", ["admin", "nurse"])
def test_every_free_text_field_refuses_a_right_to_left_override(
    client: TestClient, world: World, db, role: str
) -> None:
    csrf = login(client, {"nurse": "nurse.greco", "admin": "admin"}[role])
    failures = []
    for name, (who, method, url, kwargs) in FIELDS.items():
        if who != role:
            continue
        before = _state(db)
        response = _send(client, world, csrf, method, url, kwargs)
        said = "bidirectional control character U+202E (RIGHT-TO-LEFT OVERRIDE)"
        if response.status_code != 422 or said not in response.text or _state(db) != before:
            failures.append((name, response.status_code, response.text[:300]))
    assert failures == []


def test_a_form_says_which_field_to_correct_on_a_page(client: TestClient, world: World) -> None:
    csrf = login(client, "nurse.greco")

    response = _send(client, world, csrf, *FIELDS["episode resolution note (form)"][1:])

    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "note: text must not contain the bidirectional control character U+202E" in (
        response.text
    )
    assert "What you entered cannot be saved" in response.text


@pytest.mark.parametrize("control", sorted(BIDI_CONTROLS), ids=lambda c: f"U+{ord(c):04X}")
def test_each_bidirectional_control_is_refused(
    client: TestClient, world: World, db, control: str
) -> None:
    csrf = login(client, "nurse.greco")
    before = _state(db)

    response = client.post(
        f"/api/episodes/{world.episodes['own']}/acknowledge",
        headers={"x-csrf-token": csrf},
        json={"note": f"called{control}"},
    )

    assert response.status_code == 422 and f"U+{ord(control):04X}" in response.text
    assert _state(db) == before


def test_right_to_left_scripts_and_passwords_are_left_alone(
    client: TestClient, world: World
) -> None:
    # Arabic and Hebrew carry their own direction; a password is compared, never shown.
    csrf = login(client, "admin")

    created = client.post(
        "/api/admin/staff",
        headers={"x-csrf-token": csrf},
        json={
            **NEW_STAFF,
            "display_name": "د. سمير حداد · ד״ר כהן",
            "password": "pass\u200fword-1",
        },
    )

    assert created.status_code == 201, created.text
    assert created.json()["display_name"] == "د. سمير حداد · ד״ר כהן"
