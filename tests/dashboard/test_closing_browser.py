"""In Debian's Chromium: the admin discharges a patient; the GP then opens the closing report
from the patient's page and reads why, how long and how monitoring ended."""

from __future__ import annotations

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.chromium import CHROMIUM
from tests.dashboard.conftest import World
from tests.dashboard.support import SHOTS, browser_login

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium")

REASON = "Recovered; follow-up by the GP"


def test_admin_discharges_and_the_gp_reads_the_closing_report(
    browser: Browser,
    server: str,
    world: World,
    db: psycopg.Connection,
) -> None:
    own = world.patients["own"]
    errors: list[str] = []
    admin = browser_login(browser, server, "admin")
    admin.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    admin.goto(f"{server}/admin/patients/{own}")
    admin.fill("#discharge input[name=discharge_reason]", REASON)
    admin.click("#discharge button.primary")
    expect(admin).to_have_url(f"{server}/admin/patients/{own}")
    sha = db.execute("SELECT pdf_sha256 FROM period_reports WHERE kind = 'closing'").fetchone()[0]
    # The admin learns it was made and its hash, and reads none of it.
    expect(admin.locator("#closing-record")).to_contain_text(sha)
    expect(admin.locator("#closing-outcomes")).to_have_count(0)

    gp = browser_login(browser, server, "dr.rossi")
    gp.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    gp.goto(f"{server}/patients/{own}")
    gp.click("#closing-link")
    expect(gp).to_have_url(f"{server}/patients/{own}/closing-report")
    expect(gp.locator("article.report h1")).to_contain_text("Closing report")
    expect(gp.locator("#closing-reason")).to_have_text(REASON)
    first, last = db.execute(
        "SELECT period_from, period_to FROM period_reports WHERE kind = 'closing'"
    ).fetchone()
    expect(gp.locator("#closing-duration")).to_contain_text(f"{(last - first).days + 1} days")
    red = gp.locator('#closing-outcomes tr[data-severity="2"]')
    expect(red.locator(".badge")).to_have_text("Red")  # in words, not colour alone
    expect(red).to_contain_text("closed at discharge: 1")
    expect(gp.locator('#closing-last-values tr[data-metric="spo2"]')).to_contain_text("88")
    expect(gp.locator("#closing-validation")).to_contain_text(sha)
    # Printed, only the report remains.
    gp.emulate_media(media="print")
    expect(gp.locator(".topbar")).to_be_hidden()
    expect(gp.locator("#closing-pdf")).to_be_hidden()
    gp.emulate_media(media="screen")
    pdf = gp.request.get(f"{server}/patients/{own}/closing-report.pdf")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    gp.screenshot(path=SHOTS / "closing-report.png", full_page=True)
    assert errors == []
