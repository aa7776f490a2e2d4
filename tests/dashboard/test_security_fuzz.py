"""schemathesis against the dashboard's OpenAPI schema, signed in as a nurse and as an admin.

Cases come from schemathesis (positive and negative data) and go through our own TestClient, so
the app's lifespan, pool and session cookie are the test's; schemathesis' ``not_a_server_error``
judges each response. Half of the cases use ids that exist and that the role may see, so the
handlers run past their 404s.
"""

from __future__ import annotations

import time
from collections import Counter

import psycopg
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from dashboard.authz import PERMISSIONS
from tests.dashboard.conftest import World, _password_hash
from tests.dashboard.support import login
from tests.dashboard.test_security_routes import endpoints

MAX_EXAMPLES = 25  # per operation and generation mode: about 30 s per role
# The schema's operations that are not fuzzed, and why.
EXCLUDED = {
    # An endless Server-Sent Events stream: a request never completes. test_authz checks who
    # may open it and test_browser the live updates.
    "/events": "SSE stream",
}
ROLES = {"nurse": "nurse.greco", "admin": "admin"}


def _real_ids(world: World, role: str) -> dict[str, list[int]]:
    """Ids the role can reach, so generated requests get past ``404 not found``."""
    if role == "nurse":
        return {
            "patient_id": [world.patients["own"], world.patients["other_gp"]],
            "episode_id": [world.episodes["own"], world.episodes["other_gp"]],
            "alert_id": [world.alerts["own"], world.alerts["other_gp"]],
            "staff_id": [world.staff["nurse"]],
        }
    return {
        "patient_id": list(world.patients.values()),
        "episode_id": [],
        "alert_id": [],
        "staff_id": list(world.staff.values()),
    }


def _strategy(operation, mode: GenerationMode, ids: dict[str, list[int]]) -> st.SearchStrategy:
    generated = operation.as_strategy(generation_mode=mode)
    params = [p.name for p in operation.path_parameters]
    fixed = {name: ids[name] for name in params if ids.get(name)}
    if not fixed:
        return generated
    known = st.fixed_dictionaries({name: st.sampled_from(v) for name, v in fixed.items()})
    return st.one_of(
        generated,
        known.flatmap(lambda p: operation.as_strategy(generation_mode=mode, path_parameters=p)),
    )


@pytest.mark.parametrize("role", list(ROLES))
def test_schemathesis_finds_no_server_error(
    app, world: World, db: psycopg.Connection, role: str
) -> None:
    # Server exceptions as the 500 a browser would get, for schemathesis to judge.
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as client:
        statuses, permitted, relogins, seconds, operations = _fuzz(app, client, world, db, role)
    total = sum(statuses.values())
    errors = sum(n for s, n in statuses.items() if s >= 500)
    print(
        f"schemathesis ({role}): {operations} operations, {total} requests in {seconds:.0f} s, "
        f"statuses {dict(sorted(statuses.items()))}, {relogins} re-logins, "
        f"{errors} server errors; excluded: {EXCLUDED}"
    )
    assert errors == 0
    # Not all refusals: the session and CSRF header did get requests through to the handlers
    # of the routes the role may use (an admin is refused every clinical one, by design).
    assert sum(n for s, n in permitted.items() if s < 300) > sum(permitted.values()) // 20


def _fuzz(
    app, client: TestClient, world: World, db: psycopg.Connection, role: str
) -> tuple[Counter, Counter, int, float, int]:
    """Statuses of all requests and of those to routes the role holds the permission for."""
    state = {"csrf": login(client, ROLES[role]), "relogins": 0}
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    fuzzed = [op for op in operations if op.path not in EXCLUDED]
    assert len(fuzzed) >= 25 and len(operations) - len(fuzzed) == len(EXCLUDED)
    ids = _real_ids(world, role)
    statuses: Counter[int] = Counter()
    permitted: Counter[int] = Counter()
    allowed = {
        e.key for e in endpoints(app) if e.permission is None or e.permission in PERMISSIONS[role]
    }
    started = time.monotonic()

    def send(case):
        kwargs = case.as_transport_kwargs(
            base_url="http://testserver", headers={"x-csrf-token": state["csrf"]}
        )
        kwargs.pop("cookies", None)  # the client's jar holds the session cookie
        if isinstance(kwargs.get("data"), str | bytes):
            kwargs["content"] = kwargs.pop("data")  # a raw (negative) body
        return client.request(**kwargs)

    for operation in fuzzed:
        inputs = [*operation.path_parameters, *operation.query, *operation.body]
        # Without parameters or a body there is no invalid request to make.
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if inputs else [])
        for mode in modes:

            @given(case=_strategy(operation, mode, ids))
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,  # the same cases on every run: CI does not flake
                suppress_health_check=list(HealthCheck),
            )
            def run(case) -> None:
                response = send(case)
                if response.status_code == 401:
                    # A fuzzed PATCH of the admin's own account (new password or role) ends
                    # their sessions, as it must: restore the account, sign in again and
                    # repeat the request.
                    db.execute(
                        "UPDATE staff SET password_hash = %s, role = %s, active = true "
                        "WHERE username = %s",
                        (_password_hash(), role, ROLES[role]),
                    )
                    state["csrf"] = login(client, ROLES[role])
                    state["relogins"] += 1
                    response = send(case)
                statuses[response.status_code] += 1
                if (case.method.upper(), case.path) in allowed:
                    permitted[response.status_code] += 1
                case.validate_response(response, checks=[not_a_server_error])

            run()
    return statuses, permitted, state["relogins"], time.monotonic() - started, len(fuzzed)
