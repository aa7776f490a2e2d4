"""Time the vectorised evaluator against the per-patient reference on a synthetic cohort.

    python bench/alerts_core.py --patients 10000 --days 10 --per-day 3

The evaluator alone, without a database: random readings, denser than a real week, 3 % of them
unreliable, some in the future. The reference runs on a sample of patients and is extrapolated;
levels are checked equal on that sample so a fast wrong answer cannot pass for a speed-up.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.evaluate import evaluate
from alerts.protocol import Protocol, load_protocols
from alerts.tables import compile_protocol
from alerts.windows import MetricWindow
from bench._reference import evaluate_patient

# Typical value and day-to-day spread per metric, for plausible synthetic readings.
TYPICAL: Mapping[str, tuple[float, float]] = {
    "spo2": (95.0, 2.0),
    "pulse_rate": (78.0, 12.0),
    "systolic": (135.0, 15.0),
    "diastolic": (82.0, 9.0),
    "mean_arterial_pressure": (100.0, 10.0),
    "glucose": (140.0, 45.0),
    "body_temperature": (36.8, 0.6),
    "body_weight": (80.0, 1.0),
    "respiratory_rate": (16.0, 3.0),
}


def synthetic_cohort(
    n_patients: int, days: int, per_day: int, now: int, seed: int = 0
) -> dict[str, MetricWindow]:
    rng = np.random.default_rng(seed)
    windows = {}
    for metric, (mean, spread) in TYPICAL.items():
        counts = rng.poisson(days * per_day, n_patients)
        patient = np.repeat(np.arange(n_patients), counts)
        t = now - rng.integers(0, days * 86400, patient.size)
        v = np.round(rng.normal(mean, spread, patient.size), 1)
        reliable = rng.random(patient.size) > 0.03
        windows[metric] = MetricWindow.from_arrays(patient, t, v, reliable, n_patients=n_patients)
    return windows


def patient_readings(windows: Mapping[str, MetricWindow], p: int) -> dict[str, list]:
    out = {}
    for metric, w in windows.items():
        sl = slice(w.offsets[p], w.offsets[p + 1])
        out[metric] = list(
            zip(w.t[sl].tolist(), w.v[sl].tolist(), w.reliable[sl].tolist(), strict=True)
        )
    return out


def bench(protocol: Protocol, windows: Mapping[str, MetricWindow], now: int, sample: int) -> str:
    n = next(iter(windows.values())).n_patients
    compiled = compile_protocol(protocol, n)
    started = time.perf_counter()
    results = evaluate(compiled, windows, now)
    fast = time.perf_counter() - started

    picked = np.linspace(0, n - 1, min(sample, n)).astype(int)
    readings = [patient_readings(windows, int(p)) for p in picked]
    started = time.perf_counter()
    expected = [evaluate_patient(protocol, r, now) for r in readings]
    slow = (time.perf_counter() - started) / len(picked) * n
    differ = sum(
        int(result.level[p]) != outcome[key].level
        for p, outcome in zip(picked, expected, strict=True)
        for key, result in results.items()
    )
    return (
        f"{protocol.key:24s} vectorised {fast:7.3f} s  reference ~{slow:7.1f} s  "
        f"×{slow / fast:,.0f}  (levels differing on the sample: {differ})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=3)
    parser.add_argument("--sample", type=int, default=200)
    args = parser.parse_args()
    now = 1_767_225_600 + 10 * 86400 + 9 * 3600
    windows = synthetic_cohort(args.patients, args.days, args.per_day, now)
    total = sum(w.t.size for w in windows.values())
    print(f"{args.patients} patients, {total:,} readings")
    for protocol in load_protocols().values():
        print(bench(protocol, windows, now, args.sample))


if __name__ == "__main__":
    main()
