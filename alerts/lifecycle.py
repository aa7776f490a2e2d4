"""The lifecycle of findings and episodes: their states, the transitions allowed, one writer.

A *finding* is one rule's alert for one patient (an ``alerts`` row). The findings of a patient
that are open at the same time form one *episode* (an ``episodes`` row): what a nurse claims,
calls about, acknowledges, escalates and resolves, and what texts a GP. The alerts engine and
the dashboard change both only through :func:`transition` and :func:`finding_transition`:
each checks the table below, updates the row and writes its event, in the caller's
transaction. Events written by the engine have ``actor_id`` NULL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from telemon.alert_lifecycle import ACTIVE_STATES, AlertState


def _stay(*states: AlertState) -> Mapping[AlertState, AlertState]:
    return MappingProxyType({s: s for s in states})


def _to(target: AlertState, *states: AlertState) -> Mapping[AlertState, AlertState]:
    return MappingProxyType(dict.fromkeys(states, target))


# Per transition, the states it may start from and where each one leads.
EPISODE_TRANSITIONS: Mapping[str, Mapping[AlertState, AlertState]] = MappingProxyType(
    {
        # The engine's.
        "finding_joined": _stay(*ACTIVE_STATES),
        # A worse level breaks an acknowledgement: it is no longer the episode acknowledged.
        "worsened": MappingProxyType(
            {"open": "open", "acknowledged": "open", "escalated": "escalated"}
        ),
        "downgraded": _stay(*ACTIVE_STATES),
        "finding_resolved": _stay(*ACTIVE_STATES),
        "escalated": _to("escalated", "open", "escalated"),
        "snooze_expired": _to("open", "acknowledged"),
        "auto_resolved": _to("resolved", *ACTIVE_STATES),
        # People's.
        "claim": _stay(*ACTIVE_STATES),
        "outcome": _stay(*ACTIVE_STATES),
        "acknowledge": _to("acknowledged", "open", "escalated"),
        "escalate": _to("escalated", "open", "acknowledged"),
        "resolve": _to("resolved", *ACTIVE_STATES),
    }
)

# A finding is open until the readings clear it or a person resolves it; acknowledging and
# escalating belong to its episode.
FINDING_TRANSITIONS: Mapping[str, Mapping[AlertState, AlertState]] = MappingProxyType(
    {
        "worsened": _stay("open"),
        "downgraded": _stay("open"),
        "confirmed": _stay("open"),
        "auto_resolved": _to("resolved", "open"),
        "resolve": _to("resolved", "open"),
    }
)

# The columns a transition may set besides state and updated_at.
_EPISODE_COLUMNS = frozenset(
    {
        "severity",
        "alert_level",
        "peak_level",
        "protocol",
        "escalation_step",
        "next_escalation_at",
        "claimed_by",
        "claimed_at",
        "acknowledged_by",
        "acknowledged_at",
        "snoozed_until",
        "escalated_at",
        "resolved_by",
        "resolved_at",
        "outcome",
        "resolution_note",
    }
)
_FINDING_COLUMNS = frozenset(
    {
        "severity",
        "trigger_value",
        "reason",
        "details",
        "resolved_by",
        "resolved_at",
        "outcome",
        "resolution_note",
    }
)


class TransitionNotAllowed(Exception):
    """The row's state does not allow the transition (someone else got there first)."""


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    patient_id: int
    kind: str
    from_state: AlertState
    to_state: AlertState
    episode_id: int | None  # the episode's own id, or the finding's episode (None: none)


def transition(
    conn: psycopg.Connection,
    episode_id: int,
    kind: str,
    *,
    now: datetime,
    actor: int | None = None,
    changes: Mapping[str, Any] | None = None,
    note: str | None = None,
    details: Mapping[str, Any] | None = None,
    alert_id: int | None = None,
    severity: int | None = None,
) -> Change:
    """Apply ``kind`` to the episode: lock it, check the table, update, write the event."""
    before, after, patient_id, _ = _move(conn, _EPISODES, episode_id, kind, now, changes)
    record_episode_event(
        conn,
        episode_id,
        kind,
        now=now,
        alert_id=alert_id,
        actor=actor,
        from_state=before,
        to_state=after,
        severity=severity,
        note=note,
        details=details,
    )
    return Change(episode_id, patient_id, kind, before, after, episode_id)


def open_finding(
    conn: psycopg.Connection,
    *,
    patient_id: int,
    protocol: str,
    rule: str,
    kind: str,
    routing: str,
    severity: int,
    now: datetime,
    metric_id: int | None,
    value: float | None,
    reason: str,
    details: Mapping[str, Any],
) -> int | None:
    """Insert a finding and its 'opened' event; None when one is already open for the patient
    and rule (the partial unique index is the last word, whatever the caller believed)."""
    row = conn.execute(
        """
        INSERT INTO alerts (patient_id, protocol, rule, kind, routing, severity, state, opened_at,
                            updated_at, metric_id, trigger_value, reason, details)
        VALUES (%s, %s, %s, %s, %s, %s, 'open', %s, %s, %s, %s, %s, %s)
        ON CONFLICT (patient_id, protocol, rule) WHERE state <> 'resolved' DO NOTHING
        RETURNING id
        """,
        (
            patient_id,
            protocol,
            rule,
            kind,
            routing,
            severity,
            now,
            now,
            metric_id,
            value,
            reason,
            Jsonb(dict(details)),
        ),
    ).fetchone()
    if row is None:
        return None
    record_finding_event(
        conn,
        row[0],
        "opened",
        now=now,
        to_state="open",
        severity=severity,
        details={"value": value, "reason": reason, **details},
    )
    return int(row[0])


