"""A patient's reply to a reminder at ``POST /sms/inbound``: signed as Twilio signs it (the real
``twilio`` RequestValidator over the public URL and the form), posted to the real app.

STOP (in the patient's words and language) opts out, recorded as by the patient via SMS and
audited; START/RIPRENDI opts back in; anything else, or an unknown number, is recorded and
answered with nothing clinical; forged requests change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from xml.etree import ElementTree

import psycopg
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from dashboard.app import create_app
from telemon.patient_sms import reply_for
from tests.dashboard.conftest import World
from tests.dashboard.support import login

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC_URL = "https://telemon.example.it"
PHONE = "+393331234567"
ENGLISH_PHONE = "+447700900456"


@pytest.fixture
def twilio_client(database_url: str) -> Iterator[TestClient]:
    app = create_app(database_url, public_url=PUBLIC_URL, language="en", twilio_auth_token=TOKEN)
    with TestClient(app, follow_redirects=False) as client:
        yield client


@pytest.fixture
def phones(world: World, db: psycopg.Connection) -> World:
    """The own patient (Italian) and the far one (English) have phones."""
    db.execute("UPDATE patients SET phone = %s WHERE id = %s", (PHONE, world.patients["own"]))
    db.execute(
        "UPDATE patients SET phone = %s, language = 'en' WHERE id = %s",
        (ENGLISH_PHONE, world.patients["far"]),
    )
    return world


_sids = iter(range(1, 10_000))


def text(
    client: TestClient,
    body: str,
    *,
    sender: str = PHONE,
    sid: str | None = None,
    signed_with: str | None = TOKEN,
):
    form = {
        "MessageSid": sid or f"SM{next(_sids):032x}",
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
    }
    headers = {}
    if signed_with is not None:
        signature = RequestValidator(signed_with).compute_signature(
            PUBLIC_URL + "/sms/inbound", form
        )
        headers["x-twilio-signature"] = signature
    return client.post("/sms/inbound", data=form, headers=headers)


def answer(response) -> list[str]:
    """The SMS the TwiML answer sends back."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/xml")
    return [m.text or "" for m in ElementTree.fromstring(response.text).iter("Message")]


def opt_out(db: psycopg.Connection, patient_id: int) -> tuple:
    return db.execute(
        "SELECT reminders_opt_out_at IS NOT NULL, reminders_opt_out_by, reminders_opt_out_via "
        "FROM patients WHERE id = %s",
        (patient_id,),
    ).fetchone()


def audited(db: psycopg.Connection, patient_id: int) -> list[tuple]:
    return db.execute(
        "SELECT action, actor_id, actor_username, details->>'via' FROM audit_log "
        "WHERE patient_id = %s AND action LIKE 'patient.reminders.%%' ORDER BY id",
        (patient_id,),
    ).fetchall()


def inbound(db: psycopg.Connection) -> list[tuple]:
    return db.execute(
        "SELECT from_address, body, patient_id, outcome FROM inbound_sms ORDER BY id"
    ).fetchall()


def test_stop_opts_the_patient_out_by_sms_and_riprendi_back_in(
    twilio_client: TestClient, client: TestClient, phones: World, db: psycopg.Connection
) -> None:
    patient = phones.patients["own"]

    stop = text(twilio_client, "  Stop   promemoria. ", sid="SM" + "a" * 32)

    assert answer(stop) == [reply_for("opt_out", "it")]
    assert opt_out(db, patient) == (True, None, "sms")
    assert audited(db, patient) == [("patient.reminders.opt_out", None, "patient (SMS)", "sms")]
    # Twilio retries a webhook it timed out on: the same message is answered alike, once applied.
    again = text(twilio_client, "  Stop   promemoria. ", sid="SM" + "a" * 32)
    assert answer(again) == [reply_for("opt_out", "it")]
    assert len(audited(db, patient)) == 1

    # The nurse's page and API say who recorded it: the patient, by SMS.
    login(client, "nurse.greco")
    page = client.get(f"/patients/{patient}")
    assert "recorded by the patient, by SMS" in page.text

    assert answer(text(twilio_client, "riprendi")) == [reply_for("opt_in", "it")]
    assert opt_out(db, patient) == (False, None, None)
    assert [a[0] for a in audited(db, patient)] == [
        "patient.reminders.opt_out",
        "patient.reminders.opt_in",
    ]
    assert [row[3] for row in inbound(db)] == ["opt_out", "opt_in"]


