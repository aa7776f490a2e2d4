"""IDOR: every route with an id parameter, called with ids the caller must not reach.

A GP tries the other GP's patients (and their episodes, findings and account), a nurse the
other service centre's, every role of the second organisation the first's (and the first's
admin and privacy officer the second's); every role tries ids that do not exist. Each answer
must be 403 or 404, name no hidden patient, change nothing and leave no audit row about a
hidden patient.
"""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from tests.dashboard.conftest import World
from tests.dashboard.support import STAFF, login
from tests.dashboard.test_security_routes import endpoints

# Every role of both organisations: the second's staff try the first's records.
USERS = STAFF
# The world's records each role must not reach: conftest's "own" patient is dr.rossi's in
# centre A, "other_gp" dr.bianchi's in centre A, "far" dr.bianchi's in centre B.
# "org_b" is the second organisation's patient (dr.verdi's), "org_b_admin" its admin.
_ORG_A = ["own", "other_gp", "far"]
_EVERYONE = [*_ORG_A, "org_b"]
FOREIGN = {
    "gp": {
        "patient": ["other_gp", "far", "org_b"],
        "episode": ["other_gp", "far", "org_b"],
        "observation": ["other_gp", "far", "org_b"],
        "alert": ["other_gp", "far", "org_b"],
        "staff": ["gp2"],
    },
    "nurse": {
        "patient": ["far", "org_b"],
        "episode": ["far", "org_b"],
        "observation": ["far", "org_b"],
        "alert": ["far", "org_b"],
        "staff": ["nurse_b"],
    },
    # Admins read no clinical data; they manage their organisation's accounts.
    "admin": {
        "patient": _EVERYONE,
        "episode": _EVERYONE,
        "observation": _EVERYONE,
        "alert": _EVERYONE,
        "staff": ["org_b_gp", "org_b_admin"],
    },
    # The privacy officer reads no clinical data; the access report and the record export
    # of their organisation's patients only.
    "privacy": {
        "patient": ["org_b"],
        "episode": _EVERYONE,
        "observation": _EVERYONE,
        "alert": _EVERYONE,
        "staff": ["gp"],
    },
    "org_b_gp": {
        "patient": _ORG_A,
        "episode": _ORG_A,
        "observation": _ORG_A,
        "alert": _ORG_A,
        "staff": ["gp"],
    },
    "org_b_nurse": {
        "patient": _ORG_A,
        "episode": _ORG_A,
        "observation": _ORG_A,
        "alert": _ORG_A,
        "staff": ["nurse"],
    },
    "org_b_privacy": {
        "patient": _ORG_A,
        "episode": _EVERYONE,
        "observation": _EVERYONE,
        "alert": _EVERYONE,
        "staff": ["gp"],
    },
    "org_b_admin": {
        "patient": _EVERYONE,
        "episode": _EVERYONE,
        "observation": _EVERYONE,
        "alert": _EVERYONE,
        "staff": ["gp", "admin"],
    },
}
# Enrolment (dashboard/routes/enrolment.py) is the admin's over their organisation's patients:
# the GP, the phone, the kit; no clinical value. Another organisation's are foreign.
ENROL_FOREIGN = {"admin": ["org_b"], "org_b_admin": _ORG_A}
# Likewise recording a patient's request to hide data (oscuramento): no clinical value.
ADMIN_SCOPED = {"patient.enrol", "record.restrict"}
OWN = {"patient": "own", "episode": "own", "alert": "own", "staff": None, "observation": "own"}
# Whose names may appear in an answer to this role (their own patients').
VISIBLE = {
    "gp": {"own"},
    "nurse": {"own", "other_gp"},
    "privacy": set(_ORG_A),
    "org_b_gp": {"org_b"},
    "org_b_nurse": {"org_b"},
    "org_b_privacy": {"org_b"},
}
NONEXISTENT = [10**9, 2**62]  # the largest id the routes accept
PATIENT_TEXT = {
    "own": ("Colombo", "P-0001"),
    "other_gp": ("Ferrari", "P-0002"),
    "far": ("Ricci", "P-0003"),
    "org_b": ("Marino", "P-0004"),
}


def _record_id(world: World, kind: str, key: str) -> int | str:
    records: dict[str, dict[str, int] | dict[str, str]] = {
        "patient": world.patients,
        "episode": world.episodes,
        "alert": world.alerts,
        "staff": world.staff,
        "observation": world.observations,
    }
    return records[kind][key]


