"""A small cooperative for the dashboard tests: two service centres, two GPs, nurses, an admin
and a privacy officer; and a second organisation beside it, with its own service centre, GP,
nurse, admin, privacy officer and patient."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser
from psycopg.types.json import Jsonb

from alerts import episodes
from alerts.engine import Engine
from alerts.lifecycle import open_finding
from alerts.notify.sender import Sender
from dashboard.accounts import hash_password
from dashboard.app import create_app
from dashboard.bands import protocols
from dashboard.fhir import observation_id
from telemon.config import Settings
from telemon.metrics import METRICS, METRICS_BY_ID
from tests.chromium import launched_chromium
from tests.dashboard.live_server import live_dashboard
from tests.dashboard.support import PASSWORD

# What the engine needs to queue SMS: no Twilio, so they wait in the outbox.
ENGINE_SETTINGS = Settings(public_url="http://testserver", language="en")


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass(frozen=True)
class World:
    staff: dict[str, int]
    # own = gp1's, centre A; other_gp = gp2's, centre A; far = centre B; org_b = the second
    # organisation's GP's, in its own centre
    patients: dict[str, int]
    episodes: dict[str, int]  # each patient's open episode, by the same keys
    findings: dict[str, int]  # "own:spo2_low" and so on: the engine's findings
    # Each patient's newest reading, by its FHIR Observation id (GET /fhir/Observation/{id}).
    observations: dict[str, str] = field(default_factory=dict)

    @property
    def alerts(self) -> dict[str, int]:
        """Each patient's worst finding (its SpO2 low one)."""
        return {key: self.findings[f"{key}:spo2_low"] for key in self.patients}


def _staff(
    conn: psycopg.Connection,
    username: str,
    role: str,
    language: str = "en",
    organisation: int | None = None,
) -> int:
    row = conn.execute(
        "INSERT INTO staff (username, display_name, role, language, phone, organisation_id) "
        "VALUES (%s, %s, %s, %s, '+393331234567', "
        "coalesce(%s, telemon_default_organisation())) RETURNING id",
        (username, username.replace(".", " ").title(), role, language, organisation),
    ).fetchone()
    assert row is not None
    return row[0]


