"""What the pages and the API say about an alert: its reason in words, units as clinicians write
them, events and outcomes translated, chart axes that read; never a key or a UCUM code."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import get_args

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from alerts.notify.store import EventKind
from dashboard import charts
from dashboard.i18n import EVENTS, event_label, translator
from dashboard.models import CallOutcome, Point, Series
from telemon.findings import evidence_json
from tests.dashboard.conftest import World, add_readings
from tests.dashboard.support import login
from tests.evidence_examples import REASONS, spo2_low
from tests.readable import RAW, visible_text


def _with_evidence(db: psycopg.Connection, alert_id: int, evidence) -> None:
    db.execute(
        "UPDATE alerts SET protocol = %s, rule = %s, reason = %s, details = %s WHERE id = %s",
        (
            evidence.protocol,
            evidence.rule,
            f"{evidence.rule}:red",  # what the engine keeps today: it must never be shown
            Jsonb({"evidence": evidence_json(evidence)}),
            alert_id,
        ),
    )


def _temperatures(db: psycopg.Connection, patient_id: int) -> None:
    """Six temperatures 8 h apart, the newest (36.2) an hour ago, stored and rolled up as ingest
    does: the page finds the latest value through the hourly rollup."""
    values = (36.2, 36.8, 37.4, 38.4, 37.9, 37.1)
    readings = [("body_temperature", 60 * (8 * i + 1), v) for i, v in enumerate(values)]
    add_readings(db, patient_id, readings, datetime.now(UTC))


@pytest.mark.parametrize("language", ["it", "en"])
def test_patient_page_reads_the_reason_and_units_in_the_gps_language(
    client: TestClient, world: World, db: psycopg.Connection, language: str
) -> None:
    evidence = spo2_low()
    _with_evidence(db, world.alerts["own"], evidence)
    # A finding kept before evidence was: named by its rule's title, not its key.
    db.execute(
        "UPDATE alerts SET details = details - 'evidence', reason = 'spo2:amber' WHERE id = %s",
        (world.findings["own:spo2_falling"],),
    )
    _temperatures(db, world.patients["own"])
    db.execute("UPDATE staff SET language = %s WHERE id = %s", (language, world.staff["gp"]))
    login(client, "dr.rossi")

    page = client.get(f"/patients/{world.patients['own']}")
    text = visible_text(page.text)

    _, italian, english = REASONS["confirmed"]
    expected = {
        "it": (italian, "Saturazione in calo", "Pulsossimetro"),
        "en": (english, "Oxygen saturation falling", "Pulse oximeter"),
    }[language]
    for words in expected:
        assert words in text, words
    assert "°C" in text and "bpm" in text
    vitals = re.search(r'<div class="vitals">(.*?)</div>', page.text, re.S).group(1)
    (celsius,) = [v for v in vitals.split('<span class="vital">') if "°C" in v]
    temperature = re.search(r"<b>([0-9.,]+)</b>", celsius).group(1)
    assert temperature == {"it": "36,2", "en": "36.2"}[language]  # one decimal, never "36"
    assert not RAW.search(text), RAW.search(text)


def test_episode_page_and_api_give_the_reason_events_and_structured_values(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    evidence, italian, english = REASONS["one reading, two channels"]
    alert = world.alerts["own"]
    _with_evidence(db, alert, evidence)
    kinds = ["opened", "confirmed", "notify_queued", "notify_delivered", "escalated"]
    for kind in kinds:
        db.execute("INSERT INTO alert_events (alert_id, kind) VALUES (%s, %s)", (alert, kind))
    login(client, "nurse.greco")

    page = client.get(f"/alerts/{alert}", follow_redirects=True)  # to the finding's episode
    text = visible_text(page.text)

    assert english in text
    assert "Severe blood pressure reading" in text  # the rule's title beside the reason
    for kind in kinds:
        assert EVENTS[kind][0] in text
    assert not RAW.search(text), RAW.search(text)

    item = client.get(f"/api/alerts/{alert}").json()
    assert item["reason"] == english
    assert item["rule_title"] == "Severe blood pressure reading"
    assert item["evidence"]["values"] == {"systolic": 182.0, "diastolic": 95.0}
    assert item["evidence"]["kind"] == "threshold"

    db.execute("UPDATE staff SET language = 'it' WHERE id = %s", (world.staff["nurse"],))
    queue = client.get("/triage")
    assert italian in visible_text(queue.text)
    assert client.get("/api/triage").json()[0]["reason"] == italian


def test_series_api_keeps_ucum_and_adds_the_display_unit(
    client: TestClient, world: World, db: psycopg.Connection
) -> None:
    _temperatures(db, world.patients["own"])
    login(client, "dr.rossi")

    series = client.get(f"/api/patients/{world.patients['own']}/series/body_temperature").json()
    latest = client.get("/api/patients").json()[0]["latest"]

    assert (series["unit"], series["display_unit"]) == ("Cel", "°C")
    assert {(v["unit"], v["display_unit"]) for v in latest} >= {("%", "%"), ("/min", "bpm")}


# What the engine and the people working an alert write into its history.
ENGINE_EVENTS = (
    "opened",
    "confirmed",
    "worsened",
    "downgraded",
    "auto_resolved",
    "escalated",
    "finding_joined",
    "finding_resolved",
)
STAFF_EVENTS = ("claim", "outcome", "acknowledge", "resolve", "escalate", "snooze_expired")


@pytest.mark.parametrize("language", ["it", "en"])
def test_every_event_and_outcome_reads_in_words(language: str) -> None:
    t = translator(language)
    kinds = {*ENGINE_EVENTS, *STAFF_EVENTS, *get_args(EventKind)}
    outcomes = {*get_args(CallOutcome), "auto_resolved"}

    assert kinds <= set(EVENTS)
    for label in [event_label(k, language) for k in kinds] + [t(f"outcome.{o}") for o in outcomes]:
        assert not RAW.search(label), label
    assert event_label("episode_joined", language) == "Episode joined"  # not in the table yet


def _tick_labels(svg: str) -> list[str]:
    return re.findall(r'<text x="\d+" y="[\d.]+" text-anchor="end"[^>]*>([^<]+)</text>', svg)


@pytest.mark.parametrize(
    ("metric", "values", "expected"),
    [
        (
            "body_temperature",
            (36.2, 36.9, 37.6, 38.4),
            ["36,0", "36,5", "37,0", "37,5", "38,0", "38,5"],
        ),
        ("spo2", (88, 91, 95, 99), None),
    ],
)
def test_chart_axis_ticks_are_distinct_and_round(metric, values, expected) -> None:
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    points = [Point(at=now - timedelta(hours=6 * i + 1), value=v) for i, v in enumerate(values)]
    series = Series(
        metric=metric, label=metric, unit="", display_unit="", days=7, aggregated=False,
        points=points, bands=[],
    )  # fmt: skip

    labels = _tick_labels(str(charts.render(series, now=now, empty_text="", language="it")))

    assert len(labels) >= 3
    assert len(set(labels)) == len(labels), labels
    ticks = [float(label.replace(",", ".")) for label in labels]
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and steps.pop() in {0.5, 1, 2, 5}
    if expected:
        assert labels == expected
