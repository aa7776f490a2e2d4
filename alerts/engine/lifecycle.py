"""The engine's findings in the database: reading the open ones, writing what a step decided.

Everything here runs inside the caller's transaction, which also saves the debounce state: a
finding's change, its event, its episode's change and the SMS that calls for commit together
or not at all. Rows change only through ``alerts.lifecycle``; episodes through
``alerts.episodes``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg

from alerts import episodes
from alerts.engine.decide import Decision, OpenAlerts
from alerts.evaluate import NO_TIME
from alerts.lifecycle import finding_transition, open_finding
from alerts.protocol import Protocol
from telemon.config import Settings
from telemon.findings import evidence_json
from telemon.metrics import METRICS

log = logging.getLogger(__name__)


def epoch(value: datetime | None) -> int:
    return NO_TIME if value is None else int(value.timestamp())


def _evidence(decision: Decision) -> dict[str, Any]:
    """The decision's evidence as the ``details`` key it is kept under; nothing without one."""
    return {} if decision.evidence is None else {"evidence": evidence_json(decision.evidence)}


def load_open_alerts(
    conn: psycopg.Connection,
    protocol: str,
    rules: list[str],
    patient_ids: np.ndarray,
    *,
    everyone: bool = False,
) -> dict[str, OpenAlerts]:
    """The unresolved finding of each patient and rule (the partial unique index allows one)."""
    result = {rule: OpenAlerts.none(patient_ids.size) for rule in rules}
    query = (
        "SELECT rule, patient_id, id, severity, state, opened_at, escalated_at, snoozed_until "
        "FROM alerts WHERE protocol = %s AND state <> 'resolved'"
    )
    params: tuple[Any, ...] = (protocol,)
    if not everyone:
        query += " AND patient_id = ANY(%s)"
        params += (patient_ids.tolist(),)
    for rule, patient_id, alert_id, severity, state, opened, escalated, snoozed in conn.execute(
        query, params
    ):
        index = int(np.searchsorted(patient_ids, patient_id))
        if rule not in result or index >= patient_ids.size or patient_ids[index] != patient_id:
            continue
        alerts = result[rule]
        alerts.alert_id[index] = alert_id
        alerts.severity[index] = severity
        alerts.acknowledged[index] = state == "acknowledged"
        alerts.opened_at[index] = epoch(opened)
        alerts.notified_at[index] = epoch(escalated or opened)
        alerts.snoozed_until[index] = epoch(snoozed)
    return result


@dataclass(frozen=True, slots=True)
class RuleContext:
    protocol: str
    rule: Any  # the protocol's rule
    patient_ids: np.ndarray


@dataclass(slots=True)
class Applied:
    opened: int = 0  # findings
    worsened: int = 0
    downgraded: int = 0
    resolved: int = 0
    confirmed: int = 0  # unconfirmed findings a second reading confirmed
    conflicts: int = 0  # opens another engine got to first
    episode: episodes.Counts = field(default_factory=episodes.Counts)

    @property
    def notifications(self) -> int:
        return self.episode.notifications

    @property
    def cancelled(self) -> int:
        return self.episode.cancelled


def apply_decision(
    conn: psycopg.Connection,
    context: RuleContext,
    decision: Decision,
    protocols: Mapping[str, Protocol],
    settings: Settings,
    now: int,
    applied: Applied,
) -> None:
    """Write one finding's change and bring its episode in line."""
    when = datetime.fromtimestamp(now, UTC)
    patient_id = int(context.patient_ids[decision.patient])
    if decision.kind == "open":
        alert_id = _open(conn, context, decision, patient_id, when)
        if alert_id is None:
            applied.conflicts += 1
            return
        applied.opened += 1
        applied.episode.add(
            episodes.attach(
                conn,
                alert_id,
                patient_id=patient_id,
                severity=decision.level,
                routing=context.rule.routing,
                protocol=context.protocol,
                protocols=protocols,
                settings=settings,
                now=when,
            )
        )
        return
    assert decision.alert_id is not None
    kind, changes = _FINDING_CHANGES[decision.kind](decision, when)
    change = finding_transition(
        conn,
        decision.alert_id,
        kind,
        now=when,
        changes=changes,
        severity=decision.level or None,
        details={"value": decision.value, "reason": decision.reason, **_evidence(decision)},
    )
    if decision.kind == "resolve":
        applied.resolved += 1
    elif decision.kind == "worsen":
        applied.worsened += 1
    elif decision.kind == "confirm":
        applied.confirmed += 1
    else:
        applied.downgraded += 1
    if change.episode_id is not None:
        applied.episode.add(
            episodes.settle(
                conn,
                change.episode_id,
                protocols=protocols,
                settings=settings,
                now=when,
                alert_id=decision.alert_id,
            )
        )


def _open(
    conn: psycopg.Connection,
    context: RuleContext,
    decision: Decision,
    patient_id: int,
    when: datetime,
) -> int | None:
    rule = context.rule
    channel = decision.reason.split(":", 1)[0]
    metric = METRICS.get(channel)
    details = {
        "rule_title": rule.title,
        "rule_kind": rule.kind,
        "channel": channel,
        "reading_at": datetime.fromtimestamp(decision.at, UTC).isoformat()
        if decision.at != NO_TIME
        else None,
        **_evidence(decision),
    }
    if decision.unconfirmed:
        # Opened by the confirm timeout: no second reading yet (false once confirmed).
        details["unconfirmed"] = True
    alert_id = open_finding(
        conn,
        patient_id=patient_id,
        protocol=context.protocol,
        rule=rule.key,
        kind="not_measuring" if rule.kind == "missing_data" else "clinical",
        routing=rule.routing,
        severity=decision.level,
        now=when,
        metric_id=metric.id if metric else None,
        value=decision.value,
        reason=decision.reason,
        details=details,
    )
    if alert_id is None:
        log.info("alert %s/%s for patient %s already open", context.protocol, rule.key, patient_id)
    return alert_id


def _level_change(decision: Decision, when: datetime) -> tuple[str, dict[str, Any]]:
    kind = "worsened" if decision.kind == "worsen" else "downgraded"
    changes = {
        "severity": decision.level,
        "trigger_value": decision.value,
        "reason": decision.reason,
    }
    evidence = _evidence(decision)
    return kind, changes | ({"details": evidence} if evidence else {})


def _resolution(decision: Decision, when: datetime) -> tuple[str, dict[str, Any]]:
    return "auto_resolved", {"resolved_at": when, "outcome": "auto_resolved"}


def _confirmation(decision: Decision, when: datetime) -> tuple[str, dict[str, Any]]:
    # The evidence now names the confirming readings, so the reason stops saying "unconfirmed".
    return "confirmed", {"details": {"unconfirmed": False, **_evidence(decision)}}


_FINDING_CHANGES = {
    "worsen": _level_change,
    "downgrade": _level_change,
    "resolve": _resolution,
    "confirm": _confirmation,
}
