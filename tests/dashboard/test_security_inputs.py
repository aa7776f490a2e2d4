"""Regressions: inputs that reached PostgreSQL (or int()) unchecked and answered 500.

Found by schemathesis (quiet hours with a UTC offset, an unknown care team) and by probing what
it does not generate often (NUL characters, impossible dates, non-ASCII digits), on the JSON API
and on the HTML forms that bypass its models. Each must now be refused with a 4xx and change
nothing.
"""

from __future__ import annotations

import re

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.dashboard.conftest import World
from tests.dashboard.support import login

NEW_STAFF = {
    "username": "nurse.new",
    "display_name": "N",
    "role": "nurse",
    "password": "long-pass-1",
}
NEW_PATIENT = {
    "code": "P-0100",
    "given_name": "Gianna",
    "family_name": "Moretti",
    "gp_id": "{gp}",
    "protocol": "covid19_home_oximetry",
}
# (role, method, url, request arguments); "{gp}", "{episode}" and "{alert}" are filled in, the
# CSRF token is sent in the header and, for forms, in the form.
PROBES = {
    "quiet hours with an offset (API)": (
        "nurse",
        "PUT",
        "/api/me/settings",
        {"json": {"quiet_hours_start": "10:00+20:00"}},
    ),
    "quiet hours with an offset (form)": (
        "nurse",
        "POST",
        "/settings",
        {"data": {"quiet_hours_end": "07:15-16:38"}},
    ),
    "unknown care team for new staff": (
        "admin",
        "POST",
        "/api/admin/staff",
        {"json": {**NEW_STAFF, "care_team_id": 999}},
    ),
    "care team id beyond bigint": (
        "admin",
        "POST",
        "/api/admin/staff",
        {"json": {**NEW_STAFF, "care_team_id": 2**70}},
    ),
    "unknown care team (form)": (
        "admin",
        "POST",
        "/admin/staff",
        {"data": {**NEW_STAFF, "care_team_id": "999"}},
    ),
    "superscript digit as care team (form)": (
        "admin",
        "POST",
        "/admin/staff",
        {"data": {**NEW_STAFF, "care_team_id": "²"}},
    ),
    "NUL in a staff name": (
        "admin",
        "POST",
        "/api/admin/staff",
        {"json": {**NEW_STAFF, "display_name": "a\x00b"}},
    ),
    "NUL in a staff name (form)": (
        "admin",
        "POST",
        "/admin/staff",
        {"data": {**NEW_STAFF, "display_name": "a\x00b"}},
    ),
    "unknown care team for a patient": (
        "admin",
        "POST",
        "/api/admin/patients",
        {"json": {**NEW_PATIENT, "care_team_id": 999}},
    ),
    "impossible birth date": (
        "admin",
        "POST",
        "/api/admin/patients",
        {"json": {**NEW_PATIENT, "birth_date": "2024-13-45"}},
    ),
    "birth date in Arabic-Indic digits": (
        "admin",
        "POST",
        "/api/admin/patients",
        {"json": {**NEW_PATIENT, "birth_date": "٢٠٢٤-٠١-٠١"}},
    ),
    "impossible birth date (form)": (
        "admin",
        "POST",
        "/admin/patients",
        {"data": {**NEW_PATIENT, "birth_date": "2024-02-31"}},
    ),
    "NUL in a patient name": (
        "admin",
        "POST",
        "/api/admin/patients",
        {"json": {**NEW_PATIENT, "given_name": "a\x00"}},
    ),
    "NUL in an override key": (
        "admin",
        "POST",
        "/api/admin/patients",
        {"json": {**NEW_PATIENT, "overrides": {"\x00": 1}}},
    ),
    "NUL in a device address": (
        "admin",
        "POST",
        "/api/admin/gateways",
        {"json": {"code": "GW-9", "devices": [{"address": "a\x00", "kind": "thermometer"}]}},
    ),
    "NUL in an episode note (API)": (
        "nurse",
        "POST",
        "/api/episodes/{episode}/acknowledge",
        {"json": {"note": "x\x00y"}},
    ),
    "NUL in an episode note (form)": (
        "nurse",
        "POST",
        "/episodes/{episode}/resolve",
        {"data": {"note": "x\x00y"}},
    ),
    "NUL in a finding note (API)": (
        "nurse",
        "POST",
        "/api/alerts/{alert}/resolve",
        {"json": {"note": "x\x00y"}},
    ),
    "NUL in a finding note (form)": (
        "nurse",
        "POST",
        "/alerts/{alert}/resolve",
        {"data": {"note": "x\x00y"}},
    ),
    "superscript digit as a FHIR patient": ("nurse", "GET", "/fhir/Observation?patient=²", {}),
    "NUL in the login name": (
        None,
        "POST",
        "/login",
        {"data": {"username": "dr\x00rossi", "password": "x"}},
    ),
}
# Twilio's delivery reports are refused unless signed: their bad input is probed signed, in
# test_sms_status_callback.py.


def _fill(value, values: dict[str, object]):
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, str) and value in values:
        return values[value] if isinstance(values[value], int) else str(values[value])
    return value


def _state(db: psycopg.Connection) -> tuple:
    return tuple(
        db.execute(sql).fetchall()
        for sql in (
            "SELECT id, display_name, quiet_hours_start, quiet_hours_end FROM staff ORDER BY id",
            "SELECT id, code FROM patients ORDER BY id",
            "SELECT id, code FROM gateways ORDER BY id",
            "SELECT id, state, resolution_note FROM alerts ORDER BY id",
            "SELECT id, state, resolution_note FROM episodes ORDER BY id",
            "SELECT id, status FROM notifications ORDER BY id",
        )
    )


@pytest.mark.parametrize("role", ["nurse", "admin", None])
def test_bad_input_is_refused_not_a_server_error(
    app, world: World, db: psycopg.Connection, role: str | None
) -> None:
    probes = {name: p for name, p in PROBES.items() if p[0] == role}
    failures = []
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as client:
        csrf = login(client, {"nurse": "nurse.greco", "admin": "admin"}[role]) if role else ""
        for name, (_, method, url, kwargs) in probes.items():
            if url == "/login":
                page = client.get("/login").text
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
            values = {"{gp}": world.staff["gp"], "{alert}": world.alerts["own"]}
            url = url.replace("{alert}", str(world.alerts["own"]))
            url = url.replace("{episode}", str(world.episodes["own"]))
            kwargs = _fill(kwargs, values)
            if "data" in kwargs:
                kwargs["data"] = {**kwargs["data"], "csrf_token": csrf}
            before = _state(db)
            response = client.request(method, url, headers={"x-csrf-token": csrf}, **kwargs)
            changed = _state(db) != before
            print(f"input {name!r}: {response.status_code}{', changed state' if changed else ''}")
            if not 400 <= response.status_code < 500 or "Traceback" in response.text or changed:
                failures.append((name, response.status_code, response.text[:200]))
    assert probes and failures == []
