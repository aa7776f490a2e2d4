"""A small cooperative for the dashboard tests: two service centres, two GPs, nurses, an admin."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from dashboard.accounts import hash_password
from dashboard.app import create_app

PASSWORD = "correct-horse-battery"


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)


@dataclass(frozen=True)
class World:
    staff: dict[str, int]
    patients: dict[str, int]  # own = gp1's, centre A; other_gp = gp2's, centre A; far = centre B
    alerts: dict[str, int]


def _staff(conn: psycopg.Connection, username: str, role: str, language: str = "en") -> int:
    row = conn.execute(
        "INSERT INTO staff (username, display_name, role, language, phone) "
        "VALUES (%s, %s, %s, %s, '+393331234567') RETURNING id",
        (username, username.replace(".", " ").title(), role, language),
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
    }
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
    patients = {}
    for key, code, given, family, gp, centre in (
        ("own", "P-0001", "Maria", "Colombo", staff["gp"], centre_a),
        ("other_gp", "P-0002", "Luigi", "Ferrari", staff["gp2"], centre_a),
        ("far", "P-0003", "Anna", "Ricci", staff["gp2"], centre_b),
    ):
        patients[key] = conn.execute(
            "INSERT INTO patients (code, given_name, family_name, birth_date, sex, gp_id, "
            "care_team_id) VALUES (%s, %s, %s, '1948-03-02', 'female', %s, %s) RETURNING id",
            (code, given, family, gp, centre),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO patient_protocols (patient_id, protocol, overrides) VALUES (%s, %s, %s)",
            (patients[key], "covid19_home_oximetry", Jsonb({})),
        )
    now = datetime.now(UTC)
    conn.execute(
        "SELECT telemon_ensure_observation_partitions(%s, %s)",
        (now - timedelta(days=100), now + timedelta(days=1)),
    )
    # Every 6 h for 10 days: SpO2 (a dip below 92 in the last day) and pulse rate.
    conn.execute(
        """
        INSERT INTO observations (measured_at, patient_id, metric_id, value, gateway_id, seq)
        SELECT %(now)s - make_interval(hours => h), p, m,
               CASE m WHEN 1 THEN 97 - (h < 24)::int * 5 + (h %% 12 = 0)::int
                      ELSE 80 + h %% 7 END,
               1, p * 100000 + h * 10 + m
        FROM generate_series(0, 234, 6) h, unnest(%(patients)s::bigint[]) p,
             (VALUES (1), (2)) metric(m)
        """,
        {"now": now, "patients": list(patients.values())},
    )
    alerts = {}
    for key, severity in (("own", 2), ("other_gp", 1), ("far", 2)):
        alerts[key] = insert_alert(conn, patients[key], severity, minutes_ago=30 * severity)
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
    conn.execute(
        "INSERT INTO notifications (idempotency_key, alert_id, recipient_kind, to_address, body, "
        "status, last_error) VALUES ('k1', %s, 'gp', '+393331234567', 'Telemon: SpO2 88', "
        "'failed', 'Twilio error 30003'), ('k2', %s, 'gp', '+393331234567', 'Telemon: far', "
        "'outboxed', NULL)",
        (alerts["own"], alerts["far"]),
    )
    return World(staff, patients, alerts)


def insert_alert(
    conn: psycopg.Connection,
    patient_id: int,
    severity: int,
    *,
    minutes_ago: int = 5,
    rule: str | None = None,
    kind: str = "clinical",
) -> int:
    row = conn.execute(
        "INSERT INTO alerts (patient_id, protocol, rule, kind, severity, opened_at, metric_id, "
        "trigger_value, reason) VALUES (%s, 'covid19_home_oximetry', %s, %s, %s, "
        "now() - make_interval(mins => %s), 1, 88, 'SpO2 below 92%%') RETURNING id",
        (patient_id, rule or f"rule_{severity}_{minutes_ago}", kind, severity, minutes_ago),
    ).fetchone()
    assert row is not None
    return row[0]


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


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in; returns the session's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.text
    return client.get("/api/me").json()["csrf_token"]