def _snapshot(db: psycopg.Connection) -> tuple:
    return (
        db.execute(
            "SELECT id, state, claimed_by, outcome, updated_at FROM alerts ORDER BY id"
        ).fetchall(),
        db.execute("SELECT count(*) FROM alert_events").fetchone(),
        db.execute(
            "SELECT id, state, claimed_by, outcome, updated_at FROM episodes ORDER BY id"
        ).fetchall(),
        db.execute("SELECT count(*) FROM episode_events").fetchone(),
        db.execute("SELECT id, role, active, password_hash FROM staff ORDER BY id").fetchall(),
        db.execute("SELECT count(*) FROM notifications").fetchone(),
    )


def _probe(client: TestClient, endpoint, ids: dict[str, int], csrf: str) -> list:
    """Each URL variant of ``endpoint`` with ``ids``; returns the responses."""
    return [
        client.request(
            endpoint.method,
            url,
            headers={"x-csrf-token": csrf},
            json=endpoint.json_body() if endpoint.state_changing else None,
        )
        for url in endpoint.urls(ids)
    ]


def _param_ids(endpoint, world: World, role: str, target: tuple[str, int] | None) -> dict:
    """Every id parameter at the caller's own record, except ``target`` (name, id)."""
    ids = {}
    for name, kind in endpoint.id_params().items():
        own = OWN[kind]
        ids[name] = _record_id(world, kind, own) if own else world.staff[role]
    if target:
        ids[target[0]] = target[1]
    return ids


@pytest.mark.parametrize("role", list(USERS))
def test_foreign_and_nonexistent_ids_are_refused_without_leaks(
    app, client: TestClient, world: World, db: psycopg.Connection, role: str
) -> None:
    csrf = login(client, USERS[role])
    visible = VISIBLE.get(role, set())
    hidden = [t for k, texts in PATIENT_TEXT.items() if k not in visible for t in texts]
    hidden_patients = [world.patients[k] for k in PATIENT_TEXT if k not in visible]
    before = _snapshot(db)
    routes = [e for e in endpoints(app) if e.id_params()]
    probes, failures, foreign_ids = 0, [], set()
    for endpoint in routes:
        for name, kind in endpoint.id_params().items():
            foreign = FOREIGN[role].get(kind, [])
            if role in ENROL_FOREIGN and endpoint.permission in ADMIN_SCOPED:
                foreign = ENROL_FOREIGN[role] if kind == "patient" else []
            targets = [(_record_id(world, kind, k), "foreign") for k in foreign]
            targets += [(n, "nonexistent") for n in NONEXISTENT]
            for record, why in targets:
                if why == "foreign":
                    foreign_ids.add((kind, record))
                ids = _param_ids(endpoint, world, role, (name, record))
                for response in _probe(client, endpoint, ids, csrf):
                    probes += 1
                    leaked = [t for t in hidden if t in response.text]
                    if response.status_code not in (403, 404) or leaked:
                        failures.append(
                            (endpoint.key, name, why, record, response.status_code, leaked)
                        )
    after = _snapshot(db)
    audited = db.execute(
        "SELECT count(*) FROM audit_log WHERE actor_id = %s AND patient_id = ANY(%s)",
        (world.staff[role], hidden_patients),
    ).fetchone()[0]
    print(
        f"IDOR ({role}): {len(routes)} routes x {len(foreign_ids)} foreign + "
        f"{len(NONEXISTENT)} nonexistent ids, {probes} requests: {len(failures)} not 403/404 "
        f"or leaking, {audited} audit rows about hidden patients"
    )
    assert failures == []
    assert after == before, "a refused request changed an episode, an account or the SMS queue"
    assert audited == 0
    assert len(routes) >= 14 and probes >= 40


def test_own_ids_do_reach_the_data(client: TestClient, world: World) -> None:
    """The control: with the GP's own ids the same routes answer, so the 404s above are scope."""
    login(client, "dr.rossi")
    own, episode = world.patients["own"], world.episodes["own"]
    for path in (f"/api/patients/{own}", f"/fhir/Patient/{own}", f"/api/episodes/{episode}"):
        response = client.get(path)
        assert response.status_code == 200 and "Colombo" in response.text, path
    finding = client.get(f"/api/alerts/{world.alerts['own']}")
    assert finding.status_code == 200 and finding.json()["patient_id"] == own
