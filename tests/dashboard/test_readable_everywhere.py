"""Every page and every SMS, in Italian and in English, from findings the real engine made over
the demo's scenarios: words a clinician reads, never a rule key, an i18n key or a UCUM code.

The data are not fixtures written for the pages: the demo's twelve patients live five days of
their scenarios (tests/engine_made.py) and the alerts engine opens what it opens. Whatever a
new rule, template or page lets through shows up here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient

from alerts.notify.digest import render_digest
from alerts.notify.texts import MAX_SMS_LENGTH, TEMPLATES, AlertSummary, render_sms
from alerts.protocol import load_protocols
from dashboard.accounts import set_password
from dashboard.app import create_app
from telemon.config import Settings
from telemon.findings import evidence_in
from telemon.gsm7 import gsm7_length, is_gsm7
from telemon.metrics import METRICS_BY_ID
from tests.dashboard.support import login
from tests.database import truncate_data
from tests.engine_made import EngineMade, replay_demo
from tests.readable import raw_codes, visible_text

PASSWORD = "correct-horse-battery"
PUBLIC_URL = "https://telemon.example.it"
LANGUAGES = ("it", "en")


@pytest.fixture(scope="module")
def made(database_url: str) -> Iterator[EngineMade]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_data(conn)
    settings = Settings(database_url=database_url, public_url=PUBLIC_URL)
    made = replay_demo(database_url, settings, now=now)
    with psycopg.connect(database_url) as conn:
        for (username,) in conn.execute("SELECT username FROM staff").fetchall():
            set_password(conn, username, PASSWORD)
    yield made


@pytest.fixture
def reader(made: EngineMade, database_url: str) -> Iterator[TestClient]:
    # The app on the test client's own http URL: an https one would mark its cookies Secure.
    app = create_app(
        database_url, public_url="http://testserver", language="it", twilio_auth_token=""
    )
    with TestClient(app, follow_redirects=False) as client:
        yield client


def _set_language(database_url: str, language: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE staff SET language = %s", (language,))


def _pages_of(client: TestClient, conn: psycopg.Connection, role: str) -> list[str]:
    """Every page the role reaches, with every patient, episode and finding it may see."""
    patients = [r[0] for r in conn.execute("SELECT id FROM patients ORDER BY id")]
    if role == "admin":
        enrolment = ["/admin/patients", "/admin/patients/new"]
        enrolment += [f"/admin/patients/{p}{page}" for p in patients for page in ("", "/card")]
        return ["/admin", "/settings", "/password", *enrolment]
    episodes = [r[0] for r in conn.execute("SELECT id FROM episodes ORDER BY id")]
    findings = [r[0] for r in conn.execute("SELECT id FROM alerts ORDER BY id")]
    pages = ["/patients", "/patients/fragment", "/settings", "/password"]
    pages += [f"/patients/{p}?days={d}" for p in patients for d in (7, 30)]
    pages += [f"/episodes/{e}" for e in episodes] + [f"/alerts/{f}" for f in findings]
    if role == "nurse":
        pages += ["/triage", "/triage/fragment", "/equipment", "/sms"]
    return pages


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("username", ["nurse.greco", "dr.colombo", "admin"])
def test_every_page_reads_in_words(
    reader: TestClient, made: EngineMade, database_url: str, username: str, language: str
) -> None:
    _set_language(database_url, language)
    login(reader, username, PASSWORD)
    role = reader.get("/api/me").json()["role"]
    with psycopg.connect(database_url) as conn:
        pages = _pages_of(reader, conn, role)
    shown = 0
    problems = []
    for path in pages:
        response = reader.get(path, follow_redirects=True)
        if response.status_code == 404 and role == "gp":
            continue  # another GP's patient: not this reader's page
        assert response.status_code == 200, (path, response.status_code)
        shown += 1
        text = visible_text(response.text)
        problems += [(path, code) for code in raw_codes(text)]
    assert problems == []
    with psycopg.connect(database_url) as conn:
        own = conn.execute(
            "SELECT count(*) FROM patients p JOIN staff g ON g.id = p.gp_id WHERE g.username = %s",
            (username,),
        ).fetchone()[0]
    # Something was read: every page of a centre's role, each own patient's pages for a GP.
    assert shown == len(pages) if role != "gp" else shown >= 2 * own > 0


def test_the_engine_made_every_kind_of_finding_the_demo_is_for(
    made: EngineMade, database_url: str
) -> None:
    """The test above reads something: the scenarios did open what they are meant to."""
    with psycopg.connect(database_url) as conn:
        kinds = {
            r[0]
            for r in conn.execute("SELECT details->'evidence'->>'kind' FROM alerts")
            if r[0] is not None
        }
        per_patient = conn.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM episodes "
            "WHERE state <> 'resolved' GROUP BY patient_id) c"
        ).fetchone()[0]
    assert kinds >= {"threshold", "trend", "aggregate", "score", "missing_data"}
    assert per_patient == 1  # one queue row per patient


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sms_template_reads_in_words_with_every_engine_made_finding(
    made: EngineMade, database_url: str, language: str
) -> None:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT id, severity, metric_id, trigger_value, details FROM alerts ORDER BY id"
        ).fetchall()
        queued = [r[0] for r in conn.execute("SELECT body FROM notifications")]
    assert rows and queued
    problems = []
    for wording in TEMPLATES[language]:
        for alert_id, severity, metric_id, value, details in rows:
            summary = AlertSummary(
                episode_id=alert_id,
                severity=severity,
                initials="M.R.",
                metric=METRICS_BY_ID[metric_id].key if metric_id in METRICS_BY_ID else None,
                value=value,
                evidence=evidence_in(details),
            )
            text = render_sms(summary, wording, language, PUBLIC_URL)
            assert is_gsm7(text) and gsm7_length(text) <= MAX_SMS_LENGTH, text
            problems += [(wording, alert_id, code) for code in raw_codes(text)]
    digest = render_digest(["M.R.", "G.N."], language, PUBLIC_URL)
    problems += [("digest", 0, code) for code in raw_codes(digest)]
    # And what the engine queued, in the cooperative's language.
    problems += [("queued", 0, code) for body in queued for code in raw_codes(body)]
    assert problems == []


def test_protocol_and_rule_titles_the_pages_use_are_words_in_both_languages() -> None:
    for protocol in load_protocols().values():
        for title in (protocol.title, protocol.title_it):
            assert not raw_codes(title), title
        for rule in protocol.rules:
            for title in (rule.title, rule.title_it):
                assert not raw_codes(title) and not re.search(r"\b[a-z]+_[a-z]+\b", title)
