"""`telemon alerts replay`: a changed protocol over the stored history, nothing written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from alerts.protocol import PROTOCOLS_DIR
from alerts.replay import replay
from console.cli import app as cli_app
from tests.alerts_engine.support import (
    HOUR,
    MORNING,
    PROTOCOLS,
    Cohort,
    add_cohort,
    add_readings,
)

COVID = PROTOCOLS_DIR / "covid19_home_oximetry.toml"


def stricter_candidate(tmp_path: Path) -> Path:
    """The COVID protocol with the amber SpO2 threshold at 93 % instead of 94 %."""
    text = COVID.read_text(encoding="utf-8")
    text = text.replace('version = "1.0.0"', 'version = "1.1.0"', 1)
    old = '{ level = "amber", op = "<=", value = 94 },'
    assert old in text
    path = tmp_path / "covid_candidate.toml"
    path.write_text(text.replace(old, '{ level = "amber", op = "<=", value = 93 },', 1))
    return path


@pytest.fixture
def history(db: psycopg.Connection) -> Cohort:
    """Two weeks of readings three times a day, up to this morning: the second patient's 95 %
    become 94 % in week two (no fall steep enough for the trend rule)."""
    cohort = add_cohort(db, n_patients=2)
    for patient, (usual, low) in zip(cohort.patients, ((97.0, 97.0), (95.0, 94.0)), strict=True):
        readings = []
        for day in range(15):
            for hour in (8, 14, 20):
                at = MORNING - timedelta(days=14 - day) + timedelta(hours=hour - 9)
                if at <= MORNING:
                    readings.append((at, low if day >= 7 else usual))
        add_readings(db, patient, "spo2", readings)
    return cohort


def test_replay_groups_the_findings_of_a_patient_into_episodes_without_writing(
    db: psycopg.Connection, history: Cohort
) -> None:
    start = MORNING - timedelta(days=14)
    episodes = replay(db, PROTOCOLS["covid19_home_oximetry"], start=start, end=MORNING, every=HOUR)
    [episode] = episodes
    assert episode.patient_id == history.patients[1]
    assert episode.findings == {"spo2_low": 1}
    # Two readings at 94 %, confirmed at the second: day 7's 14:00 reading.
    assert episode.opened_at - (start + timedelta(days=7)) < timedelta(hours=7)
    assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM episodes").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM notifications").fetchone()[0] == 0


def test_the_command_prints_what_the_candidate_would_have_opened_beside_the_current(
    db: psycopg.Connection,
    history: Cohort,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEMON_DATABASE_URL", database_url)
    start = (MORNING - timedelta(days=14)).date().isoformat()
    end = (MORNING - timedelta(days=1)).date().isoformat()  # the day before: all measured
    result = CliRunner().invoke(
        cli_app,
        [
            "alerts",
            "replay",
            "--protocol",
            str(stricter_candidate(tmp_path)),
            "--from",
            start,
            "--to",
            end,
            "--every",
            "1h",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("Replaying covid19_home_oximetry: current 1.0.0 and candidate")
    [row] = [line for line in lines if line.startswith("P-0001")]
    assert row.split() == ["P-0001", "2026-W10", "1:", "spo2_low", "amber", "-"]
    assert lines[-1] == (
        "Episodes: current 1 (1 patients), candidate 0 (0 patients); "
        "patient-weeks that differ: 1 of 1."
    )


def test_a_candidate_for_no_known_protocol_is_refused_in_one_line(
    history: Cohort, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEMON_DATABASE_URL", database_url)
    path = tmp_path / "new.toml"
    path.write_text(
        COVID.read_text(encoding="utf-8").replace(
            'key = "covid19_home_oximetry"', 'key = "brand_new"', 1
        )
    )
    result = CliRunner().invoke(
        cli_app,
        ["alerts", "replay", "--protocol", str(path), "--from", "2026-03-01", "--to", "2026-03-02"],
    )
    assert result.exit_code == 2
    assert "'brand_new' is not a protocol patients follow" in result.output
