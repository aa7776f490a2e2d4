"""The demo's patients, replayed through the real engine, are reminded when they skip a reading:
to their own phone, never at night, within the daily cap, one per missed slot."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time

import psycopg
from psycopg.rows import dict_row

from alerts.notify.routing import ROME
from alerts.reminders.texts import render_reminder
from telemon.config import Settings
from tests.engine_made import replay_demo

NOW = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)


def test_the_demo_s_patients_who_skip_a_reading_are_reminded(
    db: psycopg.Connection, database_url: str
) -> None:
    settings = Settings(public_url="https://telemon.example.it", language="it")
    made = replay_demo(database_url, settings, now=NOW, days=5, patients=12)

    rows = (
        db.cursor(row_factory=dict_row)
        .execute(
            "SELECT n.*, p.phone FROM notifications n JOIN patients p ON p.id = n.patient_id "
            "WHERE n.reason = 'reminder' ORDER BY n.id"
        )
        .fetchall()
    )
    per_day = Counter((r["patient_id"], r["created_at"].astimezone(ROME).date()) for r in rows)
    print(
        f"demo replay: {len(rows)} reminders to {len({r['patient_id'] for r in rows})} of "
        f"{len(made.patient_ids)} patients over 5 days"
    )
    assert rows, "the demo's patients miss readings (adherence 95 %): someone is reminded"
    assert len({r["idempotency_key"] for r in rows}) == len(rows)
    for r in rows:
        assert (r["recipient_kind"], r["to_address"], r["episode_id"]) == (
            "patient",
            r["phone"],
            None,
        )
        assert r["body"] in {
            render_reminder(m, "it") for m in ("spo2", "glucose", "body_weight", "systolic")
        }
        local = r["created_at"].astimezone(ROME).time()
        assert time(8, 0) <= local < time(21, 0), r
    assert max(per_day.values()) <= settings.reminders_per_day
