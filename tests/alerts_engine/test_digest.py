"""A GP's daily digest of open amber episodes, instead of an SMS per amber escalation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import psycopg

from alerts.engine import ManualClock
from alerts.notify.digest import render_digest
from alerts.notify.routing import ROME
from alerts.notify.texts import gsm7_length
from tests.alerts_engine.support import (
    HOUR,
    MIN,
    MakeEngine,
    add_cohort,
    episodes,
    notifications,
    spo2,
)

SIX_PM = time(18, 0)


def test_amber_steps_wait_for_the_digest_which_lists_the_open_amber_episodes_once_a_day(
    db: psycopg.Connection, make_engine: MakeEngine, clock: ManualClock
) -> None:
    cohort = add_cohort(db, n_patients=2)
    db.execute("UPDATE staff SET amber_digest_at = %s WHERE id = %s", (SIX_PM, cohort.gp_id))
    db.execute(
        "UPDATE patients SET given_name = 'Giulia', family_name = 'Neri' WHERE id = %s",
        (cohort.patients[1],),
    )
    engine = make_engine()
    for patient in cohort.patients:
        for value in (94, 93):
            spo2(db, engine, clock, patient, value)
    for _ in range(4 * 6):  # four hours: well past the amber step (1 h)
        clock.advance(10 * MIN)
        engine.evaluate(clock(), None)
    assert {e["state"] for e in episodes(db)} == {"escalated"}  # the queue shows them
    assert notifications(db) == []  # but the GP is not texted for each

    six = datetime.combine(clock().astimezone(ROME).date(), SIX_PM, tzinfo=ROME)
    clock.set(six.astimezone(UTC) - MIN)
    engine.evaluate(clock(), None)
    assert notifications(db) == []
    clock.advance(MIN)
    engine.evaluate(clock(), None)
    engine.evaluate(clock() + 10 * MIN, None)  # the next pass: still one
    [digest] = notifications(db)
    assert (digest["reason"], digest["recipient_kind"], digest["episode_id"]) == (
        "digest",
        "gp",
        None,
    )
    assert digest["body"] == (
        "Telemon: riepilogo del giorno, 2 pazienti con allerta GIALLA aperta: M.R., G.N. "
        "Apri: https://telemon.example.it/patients"
    )
    assert digest["idempotency_key"] == f"digest:gp:{cohort.gp_id}:{six.date().isoformat()}"

    clock.advance(24 * HOUR)  # the next day, both still open
    engine.evaluate(clock(), None)
    assert len(notifications(db)) == 2


def test_no_open_amber_episode_no_digest(
    db: psycopg.Connection, make_engine: MakeEngine, clock: ManualClock
) -> None:
    cohort = add_cohort(db)
    db.execute("UPDATE staff SET amber_digest_at = %s", (SIX_PM,))
    for value in (97, 96):
        spo2(db, make_engine(), clock, cohort.patient, value)
    clock.set(clock() + timedelta(days=1))
    make_engine().evaluate(clock(), None)
    assert [n["reason"] for n in notifications(db)] == []


def test_a_long_digest_counts_the_patients_it_cannot_name() -> None:
    names = [f"{chr(65 + i % 26)}.{chr(66 + i % 25)}." for i in range(80)]
    text = render_digest(names, "en", "https://telemon.example.it")
    assert gsm7_length(text) <= 306
    assert text.startswith("Telemon: daily summary, 80 patients with an open AMBER alert: A.B., ")
    assert " more. Open: https://telemon.example.it/patients" in text
