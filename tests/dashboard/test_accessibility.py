"""Every page of the dashboard, as each role sees it, checked with axe-core in Chromium: no
serious or critical violation (contrast, labels, names, landmarks, ARIA). The data are the ones
the real engine made over the demo's scenarios (tests/engine_made.py), so every kind of finding,
episode and chart the engine produces is on the pages checked.

Also: the triage, patient and episode pages on a tablet (768 px wide: GPs use them on home
visits) and the main actions of the triage and episode pages reached and worked by keyboard.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from dashboard.accounts import set_password
from dashboard.app import create_app
from telemon.config import Settings
from tests.chromium import CHROMIUM
from tests.dashboard.live_server import live_dashboard
from tests.database import truncate_data
from tests.engine_made import EngineMade, replay_demo

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="apt-get install chromium")

PASSWORD = "correct-horse-battery"
AXE_DIR = Path(__file__).resolve().parents[1] / "vendor" / "axe-core"
AXE_SOURCE = (AXE_DIR / "axe.min.js").read_text(encoding="utf-8")
BLOCKING = ("serious", "critical")
TABLET = {"width": 768, "height": 1024}


@dataclass(frozen=True, slots=True)
class Violation:
    page: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]


@pytest.fixture(scope="module")
def made(database_url: str) -> EngineMade:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_data(conn)
    settings = Settings(database_url=database_url, public_url="http://127.0.0.1")
    made = replay_demo(database_url, settings, now=now)
    with psycopg.connect(database_url) as conn:
        for (username,) in conn.execute("SELECT username FROM staff").fetchall():
            set_password(conn, username, PASSWORD)
        # Italian, the cooperatives' language: its longer words are the harder layout.
        conn.execute("UPDATE staff SET language = 'it'")
    return made


@pytest.fixture(scope="module")
def server(made: EngineMade, database_url: str) -> Iterator[str]:
    app = create_app(
        database_url, public_url="http://127.0.0.1", language="it", twilio_auth_token=""
    )
    with live_dashboard(app) as url:
        yield url


def _signed_in(
    browser: Browser, server: str, username: str, viewport: dict[str, int] | None = None
) -> tuple[BrowserContext, Page]:
    context = browser.new_context(
        base_url=server, viewport=viewport or {"width": 1280, "height": 860}
    )
    page = context.new_page()
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    expect(page).not_to_have_url(re.compile(r"/login$"))
    return context, page


def axe_violations(page: Page, name: str) -> list[Violation]:
    """The serious and critical violations axe-core finds on the page as it is now.

    axe is evaluated through the DevTools protocol (page.evaluate), which the page's CSP does
    not govern: the dashboard is checked with its own script-src 'self' in force, which would
    refuse the inline <script> that add_script_tag makes of a local file (and no bypass_csp).
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(f"() => {{ {AXE_SOURCE}\n}}")
    results: dict[str, Any] = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
    )
    return [
        Violation(
            page=name,
            rule=v["id"],
            impact=v["impact"],
            help=v["help"],
            targets=tuple(" ".join(n["target"]) for n in v["nodes"][:3]),
        )
        for v in results["violations"]
        if v["impact"] in BLOCKING
    ]


def _summary(found: list[Violation]) -> str:
    """One line per rule broken: what it asks, where (the first pages and elements)."""
    rules: dict[str, list[Violation]] = {}
    for v in found:
        rules.setdefault(v.rule, []).append(v)
    return "\n".join(
        f"{rule} ({vs[0].impact}, {vs[0].help}) on {len(vs)} pages, e.g. "
        f"{[v.page for v in vs[:3]]}: {sorted({t for v in vs for t in v.targets})[:8]}"
        for rule, vs in rules.items()
    )