def seed_world(conn: psycopg.Connection) -> World:
    staff = {
        "gp": _staff(conn, "dr.rossi", "gp"),
        "gp2": _staff(conn, "dr.bianchi", "gp"),
        "nurse": _staff(conn, "nurse.greco", "nurse"),
        "nurse_b": _staff(conn, "nurse.conti", "nurse"),
        "admin": _staff(conn, "admin", "admin"),
        "privacy": _staff(conn, "privacy.officer", "privacy"),
    }
    # The second organisation: a health agency with its own service centre.
    org_b = conn.execute(
        "INSERT INTO organisations (name) VALUES ('ASST Milano Nord') RETURNING id"
    ).fetchone()[0]
    for key, username, role in (
        ("org_b_gp", "dr.verdi", "gp"),
        ("org_b_nurse", "nurse.galli", "nurse"),
        ("org_b_admin", "admin.milano", "admin"),
        ("org_b_privacy", "privacy.milano", "privacy"),
    ):
        staff[key] = _staff(conn, username, role, organisation=org_b)
    # One argon2 hash for everyone: hashing costs ~0.3 s, by design.
    conn.execute("UPDATE staff SET password_hash = %s", (_password_hash(),))
    centre_a, centre_b = (
        conn.execute(
            "INSERT INTO care_teams (name, kind, duty_phone) VALUES (%s, 'service_centre', "
            "'+390212345678') RETURNING id",
            (name,),
        ).fetchone()[0]
        for name in ("Centrale Bergamo", "Centrale Brescia")
    )
    conn.execute("INSERT INTO care_team_members VALUES (%s, %s)", (centre_a, staff["nurse"]))
    conn.execute("INSERT INTO care_team_members VALUES (%s, %s)", (centre_b, staff["nurse_b"]))
    centre_org_b = conn.execute(
        "INSERT INTO care_teams (name, kind, duty_phone, organisation_id) "
        "VALUES ('Centrale Milano', 'service_centre', '+390287654321', %s) RETURNING id",
        (org_b,),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO care_team_members VALUES (%s, %s)", (centre_org_b, staff["org_b_nurse"])
    )
    now = datetime.now(UTC)
    enrolled = now - timedelta(days=11)
    patients = {}
    for key, code, given, family, gp, centre in (
        ("own", "P-0001", "Maria", "Colombo", staff["gp"], centre_a),
        ("other_gp", "P-0002", "Luigi", "Ferrari", staff["gp2"], centre_a),
        ("far", "P-0003", "Anna", "Ricci", staff["gp2"], centre_b),
        ("org_b", "P-0004", "Carla", "Marino", staff["org_b_gp"], centre_org_b),
    ):
        patients[key] = conn.execute(
            "INSERT INTO patients (code, given_name, family_name, birth_date, sex, gp_id, "
            "care_team_id, enrolled_at) VALUES (%s, %s, %s, '1948-03-02', 'female', %s, %s, %s) "
            "RETURNING id",
            (code, given, family, gp, centre, enrolled),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO patient_protocols (patient_id, protocol, overrides, started_at) "
            "VALUES (%s, %s, %s, %s)",
            (patients[key], "covid19_home_oximetry", Jsonb({}), enrolled),
        )
    conn.execute(
        "SELECT telemon_ensure_observation_partitions(%s, %s)",
        (now - timedelta(days=100), now + timedelta(days=1)),
    )
    # Ten quiet days, SpO2 and pulse every 6 h, before each patient's scenario.
    conn.execute(
        """
        INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, seq)
        SELECT %(now)s - make_interval(hours => h), p, m,
               CASE m WHEN 1 THEN 97 + (h %% 12 = 0)::int ELSE 80 + h %% 7 END,
               1, p * 100000 + h * 10 + m
        FROM generate_series(24, 234, 6) h, unnest(%(patients)s::bigint[]) p,
             (VALUES (1), (2)) metric(m)
        """,
        {"now": now, "patients": list(patients.values())},
    )
    refresh_rollup(conn, now - timedelta(days=100), now)
    # Then the engine's findings, each patient's evaluated when its readings came in: the own
    # patient's episode has three findings, the other GP's is amber, the far centre's red.
    for key, minutes_ago in (("other_gp", 90), ("own", 60), ("far", 60), ("org_b", 60)):
        at = now - timedelta(minutes=minutes_ago)
        for reading in SCENARIOS[key]:
            add_readings(conn, patients[key], [reading], at)
            evaluate(conn, at - timedelta(minutes=reading[1]), [patients[key]])
    episodes = {
        key: conn.execute(
            "SELECT id FROM episodes WHERE patient_id = %s AND state <> 'resolved'", (patient,)
        ).fetchone()[0]
        for key, patient in patients.items()
    }
    gw = conn.execute(
        "INSERT INTO gateways (code, patient_id, online, offline_since) "
        "VALUES ('GW-A', %s, false, now() - interval '3 hours') RETURNING id",
        (patients["own"],),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO devices (gateway_id, address, kind, battery_pct) "
        "VALUES (%s, 'AA:01', 'pulse_oximeter', 9)",
        (gw,),
    )
    # The SMS the engine queued go to the outbox (no Twilio here); Twilio refused one of them.
    Sender(conn, None, public_url=ENGINE_SETTINGS.public_url).run_once()
    conn.execute(
        "UPDATE notifications SET status = 'failed', last_error = 'Twilio error 30003' "
        "WHERE id = (SELECT min(id) FROM notifications WHERE episode_id = %s)",
        (episodes["own"],),
    )
    findings = {
        f"{key}:{rule}": alert_id
        for key, patient in patients.items()
        for alert_id, rule in conn.execute(
            "SELECT id, rule FROM alerts WHERE patient_id = %s", (patient,)
        )
    }
    newest = conn.execute(
        "SELECT DISTINCT ON (patient_id) patient_id, metric_id, measured_at FROM observations "
        "ORDER BY patient_id, measured_at DESC, metric_id"
    ).fetchall()
    by_id = {row[0]: row for row in newest}
    observations = {
        key: observation_id(p, METRICS_BY_ID[by_id[p][1]], by_id[p][2])
        for key, p in patients.items()
    }
    return World(staff, patients, episodes, findings, observations)


