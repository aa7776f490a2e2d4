"""Each patient's measurement schedule as of now, out of an engine pass's windows.

Per missing-data rule and metric: the anchor its slots count from (the newest reliable reading
not after now, or the enrolment start when later: what the rule's hours count from) and the
interval. Only the patients with at least one slot fallen due come out; the rest need no look.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from alerts.evaluate import NO_TIME
from alerts.protocol import MissingDataRule
from alerts.tables import CompiledProtocol
from alerts.windows import MetricWindow, last_index, take


@dataclass(frozen=True, slots=True)
class Candidate:
    patient_id: int
    metric: str
    anchor: datetime
    every: timedelta
    enabled: bool


def candidates(
    compiled: CompiledProtocol,
    patient_ids: np.ndarray,
    windows: Mapping[str, MetricWindow],
    now: datetime,
) -> list[Candidate]:
    """The patients of one protocol (``patient_ids``, the compiled order) with a slot due."""
    at = int(now.timestamp())
    found = []
    for rule in compiled.rules:
        if not isinstance(rule.rule, MissingDataRule) or rule.rule.expected_every is None:
            continue
        every = int(rule.rule.expected_every)
        for metric in rule.rule.metrics:
            w = windows.get(metric) or MetricWindow.empty(patient_ids.size)
            usable = w.select(w.reliable & (w.t <= at))
            newest = take(usable.t, last_index(usable.offsets, None), NO_TIME)
            anchor = np.maximum(newest, rule.started_at)
            due = (anchor != NO_TIME) & (at - anchor >= every)
            for index in np.flatnonzero(due):
                found.append(
                    Candidate(
                        int(patient_ids[index]),
                        metric,
                        datetime.fromtimestamp(int(anchor[index]), UTC),
                        timedelta(seconds=every),
                        bool(rule.enabled[index]),
                    )
                )
    return found