def _pages_of(database_url: str, username: str) -> list[str]:
    """Every page the role reaches, with every patient, episode and finding it may see."""
    with psycopg.connect(database_url) as conn:
        role = conn.execute("SELECT role FROM staff WHERE username = %s", (username,)).fetchone()[0]
        patients = [
            r[0]
            for r in conn.execute(
                "SELECT p.id FROM patients p JOIN staff g ON g.id = p.gp_id "
                "WHERE %s <> 'gp' OR g.username = %s ORDER BY p.id",
                (role, username),
            )
        ]
        episodes, findings = (
            [r[0] for r in conn.execute(sql, (patients,))]
            for sql in (
                "SELECT id FROM episodes WHERE patient_id = ANY(%s) ORDER BY id",
                "SELECT id FROM alerts WHERE patient_id = ANY(%s) ORDER BY id",
            )
        )
        protocols = [r[0] for r in conn.execute("SELECT DISTINCT protocol FROM patient_protocols")]
        tags = [r[0] for r in conn.execute("SELECT DISTINCT tag FROM patient_tags")]
    if role == "admin":
        pages = ["/admin", "/admin/patients", "/admin/patients/new", "/status", "/equipment"]
        pages += [
            f"/admin/patients/{p}{page}"
            for p in patients
            for page in ("", "/card", "/restrictions")
        ]
        pages += ["/admin/restrictions", "/admin/restrictions?code=no-such-code"]
        return [*pages, "/settings", "/password", "/admin/no-such-page"]
    pages = ["/patients", "/patients?need=attention", "/patients?need=not_measuring"]
    pages += [f"/patients?protocol={p}" for p in protocols]
    pages += [f"/patients?tag={quote(t)}" for t in tags]
    pages += [f"/patients/{p}?days={d}" for p in patients for d in (7, 30, 90)]
    pages += [f"/patients/{p}/report" for p in patients]
    pages += [f"/episodes/{e}" for e in episodes] + [f"/alerts/{f}" for f in findings]
    pages += ["/settings", "/password"]
    if role == "nurse":
        pages += ["/triage", "/equipment", "/sms"]
    # Error pages: a page that is not there, one the role may not open, a refused input.
    pages += ["/patients/999999", "/admin", f"/patients/{patients[0]}/report?from=2026-13-45"]
    return pages


@pytest.mark.parametrize("username", ["nurse.greco", "dr.colombo", "admin"])
def test_every_page_has_no_serious_accessibility_violation(
    browser: Browser, server: str, made: EngineMade, database_url: str, username: str
) -> None:
    context, page = _signed_in(browser, server, username)
    if username.startswith("dr."):
        # A tag of the GP's own, added as the GP adds it: the list then shows tags and their filter.
        page.locator("table.patients a").first.click()
        page.fill("#new-tag", "visita domiciliare")
        page.click("button[data-action=add-tag]")
        expect(page.locator("#patient-tags .tag")).to_have_count(1)
    if username == "admin":
        # A patient's request to hide data, recorded as the admin records it: the pages then
        # show the list of requests with its withdrawal button.
        page.goto("/admin/restrictions")
        with psycopg.connect(database_url) as conn:
            code = conn.execute("SELECT code FROM patients ORDER BY id LIMIT 1").fetchone()[0]
        page.fill("#restriction-finder input[name=code]", code)
        page.click("#restriction-finder button")
        page.select_option("#restrictions select[name=kind]", "period")
        page.fill("#restrictions input[name=first]", "2024-01-01")
        page.fill("#restrictions input[name=last]", "2024-01-31")
        page.fill("#restrictions input[name=requested_on]", "2024-02-01")
        page.click("button[data-action=record-restriction]")
        expect(page.locator("#restrictions tr[data-restriction-id]")).to_have_count(1)
    pages = _pages_of(database_url, username)
    found: list[Violation] = []
    statuses: dict[str, int] = {}
    for path in pages:
        response = page.goto(path)
        assert response is not None
        statuses[path] = response.status
        # What a click shows is checked too: the enrolment form's thresholds, the kit's forms.
        page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
        found += axe_violations(page, path)
    if username == "admin":
        # The enrolment form as it comes back refused, its messages next to the fields.
        page.goto("/admin/patients/new")
        page.click("#enrol-form button.primary")
        expect(page.locator(".field-error").first).to_be_visible()
        found += axe_violations(page, "/admin/patients/new (refused)")
    context.close()
    assert found == [], _summary(found)
    # The pages were what they are meant to be: errors where asked for, else the page itself.
    errors = {p for p, s in statuses.items() if s >= 400}
    assert errors == {p for p in pages if "999999" in p or "no-such" in p or "13-45" in p} | (
        {"/admin"} if username != "admin" else set()
    ), statuses


