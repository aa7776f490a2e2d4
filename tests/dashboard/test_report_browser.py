"""In Debian's Chromium: a GP opens a patient's period report, prints it, validates it."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.chromium import CHROMIUM
from tests.dashboard.conftest import World
from tests.dashboard.support import SHOTS, browser_login

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium")


def test_gp_reads_prints_and_validates_a_period_report(
    browser: Browser,
    server: str,
    world: World,
    db: psycopg.Connection,
) -> None:
    own = world.patients["own"]
    page = browser_login(browser, server, "dr.rossi")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{server}/patients/{own}")
    page.click("#report-link")
    expect(page).to_have_url(f"{server}/patients/{own}/report")
    report = page.locator("article.report")
    expect(report.locator("h1")).to_contain_text("P-0001")
    expect(page.locator("#report-episodes tbody tr")).to_have_count(1)
    expect(page.locator("#report-episodes .badge")).to_have_text("Red")  # in words, not colour
    assert page.locator("svg.chart").count() >= 2  # SpO2 and pulse, with their bands
    # Printed, the page is the report alone: no navigation, no buttons.
    page.emulate_media(media="print")
    expect(page.locator(".topbar")).to_be_hidden()
    expect(page.locator("#report-validate")).to_be_hidden()
    expect(report).to_be_visible()
    page.emulate_media(media="screen")
    # A narrower period through the form, then validation.
    last = page.locator("input[type=date][name=to]").input_value()
    first = (date.fromisoformat(last) - timedelta(days=6)).isoformat()
    page.locator("input[type=date][name=from]").fill(first)
    page.click(".report-controls form[method=get] button")
    expect(page).to_have_url(f"{server}/patients/{own}/report?from={first}&to={last}")
    expect(page.locator(".report-period")).to_contain_text(
        date.fromisoformat(first).strftime("%d/%m/%Y")
    )
    page.click("#report-validate")
    expect(page.locator("#report-validation")).to_contain_text("Validated by Dr Rossi")
    expect(page.locator("#report-validate")).to_have_count(0)
    expect(page.locator("#report-fhir")).to_be_visible()
    sha = db.execute("SELECT pdf_sha256 FROM period_reports").fetchone()[0]
    expect(page.locator("#report-validation")).to_contain_text(sha)
    page.goto(f"{server}/patients/{own}/report")
    page.screenshot(path=SHOTS / "report.png", full_page=True)
    assert errors == []
