"""Writing the reminders due now to the notifications outbox, once per patient and slot.

The same table, sender, Twilio client and delivery reports as the clinical SMS: a reminder row
has ``recipient_kind`` 'patient', ``reason`` 'reminder', the patient's id and no episode. Its
idempotency key names the patient, the metric and the slot's due time, so an engine restarted,
or two engines, write one row per missed slot; the daily cap is counted on the rows, under a
transaction-level advisory lock so that two engines cannot both take the last place. The row
also records the measurement and the reading its slots count from: until it leaves, the sender
cancels it once the patient measures, opts out or is discharged (``alerts.notify.store``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import psycopg

from alerts.notify.enqueue import DUE_CHANNEL
from alerts.reminders.facts import Candidate
from alerts.reminders.schedule import (
    Facts,
    Policy,
    Verdict,
    decide,
    is_quiet,
    local_day_start,
)
from alerts.reminders.texts import render_reminder
from telemon.config import Settings
from telemon.metrics import METRICS

LOCK = "telemon_reminders"


def policy_from(settings: Settings) -> Policy:
    return Policy(
        per_day=settings.reminders_per_day,
        quiet_start=settings.reminder_quiet_start,
        quiet_end=settings.reminder_quiet_end,
        delay=timedelta(minutes=settings.reminder_delay_minutes),
    )


@dataclass(frozen=True, slots=True)
class Contact:
    phone: str | None
    language: str
    opted_out: bool
    sent_today: int
    gateway_offline: bool


@dataclass(slots=True)
class RemindersReport:
    written: list[int] = field(default_factory=list)
    verdicts: dict[Verdict, int] = field(default_factory=dict)


def reminder_key(patient_id: int, metric: str, due: datetime) -> str:
    return f"reminder:patient:{patient_id}:{metric}:{int(due.timestamp())}"


def one_per_measurement(found: Iterable[Candidate]) -> list[Candidate]:
    """One candidate per patient and metric: a patient in two protocols watching the same
    measurement (COPD and COVID, both oximetry) is reminded on the more frequent schedule."""
    best: dict[tuple[int, str], Candidate] = {}
    for c in found:
        kept = best.get((c.patient_id, c.metric))
        if kept is None or (c.every, -c.anchor.timestamp()) < (
            kept.every,
            -kept.anchor.timestamp(),
        ):
            best[(c.patient_id, c.metric)] = c
    return [best[key] for key in sorted(best)]


def enqueue_reminders(
    conn: psycopg.Connection, found: Iterable[Candidate], now: datetime, policy: Policy
) -> RemindersReport:
    """Decide and write the reminders due at ``now``; in one transaction of its own."""
    report = RemindersReport()
    chosen = one_per_measurement(found)
    if not chosen:
        return report
    if is_quiet(now, policy):
        # Nobody is texted at night: no need to read anyone's contacts (at night every
        # patient between two sessions is a candidate, at each tick).
        report.verdicts["night"] = len(chosen)
        return report
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (LOCK,))
        contacts = load_contacts(conn, sorted({c.patient_id for c in chosen}), now)
        for c in chosen:
            contact = contacts.get(c.patient_id)
            if contact is None:
                continue
            facts = Facts(
                c.anchor,
                c.every,
                c.enabled,
                contact.phone,
                contact.opted_out,
                contact.sent_today,
                contact.gateway_offline,
            )
            decision = decide(facts, now, policy)
            report.verdicts[decision.verdict] = report.verdicts.get(decision.verdict, 0) + 1
            if decision.verdict != "remind" or decision.slot is None or contact.phone is None:
                continue
            row = conn.execute(
                """
                INSERT INTO notifications (idempotency_key, patient_id, reason, stage,
                                           recipient_kind, to_address, body, status,
                                           next_attempt_at, created_at, updated_at,
                                           reminder_metric_id, reminder_anchor)
                VALUES (%s, %s, 'reminder', %s, 'patient', %s, %s, 'pending', %s, %s, %s, %s, %s)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING id
                """,
                (
                    reminder_key(c.patient_id, c.metric, decision.slot.due),
                    c.patient_id,
                    f"reminder:{c.metric}:{decision.slot.index}",
                    contact.phone,
                    render_reminder(c.metric, "en" if contact.language == "en" else "it"),
                    now,
                    now,
                    now,
                    # The sender cancels the row if the patient measures after this reading.
                    METRICS[c.metric].id,
                    c.anchor,
                ),
            ).fetchone()
            if row is not None:
                report.written.append(row[0])
                contacts[c.patient_id] = replace(contact, sent_today=contact.sent_today + 1)
        if report.written:
            conn.execute(f"NOTIFY {DUE_CHANNEL}")
    return report


def load_contacts(
    conn: psycopg.Connection, patient_ids: list[int], now: datetime
) -> dict[int, Contact]:
    """Phone, language, opt-out, today's reminders (Europe/Rome day, cancelled ones not
    counted) and whether a gateway of theirs is offline, as of the caller's transaction."""
    rows = conn.execute(
        """
        SELECT p.id, p.phone, p.language, p.reminders_opt_out_at IS NOT NULL,
               (SELECT count(*) FROM notifications n
                WHERE n.patient_id = p.id AND n.reason = 'reminder'
                  AND n.created_at >= %(day)s AND n.status <> 'cancelled'),
               -- Offline once seen: a gateway that never reported is not known to hold
               -- anything, and its patient may simply not have started.
               EXISTS (SELECT 1 FROM gateways g WHERE g.patient_id = p.id AND NOT g.online
                       AND g.last_seen_at IS NOT NULL)
        FROM patients p WHERE p.id = ANY(%(ids)s)
        """,
        {"ids": patient_ids, "day": local_day_start(now)},
    ).fetchall()
    return {r[0]: Contact(r[1], r[2], r[3], r[4], r[5]) for r in rows}