def test_login_page_has_no_serious_accessibility_violation(
    browser: Browser, server: str, made: EngineMade
) -> None:
    context = browser.new_context(base_url=server)
    page = context.new_page()
    page.goto("/login")
    found = axe_violations(page, "/login")
    page.fill("input[name=username]", "nobody")
    page.fill("input[name=password]", "wrong-password-here")
    page.click("button.primary")
    expect(page.locator(".error")).to_be_visible()
    found += axe_violations(page, "/login (refused)")
    context.close()
    assert found == [], _summary(found)


def test_the_vendored_axe_core_is_the_pinned_release() -> None:
    readme = (AXE_DIR / "README.md").read_text(encoding="utf-8")
    version = re.search(r"^version: (\S+)$", readme, re.M)
    sha256 = re.search(r"^sha256: ([0-9a-f]{64})$", readme, re.M)
    assert version and sha256
    assert hashlib.sha256((AXE_DIR / "axe.min.js").read_bytes()).hexdigest() == sha256[1]
    assert AXE_SOURCE.startswith(f"/*! axe v{version[1]}\n")
    assert "Mozilla Public" in AXE_SOURCE[:600]  # the MPL-2.0 header kept


def _open_episode(database_url: str, gp: str | None = None) -> tuple[int, int]:
    """(episode, patient) of an open clinical episode, of the GP's own patients if named."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT e.id, e.patient_id FROM episodes e JOIN patients p ON p.id = e.patient_id "
            "JOIN staff g ON g.id = p.gp_id JOIN alerts a ON a.episode_id = e.id "
            "WHERE e.state <> 'resolved' AND (%s::text IS NULL OR g.username = %s) "
            "AND a.details->'evidence'->>'kind' <> 'missing_data' "
            "ORDER BY e.severity DESC, e.id LIMIT 1",
            (gp, gp),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _fits_the_tablet(page: Page, controls: list[str]) -> None:
    """No sideways scrolling of the page, and each control shown whole within its width."""
    scroll_width = page.evaluate("() => document.documentElement.scrollWidth")
    assert scroll_width <= TABLET["width"], (page.url, scroll_width)
    for selector in controls:
        control = page.locator(selector).first
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None and box["x"] >= 0, (selector, box)
        assert box["x"] + box["width"] <= TABLET["width"], (page.url, selector, box)


def test_triage_and_episode_pages_work_on_a_tablet(
    browser: Browser, server: str, made: EngineMade, database_url: str
) -> None:
    context, page = _signed_in(browser, server, "nurse.greco", TABLET)
    expect(page).to_have_url(re.compile(r"/triage$"))
    _fits_the_tablet(
        page,
        [
            "nav a[href='/triage']",
            "nav a[href='/patients']",
            "#queue-clinical tbody tr >> nth=0 >> a[href^='/patients/']",
            "#queue-clinical tbody tr >> nth=0 >> button[data-action=claim]",
            "#queue-clinical tbody tr >> nth=0 >> a[href^='/episodes/']",
            "#queue-clinical tbody tr >> nth=0 >> .badge",
        ],
    )
    episode, _ = _open_episode(database_url)
    page.goto(f"/episodes/{episode}")
    _fits_the_tablet(
        page,
        [
            "h1 .badge",
            "button[data-action=claim]",
            "select[name=outcome]",
            "button[data-action=outcome]",
            "button[data-action=resolve]",
            "button[data-action=resolve-finding]",
        ],
    )
    context.close()


def test_patient_list_and_page_work_on_a_tablet(
    browser: Browser, server: str, made: EngineMade, database_url: str
) -> None:
    context, page = _signed_in(browser, server, "dr.colombo", TABLET)
    expect(page).to_have_url(re.compile(r"/patients$"))
    _fits_the_tablet(
        page,
        [
            "#patient-filters select[name=need]",
            "#patient-filters button",
            "table.patients tbody tr >> nth=0 >> a[href^='/patients/']",
            "table.patients a.badge",
        ],
    )
    _, patient = _open_episode(database_url, "dr.colombo")
    for days in (7, 30, 90):
        page.goto(f"/patients/{patient}?days={days}")
        _fits_the_tablet(
            page,
            [
                "#report-link",
                f".periods a[href$='days={days}']",
                ".alert-box .badge",
                "button[data-action=resolve]",
                "svg.chart",
                "#new-tag",
                "button[data-action=add-tag]",
            ],
        )
    context.close()


_FOCUSED = """() => {
  const e = document.activeElement;
  const what = e.dataset.action || e.getAttribute('name') || e.getAttribute('href') || '';
  return `${e.tagName.toLowerCase()} ${what}`.trim();
}"""


def _tab_to(page: Page, selector: str, limit: int = 80) -> list[str]:
    """Press Tab until `selector` has the focus; returns what had it on the way, in order."""
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return passed
        passed.append(page.evaluate(_FOCUSED))
    raise AssertionError(f"Tab never reached {selector}: {passed}")


# Last in the module: it claims and resolves an episode the tests above show open.
def test_triage_and_episode_actions_by_keyboard(
    browser: Browser, server: str, made: EngineMade, database_url: str
) -> None:
    context, page = _signed_in(browser, server, "nurse.greco")
    expect(page).to_have_url(re.compile(r"/triage$"))
    # The first Tab offers the way past the top bar; Enter takes the focus to the content.
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    expect(page.locator(".skip-link")).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # Then the queue's first row in reading order: the patient, claim, the episode's actions.
    first = page.locator("#queue-clinical tbody tr").first
    episode = int(first.get_attribute("data-episode-id") or 0)
    on_the_way = _tab_to(page, "#queue-clinical tbody tr:first-child button[data-action=claim]")
    assert on_the_way[-1].startswith("a /patients/"), on_the_way  # the row's patient
    assert not any(step.startswith("a /episodes/") for step in on_the_way)  # no row skipped
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/episodes/{episode}$"))
    expect(page.locator("#episode-claimed")).to_have_text("Inf. Elena Greco")

    # The episode: the call's outcome, its note, recorded; then the episode resolved.
    _tab_to(page, "select[name=outcome]")
    page.keyboard.press("ArrowDown")  # the second outcome: not reached
    page.keyboard.press("Tab")
    expect(page.locator("form[action$='/outcome'] input[name=note]")).to_be_focused()
    page.keyboard.type("Nessuna risposta, richiamo alle 18")
    page.keyboard.press("Tab")
    expect(page.locator("button[data-action=outcome]")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#episode-outcome")).to_have_text("Non raggiunto")
    on_the_way = _tab_to(page, "button[data-action=resolve]")
    assert on_the_way[-1] == "input note", on_the_way  # its note comes just before it
    page.keyboard.press("Shift+Tab")
    page.keyboard.type("Richiamato, sta bene")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.locator("#episode-state")).to_have_text("Risolto")
    context.close()
    with psycopg.connect(database_url) as conn:
        state = conn.execute(
            "SELECT state, outcome, resolution_note FROM episodes WHERE id = %s", (episode,)
        ).fetchone()
    assert state == ("resolved", "not_reached", "Richiamato, sta bene")
