from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pytest

from alerts.evaluate import NO_TIME, evaluate
from alerts.protocol import PatientOverride, Protocol, apply_override, load_protocols
from alerts.tables import compile_protocol
from alerts.windows import Reading, windows_from_patients
from bench._reference import Outcome, evaluate_patient
from telemon.metrics import METRICS

NOW = 1_767_225_600 + 10 * 86400 + 9 * 3600  # 2026-01-11 09:00 UTC (10:00 in Rome)

Readings = Mapping[str, Sequence[Reading]]


@pytest.fixture(scope="session")
def protocols() -> dict[str, Protocol]:
    return load_protocols()


def evaluate_both(
    protocol: Protocol,
    patients: Sequence[Readings],
    now: int,
    overrides: Mapping[int, PatientOverride] | None = None,
    started_at: Sequence[int] | None = None,
) -> list[dict[str, Outcome]]:
    """Vectorised results per patient, after checking them against the reference evaluator;
    ``started_at``: each patient's enrolment start (None: not known)."""
    overrides = overrides or {}
    started = list(started_at) if started_at is not None else [NO_TIME] * len(patients)
    compiled = compile_protocol(protocol, len(patients), overrides, np.array(started))
    results = evaluate(compiled, windows_from_patients(patients, list(METRICS)), now)
    out = []
    for i, readings in enumerate(patients):
        own = apply_override(protocol, overrides.get(i))
        expected = evaluate_patient(own, readings, now, started[i])
        got = {}
        for key, r in results.items():
            run, broken_at = (None, NO_TIME) if r.streaks is None else r.streaks.of(i)
            outcome = Outcome(
                int(r.level[i]),
                int(r.hold_level[i]),
                float(r.value[i]),
                int(r.at[i]),
                r.reason_of(i),
                run,
                broken_at,
            )
            assert_same(expected[key], outcome, f"patient {i} rule {key}")
            got[key] = outcome
        out.append(got)
    return out


def assert_same(expected: Outcome, got: Outcome, where: str) -> None:
    assert (got.level, got.hold_level, got.at, got.reason, got.run, got.broken_at) == (
        expected.level,
        expected.hold_level,
        expected.at,
        expected.reason,
        expected.run,
        expected.broken_at,
    ), f"{where}: {got} != {expected}"
    if math.isnan(expected.value):
        assert math.isnan(got.value), where
    else:
        assert got.value == pytest.approx(expected.value, rel=1e-9, abs=1e-9), where


@pytest.fixture(scope="session")
def both() -> Callable[..., list[dict[str, Outcome]]]:
    return evaluate_both


@pytest.fixture(scope="session")
def one(protocols) -> Callable[..., dict[str, Outcome]]:
    """Evaluate one patient of a shipped protocol both ways; returns outcomes by rule key."""

    def run(
        protocol: str,
        now: int = NOW,
        override: PatientOverride | None = None,
        started_at: int = NO_TIME,
        **readings,
    ):
        overrides = {0: override} if override else None
        return evaluate_both(protocols[protocol], [readings], now, overrides, [started_at])[0]

    return run
