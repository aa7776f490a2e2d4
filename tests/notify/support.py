"""Helpers for the SMS path tests: a cohort in the database, a clock, the fake's gateway."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import psycopg
from psycopg.rows import dict_row

from alerts.notify import enqueue_alert_notifications
from alerts.notify.sender import RetryPolicy
from alerts.notify.twilio_gateway import TwilioConfig, TwilioGateway
from dashboard.authz import Principal
from telemon.config import Settings
from tests.fakes import FakeTwilio

PUBLIC_URL = "https://telemon.example.it"
SENDER_NUMBER = "+15005550006"
GP_PHONE = "+393331112222"
DUTY_PHONE = "+390212345678"
# Tuesday 10 March 2026, 10:00 in Rome: nobody's quiet hours.
MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
CLIENT_TIMEOUT = 0.3  # seconds; the fake's slow replies take longer
TEST_POLICY = RetryPolicy(max_attempts=3, first_delay=timedelta(minutes=1))


class Clock:
    def __init__(self, now: datetime = MORNING) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True, slots=True)
class Cohort:
    gp_id: int
    centre_id: int
    patient_id: int


def add_cohort(
    db: psycopg.Connection,
    *,
    gp_language: str = "it",
    quiet_hours: tuple[time, time] | None = None,
    duty_phone: str | None = DUTY_PHONE,
) -> Cohort:
    quiet_start, quiet_end = quiet_hours or (None, None)
    gp_id = db.execute(
        "INSERT INTO staff (username, display_name, role, phone, language, quiet_hours_start, "
        "quiet_hours_end) VALUES ('dr.bianchi', 'Dr. Bianchi', 'gp', %s, %s, %s, %s) "
        "RETURNING id",
        (GP_PHONE, gp_language, quiet_start, quiet_end),
    ).fetchone()[0]
    centre_id = db.execute(
        "INSERT INTO care_teams (name, kind, duty_phone) "
        "VALUES ('Centrale operativa', 'service_centre', %s) RETURNING id",
        (duty_phone,),
    ).fetchone()[0]
    patient_id = db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id) "
        "VALUES ('P-0001', 'Maria', 'Rossi', %s) RETURNING id",
        (gp_id,),
    ).fetchone()[0]
    return Cohort(gp_id, centre_id, patient_id)


def open_alert(
    db: psycopg.Connection,
    patient_id: int,
    *,
    severity: int = 2,
    kind: str = "clinical",
    state: str = "open",
    rule: str = "spo2_low",
    metric_id: int | None = 1,
    value: float | None = 86.0,
) -> int:
    return db.execute(
        "INSERT INTO alerts (patient_id, protocol, rule, kind, severity, state, metric_id, "
        "trigger_value) VALUES (%s, 'copd', %s, %s, %s, %s, %s, %s) RETURNING id",
        (patient_id, rule, kind, severity, state, metric_id, value),
    ).fetchone()[0]


def queue_duty_phone_sms(
    db: psycopg.Connection, cohort: Cohort, settings: Settings, *, now: datetime | None = None
) -> int:
    """Open a red alert whose only SMS goes to the duty phone (no GP phone): one row to follow."""
    db.execute("UPDATE staff SET phone = NULL")
    alert_id = open_alert(db, cohort.patient_id)
    enqueue_alert_notifications(db, alert_id, "opened", settings, now=now)
    return alert_id


def add_nurse(db: psycopg.Connection) -> Principal:
    """A service-centre nurse, as the dashboard's actions see her once logged in."""
    nurse_id = db.execute(
        "INSERT INTO staff (username, display_name, role) "
        "VALUES ('nurse.greco', 'Anna Greco', 'nurse') RETURNING id"
    ).fetchone()[0]
    return Principal(nurse_id, "nurse.greco", "Anna Greco", "nurse", "it", "csrf", None)


def gateway_for(fake: FakeTwilio, sender: str = SENDER_NUMBER) -> TwilioGateway:
    return TwilioGateway(
        TwilioConfig(
            fake.account_sid, fake.auth_token, sender, fake.base_url, timeout=CLIENT_TIMEOUT
        )
    )


def notifications(db: psycopg.Connection) -> list[dict]:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM notifications ORDER BY id").fetchall()


def events(db: psycopg.Connection, *kinds: str) -> list[dict]:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM alert_events WHERE kind = ANY(%s) ORDER BY id", (list(kinds),)
        ).fetchall()
