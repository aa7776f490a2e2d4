"""The demo's patients, replayed through the real engine, are reminded when they skip a reading:
to their own phone, never at night, within the daily cap, one per missed slot. The demo's
discharged patient has the closing report of its monitoring, and is reminded of nothing."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import psycopg
from psycopg.rows import dict_row

from alerts.notify.routing import ROME
from alerts.reminders.texts import render_reminder
from console.discharged import MONITORED, REASON, discharged_patient, seed_discharged
from telemon.config import Settings
from tests.engine_made import DUTY_PHONE, replay_demo

NOW = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)


def test_the_demo_s_patients_who_skip_a_reading_are_reminded(
    db: psycopg.Connection, database_url: str
) -> None:
    settings = Settings(public_url="https://telemon.example.it", language="it")
    made = replay_demo(database_url, settings, now=NOW, days=5, patients=12, discharged=True)

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

    # The discharged patient: four weeks of readings, discharged before the others' days, the
    # closing report frozen over them, the kit back; never evaluated again, never reminded.
    discharged = made.patient_ids[discharged_patient(made.cohort).code]
    assert discharged not in {r["patient_id"] for r in rows}
    enrolled, discharged_at = db.execute(
        "SELECT enrolled_at, discharged_at FROM patients WHERE id = %s", (discharged,)
    ).fetchone()
    assert discharged_at - enrolled == MONITORED and discharged_at < NOW - timedelta(days=5)
    readings = db.execute(
        "SELECT count(*), max(measured_at) FROM observations WHERE patient_id = %s",
        (discharged,),
    ).fetchone()
    assert readings[0] > 28 * 2 and readings[1] <= discharged_at
    [report] = db.execute(
        "SELECT period_from, period_to, body_html FROM period_reports "
        "WHERE patient_id = %s AND kind = 'closing'",
        (discharged,),
    ).fetchall()
    assert (report[0], report[1]) == (
        enrolled.astimezone(ROME).date(),
        discharged_at.astimezone(ROME).date(),
    )
    assert REASON in report[2]
    assert db.execute(
        "SELECT count(*) FROM gateways WHERE patient_id = %s", (discharged,)
    ).fetchone() == (0,)
    assert db.execute(
        "SELECT count(*) FROM alerts WHERE patient_id = %s AND opened_at > %s",
        (discharged, discharged_at),
    ).fetchone() == (0,)

    # A second run of the demo finds the patient discharged and leaves it as it is.
    with psycopg.connect(database_url) as conn:
        again = seed_discharged(
            conn,
            made.cohort,
            before=NOW - timedelta(days=5),
            service_centre_phone=DUTY_PHONE,
            public_url=settings.public_url,
        )
    assert again == discharged
    assert db.execute(
        "SELECT count(*) FROM period_reports WHERE patient_id = %s", (discharged,)
    ).fetchone() == (1,)
