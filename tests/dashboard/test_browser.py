"""In Debian's Chromium: a nurse sees an episode worsen live and works it; a GP reads a chart.

Screenshots of the main pages are saved to docs/screenshots/.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.chromium import CHROMIUM
from tests.dashboard.conftest import SCENARIOS, World, add_readings, evaluate
from tests.dashboard.support import SHOTS, browser_login

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium")


def test_nurse_sees_an_episode_worsen_live_and_works_it(
    browser: Browser, server: str, world: World, db: psycopg.Connection
) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    login_page = browser.new_page(viewport={"width": 1280, "height": 700})
    login_page.goto(f"{server}/login")
    login_page.screenshot(path=SHOTS / "login.png")
    login_page.close()

    page = browser_login(browser, server, "nurse.greco")
    expect(page).to_have_url(f"{server}/triage")
    expect(page.locator("#live")).to_be_visible()  # the event stream is connected
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    rows = page.locator("#queue-clinical tbody tr")
    own, other = world.episodes["own"], world.episodes["other_gp"]
    expect(rows).to_have_count(2)  # one row per patient, Maria's three findings in one
    expect(rows.nth(0)).to_have_attribute("data-episode-id", str(own))
    expect(rows.nth(0).locator("li.finding")).to_have_count(3)

    # The other GP's patient turns red: the engine adds the finding to the same episode,
    # whose row turns red, flashes and, waiting longer than Maria's, moves to the top.
    now = datetime.now(UTC)
    add_readings(db, world.patients["other_gp"], [("spo2", 6, 90), ("spo2", 1, 89)], now)
    evaluate(db, now, [world.patients["other_gp"]])
    expect(rows.nth(0)).to_have_attribute("data-episode-id", str(other), timeout=10_000)
    expect(rows.nth(0)).to_have_class("sev-2 flash")
    expect(rows).to_have_count(2)
    page.screenshot(path=SHOTS / "triage.png", full_page=True)

    rows.nth(0).locator("button[data-action=claim]").click()
    expect(page).to_have_url(f"{server}/episodes/{other}")
    expect(page.locator("#episode-claimed")).to_have_text("Nurse Greco")
    page.select_option("select[name=outcome]", "reached")
    page.locator("form[action$='/outcome'] input[name=note]").fill("Patient reached, SpO2 93%")
    page.click("button[data-action=outcome]")
    expect(page.locator("#episode-outcome")).to_have_text("Reached")
    # One finding resolved on its own: the episode goes on with the other.
    news2 = world.findings["other_gp:news2_partial"]
    page.click(f"button[data-action=resolve-finding][data-finding-id='{news2}']")
    expect(page.locator(f"button[data-finding-id='{news2}']")).to_have_count(0)
    expect(page.locator("#episode-state")).to_have_text("Open")
    expect(page.locator("button[data-action=resolve-finding]")).to_have_count(1)
    page.locator(f"form[action='/episodes/{other}/resolve'] input[name=note]").fill("Advised rest")
    page.screenshot(path=SHOTS / "episode.png", full_page=True)
    page.click("button[data-action=resolve]")
    expect(page.locator("#episode-state")).to_have_text("Resolved")
    state = db.execute("SELECT state, outcome FROM episodes WHERE id = %s", (other,)).fetchone()
    assert state == ("resolved", "reached")
    assert errors == []  # CSP violations and script errors show up here


def test_gp_sees_the_chart_with_its_threshold_band(
    browser: Browser, server: str, world: World
) -> None:
    page = browser_login(browser, server, "dr.rossi")
    expect(page).to_have_url(f"{server}/patients")
    page.screenshot(path=SHOTS / "patients.png", full_page=True)
    page.click("text=Maria Colombo")
    chart = page.locator("svg.chart[data-metric=spo2]")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.band-amber")).to_have_count(1)
    expect(chart.locator("rect.band-red")).to_have_count(1)
    # A week of readings every 6 h (the quiet days from 24 h ago), then her scenario's.
    scenario = [metric for metric, _, _ in SCENARIOS["own"]].count("spo2")
    assert chart.locator("circle.reading").count() == 24 + scenario
    page.screenshot(path=SHOTS / "patient.png", full_page=True)
    page.click("text=30 days")
    expect(page).to_have_url(f"{server}/patients/{world.patients['own']}?days=30")
    expect(page.locator("svg.chart[data-metric=spo2] polygon")).to_have_count(1)


def test_admin_enrols_a_patient_gives_the_kit_and_prints_the_device_card(
    browser: Browser, server: str, world: World, db: psycopg.Connection
) -> None:
    page = browser_login(browser, server, "admin")
    expect(page).to_have_url(f"{server}/admin")
    page.screenshot(path=SHOTS / "admin.png", full_page=True)
    page.click("a[href='/admin/patients/new']")
    page.fill("input[name=code]", "P-0100")
    page.fill("input[name=given_name]", "Rosa")
    page.fill("input[name=family_name]", "Gallo")
    page.fill("input[name=phone]", "3331112222")  # no country code: refused next to the field
    page.select_option("select[name=gp_id]", str(world.staff["gp"]))
    page.check("input[name=protocol][value=copd]")
    page.click("#rules-copd summary")
    page.fill("input[name='band:copd:spo2_low:0']", "86")
    page.click("#enrol-form button.primary")
    expect(page.locator("#err-phone")).to_contain_text("+39")
    expect(page.locator("#err-why-copd-spo2_low")).to_be_visible()
    expect(page.locator("input[name=given_name]")).to_have_value("Rosa")  # values kept
    page.screenshot(path=SHOTS / "enrol-errors.png", full_page=True)
    page.fill("input[name=phone]", "+393331112222")
    page.fill("input[name='why:copd:spo2_low']", "COPD baseline")
    page.click("#enrol-form button.primary")
    expect(page).to_have_url(re.compile(r"/admin/patients/\d+$"))
    expect(page.locator("table").last).to_contain_text("Enrolled")
    page.fill("input[name=code] >> nth=1", "GW-0100")
    page.click("text=Assign a gateway")
    page.select_option("#kit select[name=kind]", "blood_pressure")
    page.fill("#kit form[aria-label^='Assign a device'] input[name=address]", "aa:bb:cc:dd:ee:07")
    page.fill("#kit form[aria-label^='Assign a device'] input[name=model]", "M7 Intelli IT")
    page.fill("#kit form[aria-label^='Assign a device'] input[name=serial_number]", "SN-7")
    page.fill("#kit form[aria-label^='Assign a device'] input[name=udi]", "(01)04015672104744")
    page.click("#kit form[aria-label^='Assign a device'] button")
    expect(page.locator("#kit")).to_contain_text("SN-7")
    page.click("text=Device card")
    card = page.locator("article.device-card")
    # Printed for the patient, in the patient's language (Italian by default).
    expect(card).to_contain_text("Tesserino dispositivi")
    expect(card).to_contain_text("M7 Intelli IT")
    expect(card).to_contain_text("(01)04015672104744")
    expect(card).to_contain_text("GW-0100")
    expect(card).to_contain_text("+39")  # the service centre's duty phone
    page.emulate_media(media="print")
    expect(page.locator("header.topbar")).to_be_hidden()
    page.screenshot(path=SHOTS / "device-card.png", full_page=True)
    patient = db.execute("SELECT id FROM patients WHERE code = 'P-0100'").fetchone()[0]
    assert (
        db.execute(
            "SELECT count(*) FROM enrolment_history WHERE patient_id = %s", (patient,)
        ).fetchone()[0]
        == 3
    )  # enrolled, gateway, device
