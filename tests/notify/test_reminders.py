"""Patient reminders end to end: the real engine decides, the real sender and twilio client
send to the fake Twilio REST server, delivery reports move the row, and the nurses' task still
opens after the grace period."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from alerts.engine import Engine
from alerts.notify import StatusReport, apply_status_callback
from alerts.notify.routing import DISCHARGED, MEASURED, OPTED_OUT, ROME
from alerts.notify.texts import SEVERITY_WORDS, TEMPLATES
from alerts.reminders.texts import render_reminder
from dashboard.authz import Principal
from dashboard.enrolment import discharge
from dashboard.operations import notifications as sms_page
from dashboard.reminders import set_opt_out
from telemon.config import Settings
from tests.alerts_engine.support import add_readings
from tests.fakes import FakeTwilio, Reply
from tests.notify.conftest import SenderFactory
from tests.notify.support import PROTOCOLS, PUBLIC_URL, Clock, add_nurse, notifications

PHONE = "+393339998877"
VALUES = (96.0, 95.0)  # the patient's readings: no reminder may carry them


def rome(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=ROME).astimezone(UTC)


@pytest.fixture
def engine(database_url: str, settings: Settings) -> Iterator[Engine]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield Engine(conn, settings, PROTOCOLS)


def enrol(db: psycopg.Connection, code: str, *, language: str = "it", phone: str = PHONE) -> int:
    """A COVID home-oximetry patient (a reading every 8 h, nurses' task after 20 h without),
    enrolled a month ago, whose last two readings were at 08:00 and 09:00 on 10 March."""
    gp = db.execute("SELECT id FROM staff WHERE username = 'dr.neri'").fetchone()
    gp_id = (
        gp[0]
        if gp
        else db.execute(
            "INSERT INTO staff (username, display_name, role) VALUES ('dr.neri', 'Dr. Neri', 'gp') "
            "RETURNING id"
        ).fetchone()[0]
    )
    team = db.execute(
        "INSERT INTO care_teams (name, kind) VALUES ('Centro', 'service_centre') "
        "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind RETURNING id"
    ).fetchone()[0]
    patient_id = db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id, care_team_id, phone, "
        "language) VALUES (%s, 'Maria', 'Rossi', %s, %s, %s, %s) RETURNING id",
        (code, gp_id, team, phone, language),
    ).fetchone()[0]
    db.execute(
        "INSERT INTO patient_protocols (patient_id, protocol, started_at) "
        "VALUES (%s, 'covid19_home_oximetry', %s)",
        (patient_id, rome(10, 9) - timedelta(days=30)),
    )
    add_readings(db, patient_id, "spo2", [(rome(10, 8), VALUES[0]), (rome(10, 9), VALUES[1])])
    return patient_id


def reminders(db: psycopg.Connection) -> list[dict]:
    return [n for n in notifications(db) if n["reason"] == "reminder"]


def test_a_missed_slot_texts_the_patient_once_by_day_not_at_night_within_the_cap(
    db: psycopg.Connection,
    engine: Engine,
    make_sender: SenderFactory,
    fake_twilio: FakeTwilio,
    clock: Clock,
) -> None:
    patient = enrol(db, "P-REM1")
    sender = make_sender()
    clock.now = rome(10, 17, 45)  # the sender's

    engine.evaluate(rome(10, 17, 29), None)  # slot due at 17:00, missed at 17:30
    assert reminders(db) == []
    engine.evaluate(rome(10, 17, 30), None)
    engine.evaluate(rome(10, 17, 45), None)  # the same slot: written once
    [row] = reminders(db)
    assert (row["recipient_kind"], row["patient_id"], row["episode_id"]) == (
        "patient",
        patient,
        None,
    )
    sender.run_once()
    [message] = fake_twilio.messages
    assert (message["to"], message["body"]) == (PHONE, render_reminder("spo2", "it"))

    # Delivery reports move the row as they do the clinical SMS.
    sid = notifications(db)[0]["provider_id"]
    report = StatusReport(message_sid=sid, message_status="delivered", notification_id=row["id"])
    assert apply_status_callback(db, report) == "updated"
    assert reminders(db)[0]["status"] == "delivered"

    # Slot 2 falls due at 01:00: nothing in the night, one reminder at 08:30.
    for hour in (21, 22, 23):
        engine.evaluate(rome(10, hour, 30), None)
    for hour in (0, 1, 2, 5, 7, 8):
        engine.evaluate(rome(11, hour, 29), None)
    assert len(reminders(db)) == 1
    engine.evaluate(rome(11, 8, 30), None)
    engine.evaluate(rome(11, 9, 30), None)  # slot 3 (09:00): the second of the day
    engine.evaluate(rome(11, 17, 30), None)  # slot 4: over the cap of 2 a day
    sent = reminders(db)
    assert [r["created_at"] for r in sent] == [rome(10, 17, 30), rome(11, 8, 30), rome(11, 9, 30)]
    assert {r["idempotency_key"] for r in sent} == {
        f"reminder:patient:{patient}:spo2:{int(rome(day, hour).timestamp())}"
        for day, hour in ((10, 17), (11, 1), (11, 9))
    }

    # The nurses' not-measuring task opened as before, after the grace period (20 h).
    [task] = db.execute(
        "SELECT opened_at FROM alerts WHERE patient_id = %s AND routing = 'centre_task'",
        (patient,),
    ).fetchall()
    assert rome(11, 5) <= task[0] <= rome(11, 8, 30)


def test_opted_out_and_phoneless_patients_get_nothing_and_english_speakers_english(
    db: psycopg.Connection,
    engine: Engine,
    make_sender: SenderFactory,
    fake_twilio: FakeTwilio,
    clock: Clock,
) -> None:
    clock.now = rome(10, 18)
    opted_out = enrol(db, "P-REM2")
    nurse = add_nurse(db)
    db.execute(
        "UPDATE patients SET reminders_opt_out_at = %s, reminders_opt_out_by = %s WHERE id = %s",
        (rome(10, 9), nurse, opted_out),
    )
    english = enrol(db, "P-REM3", language="en", phone="+447700900123")

    engine.evaluate(rome(10, 18), None)
    make_sender().run_once()

    assert [(r["patient_id"], r["to_address"]) for r in reminders(db)] == [
        (english, "+447700900123")
    ]
    assert [m["body"] for m in fake_twilio.messages] == [render_reminder("spo2", "en")]


def test_a_patient_whose_gateway_went_offline_is_not_reminded(
    db: psycopg.Connection, engine: Engine, make_sender: SenderFactory, clock: Clock
) -> None:
    """Readings taken while the gateway is offline wait in its outbox: the nurses' worklist of
    offline gateways covers it, a 'please measure' SMS would ask for what was likely done."""
    clock.now = rome(10, 18)
    offline, online = enrol(db, "P-REM6"), enrol(db, "P-REM7")
    for code, patient_id, is_online in (("GW-REM6", offline, False), ("GW-REM7", online, True)):
        db.execute(
            "INSERT INTO gateways (code, patient_id, online, last_seen_at) VALUES (%s, %s, %s, %s)",
            (code, patient_id, is_online, rome(10, 9)),
        )

    engine.evaluate(rome(10, 18), None)
    make_sender().run_once()

    assert [r["patient_id"] for r in reminders(db)] == [online]


def test_reminders_in_the_outbox_show_as_the_patients_kind(
    db: psycopg.Connection, engine: Engine, make_sender: SenderFactory, clock: Clock
) -> None:
    clock.now = rome(10, 18)
    patient = enrol(db, "P-REM4")
    nurse = add_nurse(db)
    db.execute(
        "INSERT INTO care_team_members SELECT care_team_id, %s FROM patients WHERE id = %s",
        (nurse, patient),
    )
    engine.evaluate(rome(10, 18), None)
    make_sender(outbox=True).run_once()  # no Twilio credentials: the demo

    user = Principal(nurse, "nurse.greco", "Anna Greco", "nurse", "it", "x", None)
    [item] = sms_page(db, user, "outboxed")
    assert (item.recipient_kind, item.patient_id, item.to_address) == ("patient", patient, PHONE)


@pytest.mark.parametrize("language", ["it", "en"])
@pytest.mark.parametrize("metric", ["spo2", "glucose", "body_weight", "systolic", "other"])
def test_no_reminder_carries_a_value_or_an_alert_s_wording(metric: str, language: str) -> None:
    text = render_reminder(metric, language)  # type: ignore[arg-type]
    assert not re.search(r"\d", text), "no number at all: no value, no threshold, no time"
    assert not any(f"{v:g}" in text for v in VALUES)
    words = set(re.findall(r"[A-Za-z]+", text.lower()))
    alert_words = {w.lower() for w in SEVERITY_WORDS[language].values()} | {"allerta", "alert"}
    assert not words & alert_words
    for protocol in PROTOCOLS.values():
        for rule in protocol.rules:
            assert rule.title.lower() not in text.lower()
            assert rule.title_it.lower() not in text.lower()
    # Nothing of the clinical SMS's own wording ("allerta {severity} non ancora presa in carico").
    for template in TEMPLATES[language].values():
        for fragment in re.split(r"\{[a-z_]+\}", template.removeprefix("Telemon:")):
            fragment = fragment.strip(" .,:")
            if len(fragment) >= 8:
                assert fragment.lower() not in text.lower()


def _cancelled(db: psycopg.Connection) -> dict[int, str]:
    return {
        r["patient_id"]: r["cancel_reason"] for r in reminders(db) if r["status"] == "cancelled"
    }


def test_a_reminder_being_retried_is_cancelled_once_the_patient_measures(
    db: psycopg.Connection,
    engine: Engine,
    make_sender: SenderFactory,
    fake_twilio: FakeTwilio,
    clock: Clock,
) -> None:
    patient = enrol(db, "P-REM8")
    nurse = add_nurse(db)
    db.execute(
        "INSERT INTO care_team_members SELECT care_team_id, %s FROM patients WHERE id = %s",
        (nurse, patient),
    )
    sender = make_sender()
    engine.evaluate(rome(10, 17, 30), None)
    fake_twilio.reply_with(Reply.server_error())
    clock.now = rome(10, 17, 31)
    assert sender.run_once().retrying == 1
    [row] = reminders(db)
    assert (row["status"], row["attempts"]) == ("pending", 1)

    # An unreliable reading is no measurement (the engine would not count it either)...
    add_readings(db, patient, "spo2", [(rome(10, 17, 33), 93.0, ["measurement_ongoing"])])
    clock.now = rome(10, 17, 34)  # the retry's time has come
    assert sender.run_once().cancelled == 0
    assert fake_twilio.messages[0]["to"] == PHONE
    db.execute("DELETE FROM notifications")
    fake_twilio.messages.clear()

    # ... a reliable one, while the retry waits, is: the reminder never leaves.
    engine.evaluate(rome(10, 17, 35), None)
    [row] = reminders(db)
    fake_twilio.reply_with(Reply.server_error())
    clock.now = rome(10, 17, 36)
    assert sender.run_once().retrying == 1
    add_readings(db, patient, "spo2", [(rome(10, 17, 38), 94.0)])
    clock.now = rome(10, 17, 40)
    report = sender.run_once()
    assert (report.cancelled, report.sent) == (1, 0)
    assert fake_twilio.messages == []
    assert _cancelled(db) == {patient: MEASURED}

    # The operator's page of SMS says which and why.
    user = Principal(nurse, "nurse.greco", "Anna Greco", "nurse", "it", "x", None)
    [item] = sms_page(db, user, "cancelled")
    assert (item.id, item.patient_id, item.cancel_reason) == (row["id"], patient, MEASURED)


def test_queued_reminders_are_cancelled_when_the_patient_opts_out_is_discharged_or_measures(
    db: psycopg.Connection,
    engine: Engine,
    make_sender: SenderFactory,
    fake_twilio: FakeTwilio,
    clock: Clock,
) -> None:
    opts_out, discharged, measures, reminded = (
        enrol(db, f"P-REM-C{n}", phone=f"+39333000000{n}") for n in range(4)
    )
    nurse = add_nurse(db)
    db.execute(
        "INSERT INTO care_team_members SELECT DISTINCT care_team_id, %s FROM patients", (nurse,)
    )
    engine.evaluate(rome(10, 17, 30), None)
    assert len(reminders(db)) == 4

    nurse_user = Principal(nurse, "nurse.greco", "Anna Greco", "nurse", "it", "x", None)
    set_opt_out(db, nurse_user, opts_out, True)
    admin = db.execute(
        "INSERT INTO staff (username, display_name, role) VALUES ('admin', 'Admin', 'admin') "
        "RETURNING id"
    ).fetchone()[0]
    discharge(
        db,
        Principal(admin, "admin", "Admin", "admin", "it", "x", None),
        discharged,
        on=rome(10, 17, 40).date(),
        reason="Guarito",
        now=rome(10, 17, 40),
        public_url=PUBLIC_URL,
    )
    add_readings(db, measures, "spo2", [(rome(10, 17, 41), 97.0)])

    clock.now = rome(10, 17, 45)
    report = make_sender().run_once()

    assert (report.cancelled, report.sent) == (3, 1)
    assert [m["to"] for m in fake_twilio.messages] == ["+393330000003"]
    assert _cancelled(db) == {opts_out: OPTED_OUT, discharged: DISCHARGED, measures: MEASURED}
    assert {r["patient_id"]: r["status"] for r in reminders(db)}[reminded] == "sent"


def test_a_reminder_left_in_flight_by_a_dead_sender_is_cancelled_if_not_at_twilio_and_moot(
    db: psycopg.Connection,
    engine: Engine,
    make_sender: SenderFactory,
    fake_twilio: FakeTwilio,
    clock: Clock,
) -> None:
    """A sender that died after claiming (row 'sending', committed; its session and advisory
    lock gone): recovery asks Twilio, finds nothing, and the patient has measured meanwhile."""
    patient = enrol(db, "P-REM9")
    engine.evaluate(rome(10, 17, 30), None)
    db.execute("UPDATE notifications SET status = 'sending', attempts = 1")
    add_readings(db, patient, "spo2", [(rome(10, 17, 40), 96.0)])
    clock.now = rome(10, 17, 45)

    report = make_sender().run_once()

    assert (report.cancelled, report.outcome_unknown, report.sent) == (1, 0, 0)
    assert [r.method for r in fake_twilio.requests] == ["GET"]  # asked, never sent
    assert _cancelled(db) == {patient: MEASURED}
