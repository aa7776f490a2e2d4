"""Signing in to the dashboard as tests do it: the demo-like password, the login form (through
TestClient, or in Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page

PASSWORD = "correct-horse-battery"
# conftest's staff, one login per role in each of the two organisations: the matrices sign in
# as each of them.
STAFF = {
    "gp": "dr.rossi",
    "nurse": "nurse.greco",
    "admin": "admin",
    "privacy": "privacy.officer",
    "org_b_gp": "dr.verdi",
    "org_b_nurse": "nurse.galli",
    "org_b_admin": "admin.milano",
    "org_b_privacy": "privacy.milano",
}
# Where the browser tests save the main pages, for docs/dashboard.md.
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in; returns the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return client.get("/api/me").json()["csrf_token"]


def browser_login(
    browser: Browser, url: str, username: str, width: int = 1280, height: int = 860
) -> Page:
    """A new page of ``browser`` signed in through the login form of the dashboard at ``url``."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button.primary")
    return page
