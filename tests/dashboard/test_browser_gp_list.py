"""In Debian's Chromium: a GP reads their list at a glance, filters it, tags a patient, and reads
the patient's plan and 90 days of readings with the episodes marked on the time axis."""

from __future__ import annotations

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.chromium import CHROMIUM
from tests.dashboard.conftest import World
from tests.dashboard.gp_cohort import GpList, seed_gp_list
from tests.dashboard.support import browser_login

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium")


@pytest.fixture
def gp_list(world: World, db: psycopg.Connection) -> GpList:
    return seed_gp_list(world, db)


def test_gp_reads_filters_and_tags_the_list(browser: Browser, server: str, gp_list: GpList) -> None:
    own = gp_list.world.patients["own"]
    page = browser_login(browser, server, "dr.rossi")
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    expect(page).to_have_url(f"{server}/patients")
    rows = page.locator("table.patients tbody tr")
    expect(rows).to_have_count(6)
    expect(rows.nth(0)).to_have_attribute("data-patient-id", str(own))
    expect(rows.nth(0).locator(".badge.sev-2")).to_have_text("Red")
    expect(rows.nth(1).locator(".badge.sev-1")).to_have_text("Amber")
    expect(rows.nth(2)).to_have_attribute("data-patient-id", str(gp_list.silent))
    expect(rows.nth(2).locator(".badge.task")).to_have_text("Not measuring")
    # The trend arrow has words for a screen reader.
    spo2 = rows.nth(0).locator(".vital[data-metric=spo2]")
    expect(spo2.locator(".sr-only")).to_have_text("falling against the week before")
    expect(page.locator(f"tr[data-patient-id='{gp_list.dm}'] [data-adherence]")).to_contain_text(
        "3/5"
    )

    page.select_option("select[name=need]", "not_measuring")
    page.click("#patient-filters button")
    expect(page).to_have_url(f"{server}/patients?need=not_measuring&protocol=")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-patient-id", str(gp_list.silent))
    # The live refresh keeps the filter: the fragment it fetches carries the query.
    assert "need=not_measuring" in (page.locator("body").get_attribute("data-live") or "")

    # Tag a patient from their page; the list then filters by it.
    page.goto(f"{server}/patients/{gp_list.quiet}")
    page.fill("#new-tag", "Home visit")
    page.click("button[data-action=add-tag]")
    expect(page.locator("#patient-tags .tag")).to_have_text("home visit ×")
    page.goto(f"{server}/patients")
    page.select_option("select[name=tag]", "home visit")
    page.click("#patient-filters button")
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_have_attribute("data-patient-id", str(gp_list.quiet))
    assert errors == []


def test_gp_reads_the_plan_and_90_days_on_a_tablet(
    browser: Browser, server: str, gp_list: GpList
) -> None:
    own = gp_list.world.patients["own"]
    page = browser_login(browser, server, "dr.rossi", width=768)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.click("text=Maria Colombo")
    plan = page.locator("#monitoring-plan")
    expect(plan).to_contain_text("Oxygen saturation: one reading every 8 h")
    expect(plan).to_contain_text("SpO2 ≤ 92 %")
    page.click("text=90 days")
    expect(page).to_have_url(f"{server}/patients/{own}?days=90")
    expect(page.locator("a[aria-current=page]")).to_have_text("90 days")
    chart = page.locator("svg.chart[data-metric=spo2]")
    expect(chart.locator("polygon")).to_have_count(1)  # min-max of the rollup's bins
    expect(chart.locator("circle.reading")).to_have_count(0)
    mark = chart.locator("g.episode-mark.sev-2")
    expect(mark).to_have_count(1)
    expect(mark.locator("text")).to_have_text("!!")  # not by colour alone
    expect(mark.locator("title")).to_contain_text("still open")
    box = chart.bounding_box()
    assert box is not None and box["width"] <= 768
    assert errors == []
