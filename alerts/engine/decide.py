"""Pure decisions between the debouncer and the ``alerts`` table, for all patients of a rule.

:func:`reconcile` folds what people did to alerts (acknowledge, snooze, resolve by hand) into
the debounce state before a step; :func:`plan_decisions` turns a step's transitions into the
changes the lifecycle writes. Neither touches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from alerts.debounce import DebounceState, Transitions
from alerts.evaluate import NO_TIME, RuleResult
from alerts.evidence import evidence_of
from alerts.tables import CompiledRule
from telemon.findings import Evidence, Threshold

DecisionKind = Literal["open", "worsen", "downgrade", "resolve", "confirm"]
# The decisions that set a finding's level, and so what it rests on.
WITH_EVIDENCE: frozenset[DecisionKind] = frozenset({"open", "worsen", "downgrade", "confirm"})


@dataclass(frozen=True, slots=True)
class OpenAlerts:
    """The unresolved alert of each patient for one rule, arrays indexed by patient."""

    alert_id: np.ndarray  # int64, -1: no unresolved alert
    severity: np.ndarray  # int8
    acknowledged: np.ndarray  # bool: state 'acknowledged'
    opened_at: np.ndarray  # int64 epoch seconds
    notified_at: np.ndarray  # int64: escalated_at, else opened_at
    snoozed_until: np.ndarray  # int64, NO_TIME: not set

    @classmethod
    def none(cls, n_patients: int) -> OpenAlerts:
        times = np.full(n_patients, NO_TIME, np.int64)
        return cls(
            alert_id=np.full(n_patients, -1, np.int64),
            severity=np.zeros(n_patients, np.int8),
            acknowledged=np.zeros(n_patients, bool),
            opened_at=times,
            notified_at=times.copy(),
            snoozed_until=times.copy(),
        )


def reconcile(
    state: DebounceState, alerts: OpenAlerts, snooze_after_ack: np.ndarray, now: int
) -> DebounceState:
    """The debounce state once the database's alerts, which people change, have their say.

    - Resolved by a person (no unresolved alert while the state holds one): back to no alert,
      keeping ``last_at`` so readings already counted do not open it again.
    - An unresolved alert the state does not know (state lost or reset): adopted as open.
    - Acknowledged: silenced until ``snoozed_until`` (or the rule's snooze from now when the
      dashboard left it unset), and the escalation ladder starts again.
    """
    exists = alerts.alert_id >= 0
    gone = (state.level > 0) & ~exists
    adopt = exists & (state.level == 0)
    newly_acked = exists & alerts.acknowledged & ~state.acked
    acked = exists & alerts.acknowledged
    kept = np.where(state.acked, state.snoozed_until, now + snooze_after_ack)
    snooze = np.where(alerts.snoozed_until != NO_TIME, alerts.snoozed_until, kept)
    return replace(
        state,
        level=np.where(adopt, alerts.severity, np.where(gone, 0, state.level)).astype(np.int8),
        count=np.where(gone | adopt, 0, state.count),
        since=np.where(gone | adopt, NO_TIME, state.since),
        opened_at=np.where(adopt, alerts.opened_at, np.where(gone, NO_TIME, state.opened_at)),
        notified_at=np.where(adopt, alerts.notified_at, np.where(gone, NO_TIME, state.notified_at)),
        stage=np.where(gone | newly_acked, 0, state.stage),
        acked=acked,
        snoozed_until=np.where(acked, snooze, NO_TIME),
        unconfirmed=np.where(gone | adopt, False, state.unconfirmed),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine writes for one finding after a step: not a person's action on an episode
    (``telemon.alert_lifecycle.PersonAction``)."""

    kind: DecisionKind
    patient: int  # position in the evaluated cohort
    alert_id: int | None  # the unresolved alert; None when opening one
    level: int  # the alert's level after the decision
    value: float | None  # None: no finite value (no data, or never measured)
    at: int  # epoch seconds of the reading behind ``value``
    reason: str
    stage: int
    evidence: Evidence | None = None  # for the kinds in WITH_EVIDENCE
    unconfirmed: bool = False  # opened by the confirm timeout, no confirming reading yet


def plan_decisions(
    before: DebounceState,
    after: DebounceState,
    transitions: Transitions,
    result: RuleResult,
    alerts: OpenAlerts,
    rule: CompiledRule,
    *,
    protocol: str,
    now: int,
) -> list[Decision]:
    """What to write for one rule's step; ``before`` is the reconciled state it started from.

    Findings open, change level and resolve here; reminders are their episode's, which follows
    the protocol's escalation chain (``alerts.episodes``), so the debouncer's are not acted on.
    """
    kinds: list[tuple[DecisionKind, np.ndarray]] = [
        ("open", transitions.opened),
        ("worsen", transitions.escalated),
        ("downgrade", transitions.downgraded),
        ("resolve", transitions.cleared),
        ("confirm", transitions.confirmed),
    ]
    decisions = []
    for kind, mask in kinds:
        for p in np.flatnonzero(mask).tolist():
            existing = int(alerts.alert_id[p])
            if kind != "open" and existing < 0:
                continue  # nothing to update: the alert was resolved meanwhile
            value = float(result.value[p])
            level = int(after.level[p])
            evidence = (
                evidence_of(rule, result, p, protocol=protocol, now=now, level=level)
                if kind in WITH_EVIDENCE
                else None
            )
            if isinstance(evidence, Threshold) and after.unconfirmed[p]:
                # Opened by the confirm timeout: the reason says no second reading came.
                evidence = evidence.model_copy(
                    update={"unconfirmed": True, "confirm_timeout_s": int(rule.confirm_timeout[p])}
                )
            decisions.append(
                Decision(
                    kind=kind,
                    patient=p,
                    alert_id=existing if kind != "open" else None,
                    level=level,
                    # Infinite hours: never measured; stored as no value, not as JSON-less inf.
                    value=value if np.isfinite(value) else None,
                    at=int(result.at[p]),
                    reason=result.reason_of(p),
                    stage=int(after.stage[p]),
                    evidence=evidence,
                    unconfirmed=bool(after.unconfirmed[p]),
                )
            )
    return decisions
