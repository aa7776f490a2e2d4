"""bench/alert_quality.py: its ground truth, its cohort, and a tiny run through the real engine."""

from __future__ import annotations

import operator
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from alerts.protocol import load_protocols
from bench._quality_cohort import (
    DETERIORATING_SHARE,
    PROTOCOL_MIX,
    SIGNIFICANCE,
    STABLE,
    build_cohort,
    cohort_counts,
    criterion_series,
    protocol_devices,
    significant_at,
)
from bench.alert_quality import RUNS, START, QualityRun, report, run
from firmware_sim.physiology_devices import DEVICES
from firmware_sim.scenarios import get_scenario

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def test_every_deterioration_has_a_sourced_criterion_on_a_vital_it_changes():
    for _, scenario_name in PROTOCOL_MIX.values():
        scenario = get_scenario(scenario_name)
        changed = {d.metric for d in scenario.drifts} | {
            m for e in scenario.episodes for m in e.targets
        }
        assert SIGNIFICANCE[scenario_name]
        for criterion in SIGNIFICANCE[scenario_name]:
            assert criterion.source
            assert criterion.metric in changed


@pytest.mark.parametrize("patients", [20, 200, 1000, 1013])
def test_the_mix_adds_up_and_about_one_in_eight_deteriorates(patients):
    counts = cohort_counts(patients)

    assert sum(n for n, _ in counts.values()) == patients
    for key, (n, deteriorating) in counts.items():
        assert abs(n - PROTOCOL_MIX[key][0] * patients) < 1
        assert 1 <= deteriorating <= max(1, round(DETERIORATING_SHARE * n) + 1)


def test_the_cohort_fits_its_stories_in_the_run():
    days = 30
    cohort = build_cohort(200, days, START, seed=3)
    end = START + timedelta(days=days)

    assert [p.code for p in cohort] == [p.code for p in build_cohort(200, days, START, seed=3)]
    for patient in cohort:
        assert START <= patient.enrolled_at < end
        assert patient.model.profile.devices == protocol_devices(patient.protocol)
        if patient.deteriorating:
            assert patient.scenario == PROTOCOL_MIX[patient.protocol][1]
            story_end = patient.model.origin + timedelta(days=patient.model.scenario.days)
            assert story_end <= end + timedelta(days=1)
        else:
            assert patient.scenario == STABLE
            assert patient.onset_at is None


def test_significance_is_the_first_grid_time_the_true_vitals_meet_the_criterion():
    cohort = build_cohort(300, 30, START, seed=5)
    end = START + timedelta(days=30)
    seen = set()
    for patient in cohort:
        if not patient.deteriorating or patient.scenario in seen:
            continue
        seen.add(patient.scenario)
        at = significant_at(patient, end)

        assert at is not None and patient.onset_at <= at <= end, patient.scenario
        met = []
        for criterion in SIGNIFICANCE[patient.scenario]:
            times, values = criterion_series(patient.model, criterion, patient.onset_at, at)
            holds = [OPS[criterion.op](v, criterion.value) for v in values.tolist()]
            assert not any(holds[:-1])  # never before
            met.append(times[-1] == at and holds[-1])
        assert any(met)
    assert seen == {scenario for _, scenario in PROTOCOL_MIX.values()}


def test_a_stable_patient_has_no_significance():
    patient = next(p for p in build_cohort(20, 7, START, seed=1) if not p.deteriorating)

    assert significant_at(patient, START + timedelta(days=7)) is None
    assert all(f.key for f in patient.model.scenario.faults)
    assert {f.device for f in patient.model.scenario.faults} <= set(DEVICES)


@contextmanager
def empty_database(server_url: str) -> Iterator[str]:
    """A database of its own, as the benchmark makes one: nobody else connected, so that the
    second run can copy it."""
    name = f"telemon_test_quality_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


TINY = {"patients": 20, "days": 7, "seed": 2, "quiet": True}


@pytest.fixture(scope="module")
def tiny(postgres_server_url: str) -> QualityRun:
    """20 patients x 7 days, both runs at once (the default)."""
    with empty_database(postgres_server_url) as url:
        return run(url, **TINY)


def test_a_tiny_run_through_the_real_engine_prints_its_figures(tiny, capsys):
    measured = tiny
    nobody, nurse = measured.figures

    assert measured.checked > 0 and measured.differ == 0
    assert nobody.most_open == nurse.most_open == 1
    assert nobody.queue_rows > 0
    for figures in measured.figures:
        assert figures.detected + len(figures.missed) == figures.deteriorations
    assert measured.replays[0].acknowledgements == 0 < measured.replays[1].acknowledgements
    # A nurse acknowledging within 15 minutes leaves the GPs fewer SMS, never more.
    assert nurse.gp_sms <= nobody.gp_sms

    report(measured.figures, load_protocols(), measured.differ, measured.checked)
    lines = capsys.readouterr().out.splitlines()
    for prefix in (
        "episodes detected: ",
        "median detection delay: ",
        "false episodes per stable patient-week: ",
        "GP SMS per episode: mean ",
        "nurse queue rows per patient-week: ",
        "differences from the reference evaluator: 0",
        "most queue rows open at once for one patient: 1",
    ):
        assert any(line.startswith(prefix) for line in lines), prefix
    assert len(RUNS) == 2


def test_one_run_after_the_other_measures_what_both_at_once_do(tiny, postgres_server_url):
    with empty_database(postgres_server_url) as url:
        sequential = run(url, **TINY, parallel=False)

    assert sequential.figures == tiny.figures