# Readings (metric, minutes before the evaluation, value) that make the real engine open:
SCENARIOS: dict[str, list[tuple[str, int, float]]] = {
    # SpO2 low (red, two readings), SpO2 falling (amber, 97 to 88 in a day) and a partial
    # NEWS2 (amber: SpO2 scores 3) at once.
    "own": [
        ("spo2", 18 * 60, 97),
        ("spo2", 12 * 60, 95),
        ("spo2", 6 * 60, 95),
        ("spo2", 10, 88),
        ("pulse_rate", 10, 96),
        ("body_temperature", 10, 37.4),
        ("spo2", 2, 88),
    ],
    # SpO2 low and a partial NEWS2 of 5 (SpO2 2, pulse 2, temperature 1), both amber; the
    # score is confirmed by the next set of readings.
    "other_gp": [
        ("spo2", 10, 94),
        ("pulse_rate", 10, 112),
        ("body_temperature", 10, 38.5),
        ("spo2", 6, 93),
        ("pulse_rate", 2, 114),
    ],
    "far": [("spo2", 10, 89), ("spo2", 2, 89)],  # SpO2 low, red
}
# The second organisation's patient goes through the matrix as "own" does: the same episode.
SCENARIOS["org_b"] = SCENARIOS["own"]


def add_readings(
    conn: psycopg.Connection,
    patient_id: int,
    readings: list[tuple[str, int, float]],
    at: datetime,
) -> None:
    """Store readings as ingest does, ``minutes`` before ``at`` each."""
    seq = conn.execute("SELECT coalesce(max(seq), 0) FROM observations").fetchone()[0]
    for i, (metric, minutes, value) in enumerate(readings, start=1):
        conn.execute(
            "INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, "
            "seq) VALUES (%s, %s, %s, %s, 1, %s)",
            (at - timedelta(minutes=minutes), patient_id, METRICS[metric].id, value, seq + i),
        )
    if readings:
        earliest = at - timedelta(minutes=max(m for _, m, _ in readings))
        refresh_rollup(conn, earliest, at + timedelta(seconds=1), [patient_id])


def refresh_rollup(
    conn: psycopg.Connection, start: datetime, end: datetime, patients: list[int] | None = None
) -> None:
    """The hourly rollup over these hours, as ingest's housekeeping refreshes it after a write."""
    conn.execute("SELECT telemon_refresh_observation_hourly(%s, %s, %s)", (start, end, patients))


def open_red_finding(conn: psycopg.Connection, patient_id: int) -> tuple[int, int]:
    """A red SpO2 finding put in the patient's episode as the engine does it (the lifecycle's
    ``open_finding`` and ``attach``), after resolving an episode already open: (episode, finding).
    For tests that need many fresh episodes; the engine itself opens the world's."""
    now = datetime.now(UTC)
    with conn.transaction():
        current = conn.execute(
            "SELECT id FROM episodes WHERE patient_id = %s AND state <> 'resolved'", (patient_id,)
        ).fetchone()
        if current is not None:
            nurse = conn.execute("SELECT min(id) FROM staff WHERE role = 'nurse'").fetchone()[0]
            episodes.act(conn, current[0], "resolve", actor=nurse, now=now, protocols=protocols())
        alert_id = open_finding(
            conn,
            patient_id=patient_id,
            protocol="covid19_home_oximetry",
            rule="spo2_low",
            kind="clinical",
            routing="gp_and_centre",
            severity=2,
            now=now,
            metric_id=METRICS["spo2"].id,
            value=88.0,
            reason="spo2:red",
            details={"reading_at": now.isoformat()},
        )
        assert alert_id is not None
        episodes.attach(
            conn,
            alert_id,
            patient_id=patient_id,
            severity=2,
            routing="gp_and_centre",
            protocol="covid19_home_oximetry",
            protocols=protocols(),
            settings=ENGINE_SETTINGS,
            now=now,
        )
    episode_id = conn.execute("SELECT episode_id FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    return episode_id[0], alert_id


def evaluate(conn: psycopg.Connection, at: datetime, patients: list[int]) -> None:
    """The real alerts engine, as after ingest's NOTIFY for these patients."""
    Engine(conn, ENGINE_SETTINGS, protocols()).evaluate(at, patients)


@pytest.fixture
def world(db: psycopg.Connection) -> World:
    return seed_world(db)


@pytest.fixture
def app(database_url: str):
    return create_app(
        database_url,
        public_url="http://testserver",
        language="en",
        twilio_auth_token="",
        sse_interval=0.2,
    )


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        yield client


@pytest.fixture
def server(database_url: str, world: World) -> Iterator[str]:
    """The dashboard on a real uvicorn (live_server.py) over the world, for the browser tests:
    its base URL. A module that seeds more (gp_cohort) asks for its own fixture beside this."""
    app = create_app(
        database_url,
        public_url="http://127.0.0.1",
        language="en",
        twilio_auth_token="",
        sse_interval=0.25,
    )
    with live_dashboard(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for a module's browser tests (tests/chromium.py)."""
    with launched_chromium() as browser:
        yield browser