def test_each_language_s_keywords_and_answers(
    twilio_client: TestClient, phones: World, db: psycopg.Connection
) -> None:
    english = phones.patients["far"]
    for body, expected in (("ARRESTA", "opt_out"), ("start", "opt_in"), ("STOP", "opt_out")):
        assert answer(text(twilio_client, body, sender=ENGLISH_PHONE)) == [
            reply_for(expected, "en")  # type: ignore[arg-type]
        ]
    assert opt_out(db, english) == (True, None, "sms")


def test_a_staff_recorded_opt_out_keeps_its_who_when_the_patient_texts_stop_too(
    twilio_client: TestClient, phones: World, db: psycopg.Connection
) -> None:
    patient, nurse = phones.patients["own"], phones.staff["nurse"]
    db.execute(
        "UPDATE patients SET reminders_opt_out_at = now(), reminders_opt_out_by = %s, "
        "reminders_opt_out_via = 'staff' WHERE id = %s",
        (nurse, patient),
    )
    assert answer(text(twilio_client, "STOP")) == [reply_for("opt_out", "it")]
    assert opt_out(db, patient) == (True, nurse, "staff")
    assert audited(db, patient) == []  # nothing changed


def test_any_other_text_or_number_is_recorded_and_answered_with_nothing_clinical(
    twilio_client: TestClient, phones: World, db: psycopg.Connection
) -> None:
    patient = phones.patients["own"]
    worried = "Mi sento male, la saturazione è 88. Devo preoccuparmi?"

    replies = answer(text(twilio_client, worried)) + answer(
        text(twilio_client, "STOP", sender="+393330000001")
    )

    assert replies == [reply_for("unrecognised", "it"), reply_for("unknown_number", "en")]
    assert inbound(db) == [
        (PHONE, worried, patient, "unrecognised"),
        ("+393330000001", "STOP", None, "unknown_number"),
    ]
    assert opt_out(db, patient) == (False, None, None)
    for reply in replies:
        # No value, no alert, no condition: the one number is the emergency one.
        assert re.findall(r"\d+", reply) == ["112"]
        assert not re.search(r"saturazione|allerta|alert|88", reply, re.IGNORECASE)


def test_forged_or_malformed_messages_change_nothing(
    client: TestClient, twilio_client: TestClient, phones: World, db: psycopg.Connection
) -> None:
    answers = {
        "no token configured": text(client, "STOP"),
        "unsigned": text(twilio_client, "STOP", signed_with=None),
        "signed with another token": text(twilio_client, "STOP", signed_with="f" * 32),
    }
    assert {name: r.status_code for name, r in answers.items()} == dict.fromkeys(answers, 404)

    form = {"MessageSid": "SM" + "b" * 32, "From": PHONE}  # no Body
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + "/sms/inbound", form)
    missing = twilio_client.post(
        "/sms/inbound", data=form, headers={"x-twilio-signature": signature}
    )
    assert missing.status_code == 400
    assert text(twilio_client, "STOP\x00").status_code == 400
    assert inbound(db) == []
    assert opt_out(db, phones.patients["own"]) == (False, None, None)


def test_the_service_centre_reads_what_was_received_on_the_sms_page(
    twilio_client: TestClient, client: TestClient, phones: World, db: psycopg.Connection
) -> None:
    worried = "Ho il fiato corto da stamattina"
    text(twilio_client, worried)
    text(twilio_client, "Chi siete?", sender="+393330000002")

    login(client, "nurse.greco")  # the own patient's centre
    page = client.get("/sms")
    inbound = page.text[page.text.index('id="inbound"') :]
    assert worried in inbound and "Chi siete?" in inbound
    assert "not a command: answered that nobody reads this number" in inbound
    assert "unknown number: answered that nobody reads it" in inbound
    [audited] = db.execute(
        "SELECT details->'patients' FROM audit_log WHERE action = 'sms.inbound.read'"
    ).fetchall()
    assert audited == ([phones.patients["own"]],)

    client.cookies.clear()
    login(client, "nurse.conti")  # another centre: the stranger's message only
    inbound = client.get("/sms").text
    assert worried not in inbound and "Chi siete?" in inbound
