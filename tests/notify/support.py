"""Helpers for the SMS path tests: a cohort in the database, a clock, the fake's gateway.

Findings and episodes are made the way the alerts engine makes them (``alerts.lifecycle`` and
``alerts.episodes.attach``, in one transaction), and people act on episodes through
``alerts.episodes.act``: the SMS these tests follow are the ones those writers queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import psycopg
from psycopg.rows import dict_row

from alerts import episodes
from alerts.lifecycle import Change, finding_transition, open_episode, open_finding
from alerts.notify.sender import RetryPolicy
from alerts.notify.twilio_gateway import TwilioConfig, TwilioGateway
from alerts.protocol import Protocol, load_protocols
from telemon.alert_lifecycle import PersonAction
from telemon.config import Settings
from telemon.metrics import METRICS
from tests.fakes import FakeTwilio

PUBLIC_URL = "https://telemon.example.it"
SENDER_NUMBER = "+15005550006"
GP_PHONE = "+393331112222"
DUTY_PHONE = "+390212345678"
# Tuesday 10 March 2026, 10:00 in Rome: nobody's quiet hours.
MORNING = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
CLIENT_TIMEOUT = 0.3  # seconds; the fake's slow replies take longer
TEST_POLICY = RetryPolicy(max_attempts=3, first_delay=timedelta(minutes=1))
# The shipped protocols: their escalation chains are the ones under test.
PROTOCOLS: Mapping[str, Protocol] = load_protocols()
SPO2 = METRICS["spo2"].id


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
    return Cohort(gp_id, centre_id, add_patient(db, gp_id))


def add_patient(db: psycopg.Connection, gp_id: int, code: str = "P-0001") -> int:
    return db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id) "
        "VALUES (%s, 'Maria', 'Rossi', %s) RETURNING id",
        (code, gp_id),
    ).fetchone()[0]


@dataclass(frozen=True, slots=True)
class Raised:
    alert_id: int
    episode_id: int
    counts: episodes.Counts


def raise_finding(
    db: psycopg.Connection,
    patient_id: int,
    settings: Settings,
    now: datetime,
    *,
    severity: int = 2,
    rule: str = "spo2_low",
    routing: str = "gp_and_centre",
    protocol: str = "copd",
    metric_id: int | None = SPO2,
    value: float | None = 86.0,
) -> Raised:
    """Open a finding as the engine does: it joins the patient's open episode, or opens one,
    and the SMS that calls for are queued in the same transaction."""
    with db.transaction():
        alert_id = _finding(
            db, patient_id, now, severity, rule, routing, protocol, metric_id, value
        )
        counts = episodes.attach(
            db,
            alert_id,
            patient_id=patient_id,
            severity=severity,
            routing=routing,
            protocol=protocol,
            protocols=PROTOCOLS,
            settings=settings,
            now=now,
        )
    return Raised(alert_id, episode_of(db, alert_id), counts)


def open_silent_episode(
    db: psycopg.Connection, patient_id: int, now: datetime, *, severity: int = 2
) -> Raised:
    """A red finding in an episode of its own with no SMS queued and no escalation due: for
    tests that queue the SMS themselves."""
    with db.transaction():
        alert_id = _finding(db, patient_id, now, severity, "spo2_low", "gp_and_centre", "copd")
        episode_id = open_episode(
            db,
            patient_id=patient_id,
            severity=severity,
            alert_level=severity,
            protocol="copd",
            escalation_step=0,
            next_escalation_at=None,
            now=now,
            alert_id=alert_id,
        )
        assert episode_id is not None, "the patient already has an open episode"
        db.execute("UPDATE alerts SET episode_id = %s WHERE id = %s", (episode_id, alert_id))
    return Raised(alert_id, episode_id, episodes.Counts(opened=1))


def _finding(
    db: psycopg.Connection,
    patient_id: int,
    now: datetime,
    severity: int,
    rule: str,
    routing: str,
    protocol: str,
    metric_id: int | None = SPO2,
    value: float | None = 86.0,
) -> int:
    alert_id = open_finding(
        db,
        patient_id=patient_id,
        protocol=protocol,
        rule=rule,
        kind="not_measuring" if routing == "centre_task" else "clinical",
        routing=routing,
        severity=severity,
        now=now,
        metric_id=metric_id,
        value=value,
        reason=rule,
        details={},
    )
    assert alert_id is not None, f"a finding for {rule} is open already"
    return alert_id


def clear_finding(
    db: psycopg.Connection, alert_id: int, settings: Settings, now: datetime
) -> episodes.Counts:
    """The readings cleared a finding: resolved as the engine resolves it, and its episode
    brought in line (resolved with its last finding, the SMS that lost their point cancelled)."""
    with db.transaction():
        finding_transition(
            db,
            alert_id,
            "auto_resolved",
            now=now,
            changes={"resolved_at": now, "outcome": "auto_resolved"},
        )
        return episodes.settle(
            db,
            episode_of(db, alert_id),
            protocols=PROTOCOLS,
            settings=settings,
            now=now,
            alert_id=alert_id,
        )


def episode_of(db: psycopg.Connection, alert_id: int) -> int:
    return db.execute("SELECT episode_id FROM alerts WHERE id = %s", (alert_id,)).fetchone()[0]


def queue_duty_phone_sms(
    db: psycopg.Connection, cohort: Cohort, settings: Settings, *, now: datetime
) -> Raised:
    """Open a red episode whose only SMS goes to the duty phone (no GP phone): one row."""
    db.execute("UPDATE staff SET phone = NULL WHERE id = %s", (cohort.gp_id,))
    return raise_finding(db, cohort.patient_id, settings, now)


def open_red_episodes(
    db: psycopg.Connection, cohort: Cohort, settings: Settings, count: int, now: datetime
) -> list[Raised]:
    """``count`` patients of the cohort's GP, each with a red episode: 2 SMS each."""
    return [
        raise_finding(db, add_patient(db, cohort.gp_id, f"P-R{n:03d}"), settings, now)
        for n in range(count)
    ]


def add_nurse(db: psycopg.Connection) -> int:
    return db.execute(
        "INSERT INTO staff (username, display_name, role) "
        "VALUES ('nurse.greco', 'Anna Greco', 'nurse') RETURNING id"
    ).fetchone()[0]


def act(
    db: psycopg.Connection,
    nurse_id: int,
    episode_id: int,
    action: PersonAction,
    now: datetime,
    *,
    settings: Settings | None = None,
    note: str = "",
    outcome: str | None = None,
) -> Change:
    """A nurse's action on an episode, in its own transaction as the dashboard runs it."""
    with db.transaction():
        return episodes.act(
            db,
            episode_id,
            action,
            actor=nurse_id,
            now=now,
            protocols=PROTOCOLS,
            settings=settings,
            note=note,
            outcome=outcome,
        )


def escalate(db: psycopg.Connection, settings: Settings, now: datetime) -> episodes.Counts:
    """One tick of the engine's escalation: the steps due, the acknowledgements lapsed."""
    with db.transaction():
        return episodes.escalate_due(db, protocols=PROTOCOLS, settings=settings, now=now)


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
    """The episodes' events of these kinds, oldest first."""
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT * FROM episode_events WHERE kind = ANY(%s) ORDER BY id", (list(kinds),)
        ).fetchall()


def episode(db: psycopg.Connection, episode_id: int) -> dict:
    with db.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT * FROM episodes WHERE id = %s", (episode_id,)).fetchone()
