"""The dashboard on a PostgreSQL primary and its streaming standby (issue 21,
docs/scaling.md "Read replica"): pages and FHIR read the standby, writes and audit rows go to
the primary, a person's own action shows to them at once while the standby lags, and an
unreachable standby sends reads to the primary.

Lag is made, not waited for: ``pg_wal_replay_pause()`` on the standby stops it replaying what
the primary sends, for as long as a test needs.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from bench._replicated_postgres import ReplicatedPostgres
from dashboard import databases
from dashboard.app import create_app
from dashboard.databases import read_conn
from telemon.store.migrate import migrate
from tests.dashboard.conftest import World, add_readings, seed_world
from tests.dashboard.support import login
from tests.database import scalar

STATUS_TOKEN = "replica-status-token-0123456789"
DATABASE = "telemon"


@pytest.fixture(scope="module")
def servers() -> Iterator[ReplicatedPostgres]:
    servers = ReplicatedPostgres()
    try:
        servers.start()
        with psycopg.connect(servers.url(servers.primary_port), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        with psycopg.connect(servers.url(servers.primary_port, DATABASE)) as conn:
            migrate(conn)
        servers.make_standby()
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def world(servers: ReplicatedPostgres) -> World:
    with psycopg.connect(servers.url(servers.primary_port, DATABASE), autocommit=True) as conn:
        return seed_world(conn)


@pytest.fixture
def primary(servers: ReplicatedPostgres, world: World) -> Iterator[psycopg.Connection]:
    with psycopg.connect(servers.url(servers.primary_port, DATABASE), autocommit=True) as conn:
        yield conn


@pytest.fixture
def standby(servers: ReplicatedPostgres, world: World) -> Iterator[psycopg.Connection]:
    servers.wait_replayed(DATABASE)
    with psycopg.connect(servers.url(servers.standby_port, DATABASE), autocommit=True) as conn:
        yield conn
        conn.execute("SELECT pg_wal_replay_resume()")


@pytest.fixture
def app(servers: ReplicatedPostgres, world: World) -> Iterator[Any]:
    """The dashboard, its pools open for the test (the people's clients below open none)."""
    app = create_app(
        servers.url(servers.primary_port, DATABASE),
        read_database_url=servers.url(servers.standby_port, DATABASE),
        public_url="http://testserver",
        language="en",
        twilio_auth_token="",
        status_token=STATUS_TOKEN,
    )
    with TestClient(app):
        yield app


@contextmanager
def signed_in(app: Any, username: str) -> Iterator[tuple[TestClient, str]]:
    """A person's own browser: a client with its own cookies."""
    client = TestClient(app, follow_redirects=False)
    yield client, login(client, username)


@contextmanager
def replay_paused(standby: psycopg.Connection) -> Iterator[None]:
    standby.execute("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        standby.execute("SELECT pg_wal_replay_resume()")


def spo2_values(client: TestClient, patient_id: int) -> list[float]:
    response = client.get(f"/api/patients/{patient_id}/series/spo2", params={"days": 7})
    assert response.status_code == 200, response.text
    return [point["value"] for point in response.json()["points"]]


def episode_state(client: TestClient, episode_id: int) -> str:
    response = client.get(f"/api/episodes/{episode_id}")
    assert response.status_code == 200, response.text
    state: str = response.json()["state"]
    return state


def test_pages_read_the_replica_and_a_persons_own_action_shows_to_them_at_once(
    app: Any,
    world: World,
    servers: ReplicatedPostgres,
    primary: psycopg.Connection,
    standby: psycopg.Connection,
) -> None:
    own, episode = world.patients["own"], world.episodes["own"]
    with signed_in(app, "dr.rossi") as (gp, gp_csrf), signed_in(app, "nurse.greco") as (nurse, _):
        before = spo2_values(gp, own)
        assert episode_state(nurse, episode) == "open"
        audited = scalar(primary, "SELECT count(*) FROM audit_log")
        with replay_paused(standby):
            add_readings(primary, own, [("spo2", 0, 82.0)], datetime.now(UTC))
            # On the primary, not yet on the standby the pages read.
            assert 82.0 in [
                v
                for (v,) in primary.execute(
                    "SELECT value FROM observations WHERE patient_id = %s", (own,)
                )
            ]
            assert spo2_values(gp, own) == before
            assert spo2_values(nurse, own) == before
            # Reading is audited all the same: the audit rows went to the primary.
            assert scalar(primary, "SELECT count(*) FROM audit_log") == audited + 2

            # The GP acknowledges the episode with a note, through the page's form.
            response = gp.post(
                f"/episodes/{episode}/acknowledge",
                data={"csrf_token": gp_csrf, "note": "Chiamata la paziente, sta bene"},
            )
            assert response.status_code == 303
            assert scalar(primary, "SELECT state FROM episodes WHERE id = %s", episode) == (
                "acknowledged"
            )
            # The page the form leads to shows the GP's action at once, read on the primary
            # since the standby has not replayed it; the new reading with it.
            page = gp.get(response.headers["location"])
            assert page.status_code == 200
            assert re.search(r'id="episode-state">\s*Acknowledged', page.text), page.text
            assert "Chiamata la paziente, sta bene" in page.text
            assert episode_state(gp, episode) == "acknowledged"
            assert 82.0 in spo2_values(gp, own)
            # The nurse wrote nothing: she reads the standby, which has not replayed it yet.
            assert episode_state(nurse, episode) == "open"
            assert 82.0 not in spo2_values(nurse, own)
        servers.wait_replayed(DATABASE)
        # Replayed: everyone sees it, from the standby.
        assert episode_state(nurse, episode) == "acknowledged"
        assert 82.0 in spo2_values(nurse, own)
        # And the GP's reads are back on the standby, which has replayed her write.
        with replay_paused(standby):
            add_readings(primary, own, [("spo2", 0, 83.0)], datetime.now(UTC))
            assert 83.0 not in spo2_values(gp, own)
        servers.wait_replayed(DATABASE)
        assert 83.0 in spo2_values(gp, own)


def test_fhir_reads_the_replica_and_the_export_follows_its_author(
    app: Any,
    world: World,
    servers: ReplicatedPostgres,
    primary: psycopg.Connection,
    standby: psycopg.Connection,
) -> None:
    own = world.patients["own"]
    with signed_in(app, "dr.rossi") as (gp, _):

        def fhir_spo2() -> list[float]:
            response = gp.get(
                "/fhir/Observation",
                params={"patient": own, "code": "59408-5", "_sort": "-date", "_count": 5},
            )
            assert response.status_code == 200, response.text
            return [
                entry["resource"]["valueQuantity"]["value"]
                for entry in response.json().get("entry", [])
            ]

        def exported() -> str:
            response = gp.get(f"/fhir/Patient/{own}/$everything", params={"_format": "text/csv"})
            assert response.status_code == 200, response.text
            return response.text

        with replay_paused(standby):
            add_readings(primary, own, [("spo2", 0, 81.0)], datetime.now(UTC))
            assert 81.0 not in fhir_spo2()
            assert "spo2,81.0," not in exported()
        servers.wait_replayed(DATABASE)
        assert 81.0 in fhir_spo2()
        assert "spo2,81.0," in exported()


def test_every_page_that_reads_runs_on_the_read_only_standby(
    app: Any, world: World, standby: psycopg.Connection
) -> None:
    """A page that wrote anything but its audit rows would fail on the standby (read-only):
    each reading route answers, for the role that may open it."""
    episode, finding, own = world.episodes["own"], world.alerts["own"], world.patients["own"]
    pages = {
        "dr.rossi": [
            "/patients",
            "/patients/fragment",
            f"/patients/{own}",
            f"/episodes/{episode}",
            f"/alerts/{finding}",
            "/settings",
            "/api/me/settings",
            "/api/patients",
            f"/api/patients/{own}",
            f"/api/patients/{own}/episodes",
            f"/api/patients/{own}/series/spo2",
            f"/api/episodes/{episode}",
            f"/api/episodes/{episode}/events",
            f"/api/alerts/{finding}",
            f"/patients/{own}/report",
            f"/patients/{own}/report.pdf",
            f"/patients/{own}/readings.csv",
            f"/fhir/Patient/{own}",
            f"/fhir/Observation?patient={own}",
            f"/fhir/Patient/{own}/$everything",
        ],
        "nurse.greco": [
            "/triage",
            "/triage/fragment",
            "/equipment",
            "/sms",
            "/api/triage",
            "/api/gateways/offline",
            "/api/devices/low-battery",
            "/api/notifications/failed",
        ],
        "admin": [
            "/admin",
            "/api/admin/staff",
            "/admin/patients",
            "/admin/patients/new",
            f"/admin/patients/{own}",
            f"/admin/patients/{own}/card",
        ],
        "privacy.officer": [
            f"/admin/access-report?patient={own}",
            f"/admin/patients/{own}/access-report.csv",
            f"/admin/patients/{own}/access-report.pdf",
        ],
    }
    opened = set()
    for username, paths in pages.items():
        with signed_in(app, username) as (client, _):
            for path in paths:
                response = client.get(path)
                # A finding in an episode leads to the episode's page.
                expected = 303 if path.startswith("/alerts/") else 200
                assert response.status_code == expected, (username, path, response.text[:300])
                opened.add(path)
    # Every GET route that reads through ``Reads`` is among those opened: a new one is added
    # here, and so is checked on the standby.
    reading_routes = {
        route.path
        for route in app.routes
        if isinstance(route, APIRoute)
        and "GET" in route.methods
        and any(dep.call is read_conn for dep in _all_dependencies(route.dependant))
    }
    templates = {re.sub(r"\?.*", "", p) for p in opened}
    unopened = {
        path
        for path in reading_routes
        if not any(re.fullmatch(re.sub(r"\{[^}]+\}", r"[^/]+", path), p) for p in templates)
    }
    assert unopened == set()


def _all_dependencies(dependant: Any) -> Iterator[Any]:
    for dep in dependant.dependencies:
        yield dep
        yield from _all_dependencies(dep)


def test_an_unreachable_replica_sends_reads_to_the_primary_and_is_logged_once(
    app: Any,
    world: World,
    servers: ReplicatedPostgres,
    primary: psycopg.Connection,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(databases, "RETRY_SECONDS", 0.3)
    own = world.patients["own"]
    caplog.set_level(logging.WARNING)
    with signed_in(app, "nurse.greco") as (nurse, _):
        spo2_values(nurse, own)  # the pool holds a standby connection now
        servers.stop_server(servers.standby_dir)
        try:
            add_readings(primary, own, [("spo2", 0, 79.0)], datetime.now(UTC))
            for _ in range(5):
                assert 79.0 in spo2_values(nurse, own)  # from the primary
            status = nurse.get("/status", headers={"authorization": f"Bearer {STATUS_TOKEN}"})
            assert status.status_code == 200  # reads go on: the service is healthy
            assert status.json()["replica"]["reachable"] is False
        finally:
            servers.start_server(servers.standby_dir)
        # Once, by the dashboard; the pool's own retries are not repeated in the log.
        replica_warnings = [
            r.getMessage()
            for r in caplog.records
            if str(servers.standby_port) in r.getMessage() or "replica" in r.getMessage()
        ]
        assert len(replica_warnings) == 1, [r.getMessage() for r in caplog.records]
        assert "the read replica is unreachable" in replica_warnings[0]
        servers.wait_replayed(DATABASE)
        time.sleep(0.4)
        for _ in range(20):
            spo2_values(nurse, own)
            if any("reachable again" in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.2)
        assert [r.getMessage() for r in caplog.records if "reachable again" in r.getMessage()]


def test_the_status_reports_the_replicas_lag_in_seconds_and_bytes(
    app: Any,
    world: World,
    servers: ReplicatedPostgres,
    primary: psycopg.Connection,
    standby: psycopg.Connection,
) -> None:
    probe = {"authorization": f"Bearer {STATUS_TOKEN}"}
    client = TestClient(app)
    with replay_paused(standby):
        add_readings(primary, world.patients["far"], [("spo2", 0, 90.0)], datetime.now(UTC))
        lagging = client.get("/status", headers=probe).json()["replica"]
        assert lagging["reachable"] is True
        assert lagging["lag_bytes"] > 0
        assert lagging["lag_seconds"] > 0
    servers.wait_replayed(DATABASE)
    caught_up = client.get("/status", headers=probe).json()["replica"]
    assert caught_up["lag_bytes"] < lagging["lag_bytes"]
    assert caught_up["lag_seconds"] == 0


def test_the_status_page_names_the_replica_and_its_lag(app: Any, world: World) -> None:
    with signed_in(app, "admin") as (admin, _):
        page = admin.get("/status")
    assert page.status_code == 200
    row = re.search(r'id="replica-status">(.*?)</td>', page.text, re.S)
    assert row is not None and "Read replica" in page.text
    assert re.search(r"reachable, [\d.]+ s \(\d+ bytes\) behind the primary", row.group(1))
