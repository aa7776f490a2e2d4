"""Admin API: users and roles, enrolment with validated overrides, gateway registration; SMS."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from dashboard.bands import protocols
from tests.dashboard.conftest import World
from tests.dashboard.support import login


def test_admin_creates_users_changes_roles_and_ends_their_sessions(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "admin")
    created = client.post(
        "/api/admin/staff",
        headers={"x-csrf-token": csrf},
        json={
            "username": "dr.neri",
            "display_name": "Dr Neri",
            "role": "gp",
            "password": "another-long-pass",
        },
    )
    assert created.status_code == 201 and created.json()["role"] == "gp"
    changed = client.patch(
        f"/api/admin/staff/{created.json()['id']}",
        headers={"x-csrf-token": csrf},
        json={"active": False},
    )
    assert changed.json()["active"] is False
    own = client.patch(
        f"/api/admin/staff/{world.staff['admin']}",
        headers={"x-csrf-token": csrf},
        json={"role": "gp"},
    )
    assert own.status_code == 422
    assert (
        db.execute("SELECT count(*) FROM audit_log WHERE action LIKE 'staff.%'").fetchone()[0] == 2
    )


def test_enrolment_validates_overrides_with_the_protocol(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "admin")
    body = {
        "code": "P-0100",
        "given_name": "Rosa",
        "family_name": "Gallo",
        "gp_id": world.staff["gp"],
        "protocol": "copd",
    }
    bad = client.post(
        "/api/admin/patients",
        headers={"x-csrf-token": csrf},
        json=body | {"overrides": {"rules": {"no_such_rule": {}}}},
    )
    assert bad.status_code == 422 and "no_such_rule" in bad.text
    rule = next(r for r in protocols()["copd"].rules if r.kind == "threshold")
    band = rule.bands[0]
    ok = client.post(
        "/api/admin/patients",
        headers={"x-csrf-token": csrf},
        json=body
        | {
            "overrides": {"rules": {rule.key: {"bands": [band.model_dump()], "reason": "baseline"}}}
        },
    )
    assert ok.status_code == 201, ok.text
    gateway = client.post(
        "/api/admin/gateways",
        headers={"x-csrf-token": csrf},
        json={
            "code": "GW-100",
            "patient_id": ok.json()["id"],
            "devices": [{"address": "AA:BB", "kind": "pulse_oximeter"}],
        },
    )
    assert gateway.status_code == 201 and gateway.json()["devices"] == 1
    # The admin enrolled the patient but still reads no clinical data.
    assert client.get(f"/api/patients/{ok.json()['id']}").status_code == 403
