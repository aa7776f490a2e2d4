"""One evaluation pass: load, evaluate every protocol vectorised, step the alerts, commit.

Readings are loaded and evaluated outside any transaction. Then, per protocol, one transaction
takes an advisory lock, reads the stored debounce state and the unresolved alerts, steps and
writes. Engines racing on the same patients therefore take turns on the state; the second
finds the readings already counted and changes nothing. The unique index on open alerts stays
the last word should the state ever disagree with the alerts table.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import psycopg

from alerts.debounce import step
from alerts.engine.decide import Decision, plan_decisions, reconcile
from alerts.engine.lifecycle import Applied, RuleContext, apply_decision, load_open_alerts
from alerts.engine.load import (
    Enrolment,
    load_enrolments,
    load_windows,
    protocol_needs,
    take_patients,
)
from alerts.engine.state import load_states, save_states
from alerts.episodes import escalate_due
from alerts.evaluate import RuleResult, evaluate
from alerts.notify.digest import enqueue_due_digests
from alerts.protocol import Protocol, load_protocols
from alerts.reminders.enqueue import RemindersReport, enqueue_reminders, policy_from
from alerts.reminders.facts import candidates
from alerts.tables import CompiledProtocol, compile_protocol
from alerts.windows import MetricWindow
from telemon.config import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class EvaluationReport:
    patients: int = 0
    readings: int = 0
    load_seconds: float = 0.0
    compute_seconds: float = 0.0
    apply_seconds: float = 0.0
    states_written: int = 0
    applied: Applied = field(default_factory=Applied)
    reminders: RemindersReport = field(default_factory=RemindersReport)


@dataclass(frozen=True, slots=True)
class Evaluated:
    """One protocol evaluated for its patients, before anything is written."""

    enrolment: Enrolment
    compiled: CompiledProtocol
    results: dict[str, RuleResult]


class Engine:
    """Evaluates patients on an autocommit connection of its own; not shared between threads."""

    def __init__(
        self,
        conn: psycopg.Connection,
        settings: Settings,
        protocols: Mapping[str, Protocol] | None = None,
    ) -> None:
        if not conn.autocommit:
            raise ValueError(
                "the engine manages its transactions: give it an autocommit connection"
            )
        self.conn = conn
        self.settings = settings
        self.protocols = dict(protocols) if protocols is not None else load_protocols()

    def evaluate(self, now: datetime, patient_ids: Iterable[int] | None = None) -> EvaluationReport:
        """Evaluate ``patient_ids`` (everyone enrolled when None) at ``now`` and apply it."""
        report = EvaluationReport()
        everyone = patient_ids is None
        wanted = None if patient_ids is None else sorted(set(patient_ids))
        started = time.perf_counter()
        enrolments = load_enrolments(self.conn, self.protocols, now, wanted)
        windows, ids = self.load(enrolments, now, everyone=everyone)
        own = {key: own_windows(e, windows, ids) for key, e in enrolments.items()}
        report.load_seconds = time.perf_counter() - started
        report.patients = ids.size
        report.readings = sum(w.t.size for w in windows.values())

        started = time.perf_counter()
        evaluated = [compute(e, own[key], now) for key, e in enrolments.items()]
        report.compute_seconds = time.perf_counter() - started

        started = time.perf_counter()
        for item in evaluated:
            self._apply(item, now, report, everyone=everyone)
        # Escalation goes by the clock, whoever was evaluated: every pass looks.
        self._escalate(now, report)
        # Reminders to the patients evaluated (everyone at each tick) who missed a measurement.
        found = [
            candidate
            for key, item in zip(enrolments, evaluated, strict=True)
            for candidate in candidates(item.compiled, item.enrolment.patient_ids, own[key], now)
        ]
        report.reminders = enqueue_reminders(self.conn, found, now, policy_from(self.settings))
        report.apply_seconds = time.perf_counter() - started
        return report

    def load(
        self, enrolments: Mapping[str, Enrolment], now: datetime, *, everyone: bool
    ) -> tuple[dict[str, MetricWindow], np.ndarray]:
        """Windows over the union of the enrolled patients, each metric read once for all."""
        parts = [e.patient_ids for e in enrolments.values()]
        ids = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        if ids.size == 0:
            return {}, ids
        needs = protocol_needs(e.protocol for e in enrolments.values())
        return load_windows(self.conn, ids, needs, now, everyone=everyone), ids

    def _apply(
        self, item: Evaluated, when: datetime, report: EvaluationReport, *, everyone: bool
    ) -> None:
        protocol = item.enrolment.protocol
        ids = item.enrolment.patient_ids
        now = int(when.timestamp())
        rules = [rule.key for rule in protocol.rules]
        with self.conn.transaction():
            self.conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"telemon_alerts:{protocol.key}",)
            )
            stored = load_states(self.conn, protocol.key, rules, ids, everyone=everyone)
            alerts = load_open_alerts(self.conn, protocol.key, rules, ids, everyone=everyone)
            stepped = []
            planned: list[tuple[int, int, RuleContext, Decision]] = []
            for order, compiled_rule in enumerate(item.compiled.rules):
                key = compiled_rule.key
                before = reconcile(stored[key], alerts[key], compiled_rule.snooze_after_ack, now)
                after, transitions = step(before, item.results[key], compiled_rule, now)
                decisions = plan_decisions(
                    before,
                    after,
                    transitions,
                    item.results[key],
                    alerts[key],
                    compiled_rule,
                    protocol=protocol.key,
                    now=now,
                )
                context = RuleContext(protocol.key, compiled_rule.rule, ids)
                planned.extend(
                    (decision.patient, order, context, decision) for decision in decisions
                )
                stepped.append((compiled_rule, after))
            # In patient order: engines of other protocols lock the same patients' episodes in
            # the same order, so they wait for each other instead of deadlocking.
            for _, _, context, decision in sorted(planned, key=lambda p: (p[0], p[1])):
                apply_decision(
                    self.conn, context, decision, self.protocols, self.settings, now, report.applied
                )
            for compiled_rule, after in stepped:
                report.states_written += save_states(
                    self.conn,
                    protocol.key,
                    compiled_rule.key,
                    ids,
                    stored[compiled_rule.key],
                    after,
                    with_last_at=compiled_rule.rule.kind != "missing_data",
                )

    def _escalate(self, when: datetime, report: EvaluationReport) -> None:
        with self.conn.transaction():
            report.applied.episode.add(
                escalate_due(self.conn, protocols=self.protocols, settings=self.settings, now=when)
            )
            digests = enqueue_due_digests(self.conn, when, self.settings.public_url)
            report.applied.episode.notifications += len(digests)


def own_windows(
    enrolment: Enrolment, windows: Mapping[str, MetricWindow], ids: np.ndarray
) -> dict[str, MetricWindow]:
    """One protocol's patients' windows, cut out of windows loaded for a larger cohort (``ids``).

    Part of loading, not of computing: it arranges readings, as the per-metric COPY does.
    """
    index = np.searchsorted(ids, enrolment.patient_ids)
    metrics = {m for rule in enrolment.protocol.rules for m in rule.metrics}
    return {m: take_patients(windows[m], index) for m in metrics if m in windows}


def compute(enrolment: Enrolment, own: Mapping[str, MetricWindow], now: datetime) -> Evaluated:
    """Evaluate one protocol for its patients, given their windows (see :func:`own_windows`)."""
    compiled = compile_protocol(
        enrolment.protocol,
        enrolment.patient_ids.size,
        enrolment.overrides,
        started_at=enrolment.started_at,
    )
    return Evaluated(enrolment, compiled, evaluate(compiled, own, now))
