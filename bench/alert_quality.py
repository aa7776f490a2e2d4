"""Alert quality on a cohort with ground truth: deteriorations caught, false alarms, SMS, queue.

    python bench/alert_quality.py [--patients 1000] [--days 30] [--seed 1] [--step 10] [--keep]

Builds a cohort from firmware_sim's physiology model (bench/_quality_cohort.py: stable patients
with everyday artefacts, ~12 % deteriorating on their protocol's scenario, each with the time
the deterioration becomes clinically significant by its true vitals), enrols it in a throwaway
database from TELEMON_BENCH_DATABASE_URL (dropped at the end unless ``--keep``), and replays
its readings through the real alerts engine and SMS sender on an accelerated clock
(bench/_quality_replay.py), twice on the same readings: with nobody acting, the worst case,
and with a nurse acknowledging every episode within 15 minutes. Prints, for both runs, lines
that start with ``episodes detected:``, ``median detection delay:``, ``false episodes per
stable patient-week:``, ``GP SMS per episode:``, ``nurse queue rows per patient-week:``,
``differences from the reference evaluator:`` and ``most queue rows open at once``, each with
its target.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from statistics import median

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.protocol import load_protocols
from bench._quality_cohort import build_cohort, cohort_mix, significant_at, truly_above
from bench._quality_figures import (
    Figures,
    RunRecord,
    Truth,
    delay_targets,
    figures,
    read_run,
    with_clinical_findings,
)
from bench._quality_replay import ReplayReport, replay
from bench._quality_store import Readings, enrol, generate, reset
from bench._reference_check import check_at
from telemon.config import Settings

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
# Monday 2 March 2026, 00:00 in Rome: a month with a daylight-saving change in it.
START = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
RUNS = (("nobody acting", False), ("nurse acting", True))
# Targets of issue 14.
MAX_FALSE_PER_WEEK = 0.1
MAX_GP_SMS = 2
REFERENCE_INSTANTS = 4
REFERENCE_SAMPLE = 50
STABLE_TRUTH_GRID = timedelta(hours=1)


def both(values: Sequence[str]) -> str:
    """One figure per run, or once when the runs agree."""
    if len(set(values)) == 1:
        return f"{values[0]} (both runs)"
    return ", ".join(f"{v} {name}" for v, (name, _) in zip(values, RUNS, strict=True))


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(figs: Sequence[Figures], protocols: dict, differ: int, checked: int) -> None:
    first = figs[0]
    detected = [f"{f.detected}/{f.deteriorations}" for f in figs]
    print(
        f"episodes detected: {both(detected)}; target every one: "
        f"{verdict(all(f.detected == f.deteriorations for f in figs))}"
    )
    for f, (name, _) in zip(figs, RUNS, strict=True):
        if f.missed:
            print(f"  missed ({name}): {', '.join(f.missed)}")
    if first.not_significant:
        print(f"  ({first.not_significant} deteriorating patients not yet significant by the end)")
    medians = [f"{f.median_delay:.0f} min" if f.median_delay is not None else "-" for f in figs]
    targets = delay_targets(protocols)
    per_protocol_ok = True
    lines = []
    for key in sorted({k for f in figs for k in f.delays}):
        target = targets.get(key)
        values = []
        for f in figs:
            delays = f.delays.get(key, [])
            values.append(
                f"{median(delays):.0f} min of {len(delays)}, max {max(delays):.0f}"
                if delays
                else "-"
            )
            if target is not None and delays:
                per_protocol_ok &= median(delays) <= target / timedelta(minutes=1)
        limit = f"{target / timedelta(minutes=1):.0f} min" if target else "none"
        lines.append(f"  {key}: median {both(values)}; target <= {limit}")
    print(
        f"median detection delay: {both(medians)}; target per protocol <= its measurement "
        f"interval: {verdict(per_protocol_ok)}"
    )
    for line in lines:
        print(line)
    false = [f"{f.false_per_week:.3f}" for f in figs]
    print(
        f"false episodes per stable patient-week: {both(false)} "
        f"({first.false_episodes} episodes of {first.false_patients} stable patients over "
        f"{first.stable_weeks:,.0f} patient-weeks); target <= {MAX_FALSE_PER_WEEK}: "
        f"{verdict(all(f.false_per_week <= MAX_FALSE_PER_WEEK for f in figs))}"
    )
    for rule, count in first.false_rules.most_common():
        print(f"  findings in them, {rule}: {count}")
    justified = [str(f.justified_episodes) for f in figs]
    print(
        f"  not counted: {both(justified)} episodes of {first.justified_patients} stable patients "
        f"opened after their true vitals met their protocol's criterion"
    )
    tasks = [f"{f.tasks_per_week:.3f} ({f.stable_tasks})" for f in figs]
    print(f"not-measuring tasks per stable patient-week: {both(tasks)}")
    for rule, count in first.task_rules.most_common():
        print(f"  {rule}: {count}")
    sms = [f"mean {f.gp_sms_mean:.2f}, max {f.gp_sms_max}" for f in figs]
    print(
        f"GP SMS per episode: {both(sms)} (over {first.clinical_episodes} clinical episodes); "
        f"target max <= {MAX_GP_SMS} when nobody acts: {verdict(first.gp_sms_max <= MAX_GP_SMS)}"
    )
    steady = [str(f.gp_sms_max_steady) for f in figs]
    print(f"  max among episodes whose severity never rose: {both(steady)}")
    for line in first.over_gp_limit[:5]:
        print(f"  {line}")
    duty = [f"{f.centre_sms:,} in all, max {f.centre_sms_max} for one episode" for f in figs]
    print(f"duty phone SMS: {both(duty)}")
    rows = [f"{f.rows_per_week:.3f} ({f.queue_rows} rows)" for f in figs]
    print(f"nurse queue rows per patient-week: {both(rows)}")
    print(
        f"differences from the reference evaluator: {differ} of {checked}; target 0: "
        f"{verdict(differ == 0)}"
    )
    most = [str(f.most_open) for f in figs]
    print(
        f"most queue rows open at once for one patient: {both(most)}; target 1: "
        f"{verdict(all(f.most_open <= 1 for f in figs))}"
    )


def progress_printer(
    name: str, start: datetime, days: int
) -> Callable[[datetime, ReplayReport], None]:
    def show(now: datetime, r: ReplayReport) -> None:
        if (now - start) % timedelta(days=1):
            return
        print(
            f"  {name}: day {(now - start).days}/{days}, {r.stored:,} readings stored, "
            f"{r.evaluations:,} evaluations + {r.full_passes} full passes, "
            f"{r.acknowledgements} acknowledgements, {r.seconds:.0f} s (engine "
            f"{r.evaluate_seconds:.0f} s + full passes {r.full_pass_seconds:.0f} s, sender "
            f"{r.sender_seconds:.0f} s, vacuum {r.maintenance_seconds:.0f} s)",
            flush=True,
        )

    return show


@dataclass(frozen=True, slots=True)
class QualityRun:
    figures: list[Figures]  # one per entry of RUNS
    replays: list[ReplayReport]
    differ: int
    checked: int


def run(
    url: str,
    *,
    patients: int,
    days: int,
    seed: int = 1,
    step: timedelta = timedelta(minutes=10),
    keep: bool = False,
    quiet: bool = False,
    parallel: bool = True,
) -> QualityRun:
    """Build the cohort in the (empty) database at ``url``, replay it once per entry of RUNS
    and measure each: at once on two databases (the second a copy of ``url``, dropped unless
    ``keep``), or one after the other on ``url``."""
    started = time.perf_counter()
    protocols = load_protocols()
    start, end = START, START + timedelta(days=days)
    cohort = build_cohort(patients, days, start, seed)
    people = enrol(url, cohort, start, end)
    readings = generate(cohort, people, start, end)
    truths = [
        Truth(
            people.patient_ids[p.code],
            p.code,
            p.protocol,
            p.scenario,
            p.deteriorating,
            p.enrolled_at,
            p.onset_at,
            significant_at(p, end),
        )
        for p in cohort
    ]
    say = (lambda *_, **__: None) if quiet else print
    mix = ", ".join(
        f"{protocol}/{scenario} {n}"
        for (protocol, scenario), n in sorted(cohort_mix(cohort).items())
    )
    say(
        f"{len(cohort):,} patients x {days} days, {len(readings):,} readings, built in "
        f"{time.perf_counter() - started:.0f} s: {mix}",
        flush=True,
    )
    global _READINGS
    _READINGS = readings
    jobs = [
        (url, name, people.nurse_id if nurse else None, start, end, step, seed, quiet)
        for name, nurse in RUNS
    ]
    if parallel:
        # Each run on a database of its own, copied from the enrolled one, both at once.
        copy = _sibling(url, "2")
        jobs[1] = (copy, *jobs[1][1:])
        try:
            with ProcessPoolExecutor(len(jobs), mp_context=get_context("fork")) as pool:
                outcomes = list(pool.map(_replay_one, *zip(*jobs, strict=True)))
        finally:
            if not keep:
                _drop(copy)
    else:
        outcomes = []
        for index, job in enumerate(jobs):
            outcomes.append(_replay_one(*job))
            if index < len(jobs) - 1:
                with psycopg.connect(url, autocommit=True) as conn:
                    reset(conn)
    differ = checked = 0
    with psycopg.connect(url, autocommit=True) as conn:
        # The readings are the same in both runs: the first run's database holds them all.
        for k in range(1, REFERENCE_INSTANTS + 1):
            at = start + (end - start) * k / REFERENCE_INSTANTS - timedelta(minutes=23)
            d, c = check_at(conn, protocols, at, REFERENCE_SAMPLE)
            differ, checked = differ + d, checked + c
    _READINGS = None
    # A stable patient whose usual level sits at a threshold is rightly alerted on: their true
    # vitals decide, looked at only for those the engine alerted on (it takes a while).
    alerted = set().union(*(with_clinical_findings(record) for _, record in outcomes))
    justified = {
        people.patient_ids[p.code]: met
        for p in cohort
        if not p.deteriorating and people.patient_ids[p.code] in alerted
        for met in (truly_above(p, end, STABLE_TRUTH_GRID),)
        if met is not None
    }
    return QualityRun(
        [figures(r, truths, end, gp_limit=MAX_GP_SMS, justified=justified) for _, r in outcomes],
        [replayed for replayed, _ in outcomes],
        differ,
        checked,
    )


# The readings, handed to forked workers by inheritance instead of pickling.
_READINGS: Readings | None = None


def _replay_one(
    url: str,
    name: str,
    nurse_id: int | None,
    start: datetime,
    end: datetime,
    step: timedelta,
    seed: int,
    quiet: bool,
) -> tuple[ReplayReport, RunRecord]:
    if _READINGS is None:
        raise RuntimeError("run() hands the readings over before replaying")
    replayed = replay(
        url,
        _READINGS,
        start=start,
        end=end,
        step=step,
        settings=Settings(database_url=url, service_centre_phone=None),
        protocols=load_protocols(),
        nurse_id=nurse_id,
        seed=seed,
        progress=None if quiet else progress_printer(name, start, (end - start).days),
    )
    if not quiet:
        print(
            f"  {name}: replayed in {replayed.seconds:.0f} s ({replayed.steps:,} steps, "
            f"{replayed.evaluations:,} evaluations, {replayed.full_passes} full passes)",
            flush=True,
        )
    with psycopg.connect(url, autocommit=True) as conn:
        return replayed, read_run(conn)


def _admin(url: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname="postgres")


def _sibling(url: str, suffix: str) -> str:
    """A copy of the database at ``url`` (nobody may be connected to it meanwhile)."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    copy = f"{name}_{suffix}"
    with psycopg.connect(_admin(url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(copy), sql.Identifier(name)
            )
        )
    return psycopg.conninfo.make_conninfo(url, dbname=copy)


def _drop(url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(_admin(url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--step", type=int, default=10, help="Simulated minutes per step.")
    parser.add_argument("--keep", action="store_true", help="Keep the databases afterwards.")
    parser.add_argument(
        "--sequential", action="store_true", help="One run after the other, on one database."
    )
    args = parser.parse_args()
    admin_url = os.environ.get("TELEMON_BENCH_DATABASE_URL", DEFAULT_URL)
    name = f"telemon_bench_quality_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    try:
        started = time.perf_counter()
        measured = run(
            url,
            patients=args.patients,
            days=args.days,
            seed=args.seed,
            step=timedelta(minutes=args.step),
            keep=args.keep,
            parallel=not args.sequential,
        )
        report(measured.figures, load_protocols(), measured.differ, measured.checked)
        print(f"total {time.perf_counter() - started:.0f} s")
    finally:
        if not args.keep:
            with psycopg.connect(admin_url, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        else:
            print(f"database kept: {name}")


if __name__ == "__main__":
    main()
