"""Recording a patient's opt-out of SMS reminders: a nurse in Chromium, an admin by the API;
who and when are kept, the change is audited, and the engine then writes no reminder."""

from __future__ import annotations

import psycopg
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, expect

from tests.dashboard.conftest import World
from tests.dashboard.support import browser_login, login


def opt_out(db: psycopg.Connection, patient_id: int) -> tuple:
    return db.execute(
        "SELECT reminders_opt_out_at IS NOT NULL, reminders_opt_out_by FROM patients WHERE id = %s",
        (patient_id,),
    ).fetchone()


def audited(db: psycopg.Connection, patient_id: int) -> list[str]:
    rows = db.execute(
        "SELECT action FROM audit_log WHERE patient_id = %s AND action LIKE 'patient.reminders.%%' "
        "ORDER BY id",
        (patient_id,),
    ).fetchall()
    return [r[0] for r in rows]


def test_a_nurse_records_the_opt_out_on_the_patient_page_and_turns_it_back_on(
    browser: Browser,
    server: str,
    world: World,
    db: psycopg.Connection,
) -> None:
    patient = world.patients["own"]
    page = browser_login(browser, server, "nurse.greco")
    page.goto(f"{server}/patients/{patient}")
    reminders = page.locator("#reminders")
    expect(reminders).to_contain_text("SMS reminders to the patient: on")

    page.click("[data-action=reminders]")

    expect(reminders).to_contain_text("off, at the patient's request")
    expect(reminders).to_contain_text("recorded by")
    assert opt_out(db, patient) == (True, world.staff["nurse"])
    page.click("[data-action=reminders]")
    expect(reminders).to_contain_text("SMS reminders to the patient: on")
    assert opt_out(db, patient) == (False, None)
    assert audited(db, patient) == ["patient.reminders.opt_out", "patient.reminders.opt_in"]
    page.close()


def test_a_gp_sees_the_opt_out_but_does_not_record_it(
    browser: Browser,
    server: str,
    world: World,
) -> None:
    page = browser_login(browser, server, "dr.rossi")
    page.goto(f"{server}/patients/{world.patients['own']}")
    expect(page.locator("#reminders")).to_contain_text("on")
    expect(page.locator("[data-action=reminders]")).to_have_count(0)
    page.close()


def test_an_admin_records_it_for_any_patient_a_nurse_only_in_her_centre(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    csrf = login(client, "admin")
    far = world.patients["far"]
    response = client.put(
        "/api/admin/reminders",
        json={"patient_id": far, "opted_out": True},
        headers={"x-csrf-token": csrf},
    )
    assert response.status_code == 200
    assert response.json()["opted_out"] is True
    assert opt_out(db, far) == (True, world.staff["admin"])

    client.post("/logout", headers={"x-csrf-token": csrf})
    csrf = login(client, "nurse.greco")
    response = client.put(
        f"/api/patients/{far}/reminders", json={"opted_out": False}, headers={"x-csrf-token": csrf}
    )
    assert response.status_code == 404  # centre B's patient: as if it did not exist
    assert opt_out(db, far) == (True, world.staff["admin"])