def open_episode(
    conn: psycopg.Connection,
    *,
    patient_id: int,
    severity: int,
    alert_level: int,
    protocol: str | None,
    escalation_step: int,
    next_escalation_at: datetime | None,
    now: datetime,
    alert_id: int,
) -> int | None:
    """Open the patient's episode with its 'opened' event; None when one is open already.

    Two engines opening findings for one patient at once both get here: the second insert
    waits for the first transaction and then does nothing, and its caller joins that episode.
    """
    row = conn.execute(
        """
        INSERT INTO episodes (patient_id, severity, alert_level, peak_level, protocol, state,
                              opened_at, updated_at, escalation_step, next_escalation_at)
        VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s)
        ON CONFLICT (patient_id) WHERE state <> 'resolved' DO NOTHING
        RETURNING id
        """,
        (
            patient_id,
            severity,
            alert_level,
            alert_level,
            protocol,
            now,
            now,
            escalation_step,
            next_escalation_at,
        ),
    ).fetchone()
    if row is None:
        return None
    record_episode_event(
        conn, row[0], "opened", now=now, alert_id=alert_id, to_state="open", severity=severity
    )
    return int(row[0])


def finding_transition(
    conn: psycopg.Connection,
    alert_id: int,
    kind: str,
    *,
    now: datetime,
    actor: int | None = None,
    changes: Mapping[str, Any] | None = None,
    note: str | None = None,
    details: Mapping[str, Any] | None = None,
    severity: int | None = None,
) -> Change:
    """Apply ``kind`` to one finding (an ``alerts`` row), with its ``alert_events`` row."""
    before, after, patient_id, episode_id = _move(conn, _FINDINGS, alert_id, kind, now, changes)
    record_finding_event(
        conn,
        alert_id,
        kind,
        now=now,
        actor=actor,
        from_state=before,
        to_state=after,
        severity=severity,
        note=note,
        details=details,
    )
    return Change(alert_id, patient_id, kind, before, after, episode_id)


def record_finding_event(
    conn: psycopg.Connection,
    alert_id: int,
    kind: str,
    *,
    now: datetime,
    actor: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    severity: int | None = None,
    note: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO alert_events (alert_id, at, actor_id, kind, from_state, to_state, severity, "
        "note, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            alert_id,
            now,
            actor,
            kind,
            from_state,
            to_state,
            severity,
            note,
            Jsonb(dict(details or {})),
        ),
    )


def record_episode_event(
    conn: psycopg.Connection,
    episode_id: int,
    kind: str,
    *,
    now: datetime,
    details: Mapping[str, Any] | None = None,
    alert_id: int | None = None,
    actor: int | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    severity: int | None = None,
    note: str | None = None,
) -> None:
    """One row of the episode's history: a transition's (see :func:`transition`), or an event
    that changes nothing of the episode (an SMS queued, sent, cancelled...)."""
    conn.execute(
        "INSERT INTO episode_events (episode_id, alert_id, at, actor_id, kind, from_state, "
        "to_state, severity, note, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            episode_id,
            alert_id,
            now,
            actor,
            kind,
            from_state,
            to_state,
            severity,
            note,
            Jsonb(dict(details or {})),
        ),
    )


@dataclass(frozen=True, slots=True)
class _Table:
    name: str
    noun: str  # in messages
    episode_column: str  # the row's episode: the episode's own id, or a finding's episode_id
    transitions: Mapping[str, Mapping[AlertState, AlertState]]
    columns: frozenset[str]


_EPISODES = _Table("episodes", "episode", "id", EPISODE_TRANSITIONS, _EPISODE_COLUMNS)
_FINDINGS = _Table("alerts", "finding", "episode_id", FINDING_TRANSITIONS, _FINDING_COLUMNS)


def _move(
    conn: psycopg.Connection,
    table: _Table,
    row_id: int,
    kind: str,
    now: datetime,
    changes: Mapping[str, Any] | None,
) -> tuple[AlertState, AlertState, int, int | None]:
    """Lock the row, check that ``kind`` may start from its state, update it: (from, to,
    patient, episode)."""
    moves = table.transitions[kind]
    row = conn.execute(
        sql.SQL("SELECT state, patient_id, {} FROM {} WHERE id = %s FOR UPDATE").format(
            sql.Identifier(table.episode_column), sql.Identifier(table.name)
        ),
        (row_id,),
    ).fetchone()
    if row is None:
        raise TransitionNotAllowed(f"no {table.noun} {row_id}")
    before, patient_id, episode_id = row
    if before not in moves:
        raise TransitionNotAllowed(f"the {table.noun} is {before}: cannot {kind}")
    unknown = set(changes or {}) - table.columns
    if unknown:
        raise ValueError(f"{table.name}: a transition cannot set {sorted(unknown)}")
    values = {name: Jsonb(v) if name == "details" else v for name, v in (changes or {}).items()}
    assignments = [
        sql.SQL("{} = {}").format(
            sql.Identifier(name),
            # details are merged into what the row has, not replaced.
            sql.SQL("details || %(details)s") if name == "details" else sql.Placeholder(name),
        )
        for name in values
    ]
    conn.execute(
        sql.SQL("UPDATE {} SET state = %(state)s, updated_at = %(now)s{} WHERE id = %(id)s").format(
            sql.Identifier(table.name),
            sql.SQL("").join(sql.SQL(", ") + a for a in assignments),
        ),
        {**values, "state": moves[before], "now": now, "id": row_id},
    )
    return before, moves[before], patient_id, episode_id
