"""Staff change their own password; a password an admin set is changed at its owner's next login.

An admin could reset a GP's password and sign in as them with no second step, and staff could
not change their own. Now a reset (or a new account) forces a change before anything else is
open, the change ends every other session of the account, and each step is audited.
"""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient

from dashboard.accounts import MIN_PASSWORD_LENGTH
from tests.dashboard.conftest import World
from tests.dashboard.support import PASSWORD, login
from tests.dashboard.test_security_bruteforce import _post_login

NEW = "a-password-of-my-own"
RESET = "set-by-the-admin-1"


def _change(client: TestClient, csrf: str, current: str, new: str, again: str | None = None):
    return client.post(
        "/password",
        data={
            "csrf_token": csrf,
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )


def _csrf_of(page_text: str) -> str:
    return page_text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def _audit(db: psycopg.Connection, action: str) -> list[tuple]:
    return db.execute(
        "SELECT actor_username, object_id, details FROM audit_log WHERE action = %s ORDER BY id",
        (action,),
    ).fetchall()


def test_staff_change_their_own_password_and_their_other_sessions_end(
    app, world: World, db: psycopg.Connection
) -> None:
    with TestClient(app, follow_redirects=False) as ward_pc:
        elsewhere = TestClient(app, follow_redirects=False)  # the same nurse, another PC
        login(elsewhere, "nurse.greco")
        csrf = login(ward_pc, "nurse.greco")
        page = ward_pc.get("/triage")
        assert 'href="/password"' in page.text  # in the user menu of every page
        checks = app.state.password_checks
        before = checks.verifications
        refused = {
            "wrong current": _change(ward_pc, csrf, "not-my-password", NEW),
            "two different": _change(ward_pc, csrf, PASSWORD, NEW, NEW + "x"),
            "too short": _change(ward_pc, csrf, PASSWORD, "short"),
            "unchanged": _change(ward_pc, csrf, PASSWORD, PASSWORD),
        }
        argon2_runs = checks.verifications - before
        changed = _change(ward_pc, csrf, PASSWORD, NEW)
        still_here = ward_pc.get("/api/me")
        other_pc = elsewhere.get("/api/me")
        old_password = _post_login(TestClient(app, follow_redirects=False), "nurse.greco", PASSWORD)
        new_password = _post_login(TestClient(app, follow_redirects=False), "nurse.greco", NEW)
    statuses = {k: r.status_code for k, r in refused.items()}
    print(
        f"own password: refused {statuses}; changed {changed.status_code}; this PC "
        f"{still_here.status_code}, the other {other_pc.status_code}; old password "
        f"{old_password.status_code}, new {new_password.status_code}"
    )
    assert statuses == {
        "wrong current": 403,
        "two different": 422,
        "too short": 422,
        "unchanged": 422,
    }
    assert "current password is wrong" in refused["wrong current"].text
    assert f"at least {MIN_PASSWORD_LENGTH} characters" in refused["too short"].text
    assert argon2_runs == 1  # only the wrong current password was checked
    assert changed.status_code == 200 and "Password changed" in changed.text
    assert still_here.status_code == 200 and other_pc.status_code == 401
    assert old_password.status_code == 401 and new_password.status_code == 303
    nurse = world.staff["nurse"]
    assert _audit(db, "password.change_failed") == [
        ("nurse.greco", str(nurse), {"reason": "invalid"})
    ]
    assert _audit(db, "password.change") == [("nurse.greco", str(nurse), {})]


def test_an_admins_reset_forces_a_change_at_the_next_login(
    app, world: World, db: psycopg.Connection
) -> None:
    gp = world.staff["gp"]
    with TestClient(app, follow_redirects=False) as admin:
        gps_pc = TestClient(app, follow_redirects=False)
        login(gps_pc, "dr.rossi")
        csrf = login(admin, "admin")
        reset = admin.post(f"/admin/staff/{gp}", data={"csrf_token": csrf, "password": RESET})
        gp_session_after_reset = gps_pc.get("/api/me").status_code
        signed_in = _post_login(gps_pc, "dr.rossi", RESET)
        # Signed in, but only the change-password page and logout are open.
        blocked = {
            path: gps_pc.get(path).status_code
            for path in ("/", "/patients", f"/patients/{world.patients['own']}", "/settings")
        }
        blocked_to = gps_pc.get("/patients").headers["location"]
        api = {path: gps_pc.get(path).status_code for path in ("/api/me", "/api/patients")}
        fhir = gps_pc.get(f"/fhir/Patient/{world.patients['own']}").status_code
        form = gps_pc.get("/password")
        csrf_gp = _csrf_of(form.text)
        same_again = _change(gps_pc, csrf_gp, RESET, RESET)
        changed = _change(gps_pc, csrf_gp, RESET, NEW)
        after = gps_pc.get("/patients").status_code
    print(
        f"admin reset: GP's session then {gp_session_after_reset}; login -> "
        f"{signed_in.headers.get('location')}; pages {blocked} (to {blocked_to}), API {api}, "
        f"FHIR {fhir}; after the change /patients {after}"
    )
    assert reset.status_code == 303
    assert gp_session_after_reset == 401
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/password"
    assert set(blocked.values()) == {303} and blocked_to == "/password"
    assert api == {"/api/me": 403, "/api/patients": 403} and fhir == 403
    assert form.status_code == 200 and "set by an administrator" in form.text
    assert same_again.status_code == 422
    assert changed.status_code == 200 and after == 200
    assert db.execute("SELECT must_change_password FROM staff WHERE id = %s", (gp,)).fetchone() == (
        False,
    )
    resets = _audit(db, "staff.update")
    assert resets == [("admin", str(gp), {"password_reset": True, "must_change_password": True})]
    assert _audit(db, "password.change") == [("dr.rossi", str(gp), {})]


def test_a_signed_in_user_who_must_change_can_still_sign_out(
    app, world: World, db: psycopg.Connection
) -> None:
    db.execute("UPDATE staff SET must_change_password = true WHERE username = 'dr.rossi'")
    with TestClient(app, follow_redirects=False) as client:
        assert _post_login(client, "dr.rossi", PASSWORD).headers["location"] == "/password"
        csrf = _csrf_of(client.get("/password").text)
        out = client.post("/logout", data={"csrf_token": csrf})
        assert out.status_code == 303 and client.get("/password").status_code == 303
    assert db.execute("SELECT count(*) FROM dashboard_sessions").fetchone()[0] == 0


def test_an_admin_resetting_their_own_password_is_not_forced_to_change_it(
    app, world: World, db: psycopg.Connection
) -> None:
    with TestClient(app, follow_redirects=False) as admin:
        csrf = login(admin, "admin")
        own = admin.patch(
            f"/api/admin/staff/{world.staff['admin']}",
            headers={"x-csrf-token": csrf},
            json={"password": RESET},
        )
    assert own.status_code == 200
    assert db.execute(
        "SELECT must_change_password FROM staff WHERE username = 'admin'"
    ).fetchone() == (False,)


def test_a_new_account_changes_the_admins_first_password(
    app, world: World, db: psycopg.Connection
) -> None:
    with TestClient(app, follow_redirects=False) as admin:
        csrf = login(admin, "admin")
        created = admin.post(
            "/api/admin/staff",
            headers={"x-csrf-token": csrf},
            json={
                "username": "dr.neri",
                "display_name": "Dr Neri",
                "role": "gp",
                "password": RESET,
            },
        )
        first = _post_login(TestClient(app, follow_redirects=False), "dr.neri", RESET)
    assert created.status_code == 201
    assert first.status_code == 303 and first.headers["location"] == "/password"


def test_an_admin_who_must_change_reads_no_status_until_changed(
    app, world: World, db: psycopg.Connection
) -> None:
    """/status checks its caller itself (a session or the probe's token): the forced change
    holds there too."""
    db.execute("UPDATE staff SET must_change_password = true WHERE username = 'admin'")
    with TestClient(app, follow_redirects=False) as client:
        assert _post_login(client, "admin", PASSWORD).headers["location"] == "/password"
        page = client.get("/status")
        probe = client.get("/status", headers={"accept": "application/json"})
    assert page.status_code == 303 and page.headers["location"] == "/password"
    assert probe.status_code == 403
