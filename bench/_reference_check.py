"""The vectorised evaluation against ``bench._reference``, patient by patient, on a sample.

Shared by the benchmarks: bench/alerts.py times both sides, bench/alert_quality.py checks that
they agree at instants of a replayed history.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
import psycopg

from alerts.engine.engine import Evaluated, compute, own_windows
from alerts.engine.load import Enrolment, load_enrolments, load_windows, protocol_needs
from alerts.evaluate import NO_TIME
from alerts.protocol import Protocol, apply_override
from alerts.windows import MetricWindow, Reading
from bench._reference import Outcome, evaluate_patient


def sample_positions(n: int, sample: int) -> list[int]:
    """Positions of up to ``sample`` patients spread evenly over ``n``."""
    return np.linspace(0, n - 1, min(sample, n)).astype(int).tolist() if n else []


def reference_inputs(
    item: Evaluated, own: Mapping[str, MetricWindow], picked: Sequence[int]
) -> tuple[list[Protocol], list[dict[str, list[Reading]]]]:
    """Per picked patient: their (overridden) protocol and their readings, as the reference
    takes them."""
    enrolment = item.enrolment
    readings = [
        {
            m: list(
                zip(
                    w.t[w.offsets[p] : w.offsets[p + 1]].tolist(),
                    w.v[w.offsets[p] : w.offsets[p + 1]].tolist(),
                    w.reliable[w.offsets[p] : w.offsets[p + 1]].tolist(),
                    strict=True,
                )
            )
            for m, w in own.items()
        }
        for p in picked
    ]
    protocols = [
        apply_override(enrolment.protocol, enrolment.overrides[p])
        if p in enrolment.overrides
        else enrolment.protocol
        for p in picked
    ]
    return protocols, readings


def enrolment_starts(enrolment: Enrolment, picked: Sequence[int]) -> list[int]:
    """When each picked patient's enrolment started (epoch seconds; NO_TIME if unknown)."""
    if enrolment.started_at is None:
        return [NO_TIME] * len(picked)
    return [int(enrolment.started_at[p]) for p in picked]


def evaluate_each(
    protocols: list, readings: list, now: int, started: Sequence[int]
) -> list[dict[str, Outcome]]:
    """The per-patient reference over a sample, one patient after another."""
    return [
        evaluate_patient(p, r, now, s) for p, r, s in zip(protocols, readings, started, strict=True)
    ]


def count_differences(
    item: Evaluated, picked: Sequence[int], expected: Sequence[Mapping[str, Outcome]]
) -> tuple[int, int]:
    """(results differing, results compared): levels, hold levels, values, times, reasons and
    the confirming readings, rule by rule."""
    differ = checked = 0
    for p, outcome in zip(picked, expected, strict=True):
        for key, result in item.results.items():
            checked += 1
            o = outcome[key]
            same = (
                int(result.level[p]) == o.level
                and int(result.hold_level[p]) == o.hold_level
                and int(result.at[p]) == o.at
                and result.reason_of(p) == o.reason
                and (result.streaks is None or result.streaks.of(p) == (o.run, o.broken_at))
                # Fitted slopes may differ in the last bits: summation order.
                and (
                    math.isclose(float(result.value[p]), o.value, rel_tol=1e-9, abs_tol=1e-9)
                    or (math.isnan(o.value) and math.isnan(float(result.value[p])))
                )
            )
            differ += not same
    return differ, checked


def check_at(
    conn: psycopg.Connection, protocols: Mapping[str, Protocol], now: datetime, sample: int
) -> tuple[int, int]:
    """Evaluate everyone enrolled at ``now`` as the engine does, and ``sample`` patients per
    protocol with the reference: (results differing, results compared)."""
    enrolments = load_enrolments(conn, protocols, now)
    if not enrolments:
        return 0, 0
    ids = np.unique(np.concatenate([e.patient_ids for e in enrolments.values()]))
    windows = load_windows(conn, ids, protocol_needs(protocols.values()), now, everyone=True)
    differ = checked = 0
    for enrolment in enrolments.values():
        own = own_windows(enrolment, windows, ids)
        item = compute(enrolment, own, now)
        picked = sample_positions(enrolment.patient_ids.size, sample)
        protocol_of, readings = reference_inputs(item, own, picked)
        started = enrolment_starts(item.enrolment, picked)
        expected = evaluate_each(protocol_of, readings, int(now.timestamp()), started)
        item_differ, item_checked = count_differences(item, picked, expected)
        differ += item_differ
        checked += item_checked
    return differ, checked
