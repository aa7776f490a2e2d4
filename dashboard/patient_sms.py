"""A patient's SMS to telemon's number: opting out of reminders (or back in) by replying.

Twilio forwards every SMS to our number to ``POST /sms/inbound`` (``dashboard.routes.sms``
checks its signature). Each is recorded in ``inbound_sms`` with what was made of it, once per
Twilio message (Twilio retries a webhook that timed out). The sender is looked up by phone:
every patient with that number (a couple may share one) is opted out, or back in, recorded as
by the patient via SMS, with the time, and audited. Any other text, or an unknown number, is
recorded and answered by :func:`telemon.patient_sms.reply_for`, which carries nothing clinical.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg

from dashboard import audit
from telemon.metrics import Language
from telemon.patient_sms import Outcome, command_of, reply_for

# The audit trail's actor for what the patient did by SMS (no member of staff acted).
PATIENT_BY_SMS = "patient (SMS)"


@dataclass(frozen=True, slots=True)
class InboundSms:
    message_sid: str
    from_address: str
    body: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Handled:
    outcome: Outcome
    patient_ids: tuple[int, ...]
    reply: str
    repeated: bool = False  # Twilio delivered the same message again: nothing changed twice


def handle(conn: psycopg.Connection, sms: InboundSms, default_language: Language) -> Handled:
    """Record the SMS, apply the command it is, and say what to answer; one transaction."""
    with conn.transaction():
        patients = conn.execute(
            "SELECT id, language FROM patients WHERE phone = %s ORDER BY id FOR UPDATE",
            (sms.from_address,),
        ).fetchall()
        ids = tuple(p[0] for p in patients)
        language: Language = patients[0][1] if patients else default_language
        stored = conn.execute(
            "SELECT outcome FROM inbound_sms WHERE message_sid = %s", (sms.message_sid,)
        ).fetchone()
        if stored is not None:
            return Handled(stored[0], ids, reply_for(stored[0], language), repeated=True)
        command = command_of(sms.body)
        outcome: Outcome = "unknown_number" if not ids else command or "unrecognised"
        conn.execute(
            "INSERT INTO inbound_sms (received_at, message_sid, from_address, body, patient_id, "
            "outcome) VALUES (%s, %s, %s, %s, %s, %s)",
            # One patient named; several sharing the phone are in the audit rows instead.
            (
                sms.received_at,
                sms.message_sid,
                sms.from_address,
                sms.body,
                ids[0] if len(ids) == 1 else None,
                outcome,
            ),
        )
        if outcome in ("opt_out", "opt_in"):
            for patient_id in _changed(conn, ids, outcome == "opt_out", sms.received_at):
                audit.record(
                    conn,
                    None,
                    f"patient.reminders.{outcome}",
                    patient_id=patient_id,
                    object_type="patient",
                    object_id=patient_id,
                    details={"via": "sms", "message_sid": sms.message_sid},
                    username=PATIENT_BY_SMS,
                )
    return Handled(outcome, ids, reply_for(outcome, language))


def _changed(
    conn: psycopg.Connection, ids: tuple[int, ...], opted_out: bool, at: datetime
) -> list[int]:
    """Opt the patients out (or in); those whose state changed. An opt-out already on record,
    by staff or an earlier SMS, keeps its who and when."""
    if opted_out:
        query = (
            "UPDATE patients SET reminders_opt_out_at = %s, reminders_opt_out_by = NULL, "
            "reminders_opt_out_via = 'sms' "
            "WHERE id = ANY(%s) AND reminders_opt_out_at IS NULL RETURNING id"
        )
        params: tuple[object, ...] = (at, list(ids))
    else:
        query = (
            "UPDATE patients SET reminders_opt_out_at = NULL, reminders_opt_out_by = NULL, "
            "reminders_opt_out_via = NULL "
            "WHERE id = ANY(%s) AND reminders_opt_out_at IS NOT NULL RETURNING id"
        )
        params = (list(ids),)
    return sorted(r[0] for r in conn.execute(query, params))
