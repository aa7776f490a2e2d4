"""A GP's daily digest: their patients' open amber episodes in one SMS at a time they choose.

A GP who sets ``staff.amber_digest_at`` gets no SMS for the amber steps of escalation chains
(``routing.route``); instead, once a day at that local time (Europe/Rome), one SMS lists the
open amber episodes of their patients, by initials. No open amber episode, no SMS. Quiet hours
still hold it, and its idempotency key names the GP and the local day, so an engine restarted
or run twice writes it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from types import MappingProxyType

import psycopg

from alerts.notify.enqueue import DUE_CHANNEL
from alerts.notify.routing import ROME, GpContact, to_gp
from alerts.notify.texts import MAX_SMS_LENGTH, Language, MessageTooLongError, initials
from telemon.gsm7 import gsm7_length, to_gsm7

TEMPLATES: Mapping[Language, str] = MappingProxyType(
    {
        "it": "Telemon: riepilogo del giorno, {count} con allerta GIALLA aperta: {patients} "
        "Apri: {link}",
        "en": "Telemon: daily summary, {count} with an open AMBER alert: {patients} Open: {link}",
    }
)
PATIENT_WORDS: Mapping[Language, tuple[str, str]] = MappingProxyType(
    {"it": ("1 paziente", "{n} pazienti"), "en": ("1 patient", "{n} patients")}
)
MORE: Mapping[Language, str] = MappingProxyType({"it": "e altri {n}", "en": "and {n} more"})


@dataclass(frozen=True, slots=True)
class DigestDue:
    gp: GpContact
    day: date  # the GP's local day the digest is for
    patients: tuple[str, ...]  # initials, oldest episode first


def digest_instant(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=ROME)


def render_digest(patients: Sequence[str], language: Language, public_url: str) -> str:
    """The digest's text, at most two GSM-7 segments: initials that do not fit are counted."""
    one, many = PATIENT_WORDS[language]
    count = one if len(patients) == 1 else many.format(n=len(patients))
    link = f"{public_url.rstrip('/')}/patients"
    for shown in range(len(patients), -1, -1):
        names = ", ".join(patients[:shown])
        if shown < len(patients):
            rest = MORE[language].format(n=len(patients) - shown)
            names = f"{names} {rest}" if names else rest
        names += "" if names.endswith(".") else "."  # initials end with one already
        text = to_gsm7(TEMPLATES[language].format(count=count, patients=names, link=link))
        if gsm7_length(text) <= MAX_SMS_LENGTH:
            return text
    raise MessageTooLongError(
        "the digest SMS does not fit two segments: shorten TELEMON_PUBLIC_URL"
    )


def due_digests(conn: psycopg.Connection, now: datetime) -> list[DigestDue]:
    """The GPs whose digest time has come today (their local day) and who have open amber
    episodes; the ones already written today are skipped by the idempotency key."""
    rows = conn.execute(
        """
        SELECT g.id, g.phone, g.language, g.quiet_hours_start, g.quiet_hours_end,
               g.amber_digest_at,
               array_agg(p.given_name ORDER BY e.opened_at, e.id),
               array_agg(p.family_name ORDER BY e.opened_at, e.id)
        FROM staff g
        JOIN patients p ON p.gp_id = g.id
        JOIN episodes e ON e.patient_id = p.id AND e.state <> 'resolved' AND e.alert_level = 1
        WHERE g.active AND g.phone IS NOT NULL AND g.amber_digest_at IS NOT NULL
        GROUP BY g.id
        """
    ).fetchall()
    today = now.astimezone(ROME).date()
    due = []
    for gp_id, phone, language, quiet_start, quiet_end, at, given, family in rows:
        if now < digest_instant(today, at):
            continue
        contact = GpContact(gp_id, phone, language, quiet_start, quiet_end, at)
        names = tuple(initials(g, f) for g, f in zip(given, family, strict=True))
        due.append(DigestDue(contact, today, names))
    return due


def enqueue_due_digests(conn: psycopg.Connection, now: datetime, public_url: str) -> list[int]:
    """Write today's digest of every GP whose time has come; the ids of the rows created."""
    created = []
    for digest in due_digests(conn, now):
        for delivery in to_gp(digest.gp, now):
            row = conn.execute(
                """
                INSERT INTO notifications (idempotency_key, reason, stage, recipient_kind,
                                           recipient_id, to_address, body, status,
                                           next_attempt_at)
                VALUES (%s, 'digest', 'digest', 'gp', %s, %s, %s, 'pending', %s)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING id
                """,
                (
                    f"digest:gp:{digest.gp.id}:{digest.day.isoformat()}",
                    digest.gp.id,
                    delivery.to,
                    render_digest(digest.patients, delivery.language, public_url),
                    delivery.not_before,
                ),
            ).fetchone()
            if row is not None:
                created.append(row[0])
    if created:
        conn.execute(f"NOTIFY {DUE_CHANNEL}")
    return created
