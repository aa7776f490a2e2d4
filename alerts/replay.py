"""What-if replay: a protocol evaluated over the stored history, in memory, nothing written.

A cooperative's clinical lead changes a threshold or adds a rule; before it goes live they want
to know what it would have done to their own patients. :func:`replay` reads the readings once,
then walks the period in steps as the engine's ticks would, with the real evaluator and
debouncer, and groups the findings a patient has open together into episodes as the engine
does. Nothing is written and nobody is texted. Run it for the current protocol and for the
candidate, and compare (``telemon alerts replay``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

from alerts.debounce import DebounceState, step
from alerts.engine.engine import compute, own_windows
from alerts.engine.load import load_enrolments, load_windows, protocol_needs
from alerts.protocol import Protocol

# Readings from before the period open findings (and confirm them) as they would have been
# open on its first day; only the episodes opened within the period are reported.
DEFAULT_WARMUP = timedelta(days=7)


@dataclass(slots=True)
class SimulatedEpisode:
    patient_id: int
    opened_at: datetime
    closed_at: datetime | None = None
    findings: dict[str, int] = field(default_factory=dict)  # rule -> worst level reached

    @property
    def severity(self) -> int:
        return max(self.findings.values())


def replay(
    conn: psycopg.Connection,
    protocol: Protocol,
    *,
    start: datetime,
    end: datetime,
    every: timedelta = timedelta(minutes=30),
    patient_ids: Sequence[int] | None = None,
    warmup: timedelta = DEFAULT_WARMUP,
) -> list[SimulatedEpisode]:
    """The episodes ``protocol`` would have opened between ``start`` and ``end``, oldest first,
    for the patients enrolled in a protocol of its key (or ``patient_ids`` of them)."""
    enrolment = load_enrolments(conn, {protocol.key: protocol}, end, patient_ids).get(protocol.key)
    if enrolment is None:
        return []
    ids = enrolment.patient_ids
    first = start - warmup
    span = int((end - first).total_seconds())
    # One read of everything the steps need: each evaluation cuts the readings after its now.
    needs = {
        metric: replace(need, lookback=need.lookback + span)
        for metric, need in protocol_needs([protocol]).items()
    }
    windows = own_windows(enrolment, load_windows(conn, ids, needs, end), ids)
    keys = [rule.key for rule in protocol.rules]
    states = {key: DebounceState.initial(ids.size) for key in keys}
    previous = np.zeros((len(keys), ids.size), np.int8)
    current: dict[int, SimulatedEpisode] = {}  # by position, while the patient has findings open
    episodes: list[SimulatedEpisode] = []
    at = first
    while at <= end:
        evaluated = compute(enrolment, windows, at)
        now = int(at.timestamp())
        for compiled_rule in evaluated.compiled.rules:
            key = compiled_rule.key
            states[key], _ = step(states[key], evaluated.results[key], compiled_rule, now)
        levels = np.stack([states[key].level for key in keys])
        for p in np.flatnonzero((levels != previous).any(axis=0)).tolist():
            open_rules = {
                key: int(level) for key, level in zip(keys, levels[:, p], strict=True) if level > 0
            }
            episode = current.get(p)
            if open_rules and episode is None:
                episode = current[p] = SimulatedEpisode(int(ids[p]), at)
                if at >= start:
                    episodes.append(episode)
            if episode is None:
                continue
            for key, level in open_rules.items():
                episode.findings[key] = max(level, episode.findings.get(key, 0))
            if not open_rules:
                episode.closed_at = at
                del current[p]
        previous = levels
        at += every
    return sorted(episodes, key=lambda e: (e.opened_at, e.patient_id))


def week_of(at: datetime) -> str:
    year, week, _ = at.astimezone(UTC).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True, slots=True)
class WeekRow:
    patient_id: int
    week: str
    current: tuple[SimulatedEpisode, ...]
    candidate: tuple[SimulatedEpisode, ...]

    @property
    def differs(self) -> bool:
        return _summary(self.current) != _summary(self.candidate)


def by_patient_week(
    current: Sequence[SimulatedEpisode], candidate: Sequence[SimulatedEpisode]
) -> list[WeekRow]:
    """Both replays side by side: one row per patient and week with an episode in either."""
    cells: dict[tuple[int, str], tuple[list[SimulatedEpisode], list[SimulatedEpisode]]] = {}
    for side, episodes in enumerate((current, candidate)):
        for episode in episodes:
            cell = cells.setdefault((episode.patient_id, week_of(episode.opened_at)), ([], []))
            cell[side].append(episode)
    return [
        WeekRow(patient, week, tuple(now), tuple(then))
        for (patient, week), (now, then) in sorted(cells.items())
    ]


def _summary(episodes: Sequence[SimulatedEpisode]) -> list[tuple[tuple[str, int], ...]]:
    return [tuple(sorted(e.findings.items())) for e in episodes]
