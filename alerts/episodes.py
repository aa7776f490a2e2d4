"""Episodes: a patient's open findings as one, their escalation chain, what people do to them.

The engine calls :func:`attach` when it opens a finding and :func:`settle` when one changes;
each tick it calls :func:`escalate_due`. The dashboard calls :func:`act` and
:func:`resolve_finding`. Everything runs in the caller's transaction and changes rows only
through ``alerts.lifecycle``; SMS are queued in the same transaction (``alerts.notify``).

What texts whom (``alerts.notify.routing``): an episode that opens red, or whose alert level
rises to red, texts the GP and the duty phone at once; a finding that joins at the same or a
lower level texts nobody; the escalation chain of the protocol that set the alert level does
the rest, and an acknowledgement holds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import psycopg

from alerts import escalation
from alerts.lifecycle import (
    Change,
    TransitionNotAllowed,
    finding_transition,
    open_episode,
    transition,
)
from alerts.notify import cancel_moot_notifications, enqueue_episode_notifications
from alerts.notify.stages import StageKind
from alerts.protocol import MAX_GP_SMS_PER_LEVEL, RED, Escalation, EscalationStep, Protocol
from telemon.alert_lifecycle import PersonAction
from telemon.config import Settings
from telemon.database import one_row

# A protocol no longer loaded (renamed, retired) still escalates, on the default chain.
_DEFAULT_ESCALATION = Escalation()
# When an episode's findings name no rule we know, an acknowledgement holds this long.
_DEFAULT_SNOOZE = timedelta(hours=4)


@dataclass(slots=True)
class Counts:
    """What a call did, for the engine's report."""

    opened: int = 0
    joined: int = 0
    worsened: int = 0
    downgraded: int = 0
    resolved: int = 0
    escalated: int = 0
    snooze_expired: int = 0
    notifications: int = 0
    cancelled: int = 0

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def chain_of(
    protocols: Mapping[str, Protocol], protocol: str | None, level: int
) -> tuple[EscalationStep, ...]:
    source = protocols.get(protocol) if protocol else None
    return (source.escalation if source else _DEFAULT_ESCALATION).chain(level)


def attach(
    conn: psycopg.Connection,
    alert_id: int,
    *,
    patient_id: int,
    severity: int,
    routing: str,
    protocol: str,
    protocols: Mapping[str, Protocol],
    settings: Settings,
    now: datetime,
) -> Counts:
    """Put a newly opened finding into the patient's open episode, opening one if none is."""
    counts = Counts()
    level = severity if routing == "gp_and_centre" else 0
    position = escalation.start(chain_of(protocols, protocol, level), now)
    while True:
        episode_id = open_episode(
            conn,
            patient_id=patient_id,
            severity=severity,
            alert_level=level,
            protocol=protocol if level else None,
            escalation_step=position.step,
            next_escalation_at=position.due,
            now=now,
            alert_id=alert_id,
        )
        if episode_id is not None:
            conn.execute("UPDATE alerts SET episode_id = %s WHERE id = %s", (episode_id, alert_id))
            counts.opened += 1
            if level == RED:
                counts.notifications += _notify(conn, episode_id, "opened", settings, now)
            return counts
        row = conn.execute(
            "SELECT id FROM episodes WHERE patient_id = %s AND state <> 'resolved' FOR UPDATE",
            (patient_id,),
        ).fetchone()
        if row is not None:
            break
        # Resolved between our insert and our look: open a new one after all.
    episode_id = row[0]
    conn.execute("UPDATE alerts SET episode_id = %s WHERE id = %s", (episode_id, alert_id))
    transition(conn, episode_id, "finding_joined", now=now, alert_id=alert_id, severity=severity)
    counts.joined += 1
    counts.add(
        settle(
            conn,
            episode_id,
            protocols=protocols,
            settings=settings,
            now=now,
            alert_id=alert_id,
            new_finding=True,
        )
    )
    return counts


def settle(
    conn: psycopg.Connection,
    episode_id: int,
    *,
    protocols: Mapping[str, Protocol],
    settings: Settings,
    now: datetime,
    actor: int | None = None,
    alert_id: int | None = None,
    new_finding: bool = False,
) -> Counts:
    """Bring the episode in line with its open findings, after one of them changed.

    Its severity is the worst open finding's, its alert level the worst routed to the GP. A
    higher alert level that is news (above the episode's peak, or a ``new_finding`` at it)
    starts that level's chain and, at red, texts the GP and the duty phone; an open finding
    back up to a level reached before goes on with the chain where it was, texting nobody; a
    lower one goes on with the steps left on the lower chain. With no open finding left the
    episode resolves: by the engine when readings cleared it, by ``actor`` when a person did.
    """
    counts = Counts()
    row = conn.execute(
        "SELECT state, severity, alert_level, peak_level, escalation_step, outcome "
        "FROM episodes WHERE id = %s FOR UPDATE",
        (episode_id,),
    ).fetchone()
    if row is None or row[0] == "resolved":
        return counts
    state, severity, level, peak, step, outcome = row
    open_count, new_severity, new_level, new_protocol = one_row(
        conn.execute(
            """
        SELECT count(*), max(severity),
               coalesce(max(severity) FILTER (WHERE routing = 'gp_and_centre'), 0),
               (array_agg(protocol ORDER BY routing = 'gp_and_centre' DESC, severity DESC,
                                            opened_at, id)
                FILTER (WHERE routing = 'gp_and_centre'))[1]
        FROM alerts WHERE episode_id = %s AND state <> 'resolved'
        """,
            (episode_id,),
        )
    )
    if open_count == 0:
        counts.resolved += 1
        if actor is None:
            transition(
                conn,
                episode_id,
                "auto_resolved",
                now=now,
                alert_id=alert_id,
                # A call's outcome a nurse recorded says more than that the readings cleared.
                changes={
                    "resolved_at": now,
                    "next_escalation_at": None,
                    "outcome": outcome or "auto_resolved",
                },
            )
        else:
            transition(
                conn,
                episode_id,
                "resolve",
                now=now,
                actor=actor,
                alert_id=alert_id,
                changes={"resolved_at": now, "resolved_by": actor, "next_escalation_at": None},
            )
        counts.cancelled += cancel_moot_notifications(conn, now, episode_id)
        return counts
    # News for the people texted: a level the episode never reached, or a new finding at a level
    # none of its open findings has (a second red after the first one cleared). An open finding
    # back up to where it was (a value on a band's edge) is not.
    if new_level > peak or (new_finding and new_level > level):
        position = escalation.start(chain_of(protocols, new_protocol, new_level), now)
        transition(
            conn,
            episode_id,
            "worsened",
            now=now,
            alert_id=alert_id,
            severity=new_severity,
            changes={
                "severity": new_severity,
                "alert_level": new_level,
                "peak_level": max(peak, new_level),
                "protocol": new_protocol,
                "escalation_step": position.step,
                "next_escalation_at": position.due,
                "snoozed_until": None,
            },
        )
        counts.worsened += 1
        if new_level == RED:
            reason: StageKind = "worsened" if level > 0 else "opened"
            counts.notifications += _notify(conn, episode_id, reason, settings, now)
        return counts
    if new_level > level or new_severity > severity:
        # Worse, but no news for the people texted: an open finding back up to a level the
        # episode had reached (a value on a band's edge), or worse for the queue only (a patient
        # who also stopped measuring). The nurses see it again and nobody is texted; an
        # acknowledgement it breaks no longer holds the chain, which goes on where it was.
        worse: dict[str, object] = {
            "severity": new_severity,
            "alert_level": new_level,
            "protocol": new_protocol,
            "snoozed_until": None,
        }
        if new_level == 0:
            worse["next_escalation_at"] = None
        elif new_level != level or state == "acknowledged":
            position = escalation.resume(chain_of(protocols, new_protocol, new_level), step, now)
            worse |= {"escalation_step": position.step, "next_escalation_at": position.due}
        transition(
            conn,
            episode_id,
            "worsened",
            now=now,
            alert_id=alert_id,
            severity=new_severity,
            changes=worse,
        )
        counts.worsened += 1
        return counts
    if new_severity < severity or new_level < level:
        changes: dict[str, object] = {"severity": new_severity, "alert_level": new_level}
        if new_level < level:
            changes["protocol"] = new_protocol
            if state == "acknowledged" or new_level == 0:
                changes["next_escalation_at"] = None
            else:
                position = escalation.resume(
                    chain_of(protocols, new_protocol, new_level), step, now
                )
                changes |= {"escalation_step": position.step, "next_escalation_at": position.due}
        transition(
            conn,
            episode_id,
            "downgraded",
            now=now,
            alert_id=alert_id,
            severity=new_severity,
            changes=changes,
        )
        counts.downgraded += 1
    return counts


def escalate_due(
    conn: psycopg.Connection,
    *,
    protocols: Mapping[str, Protocol],
    settings: Settings,
    now: datetime,
) -> Counts:
    """Take the escalation steps that are due, and end the acknowledgements that lapsed."""
    counts = Counts()
    due = conn.execute(
        "SELECT id, alert_level, protocol, escalation_step FROM episodes "
        "WHERE state IN ('open', 'escalated') AND next_escalation_at <= %s "
        "ORDER BY patient_id FOR UPDATE SKIP LOCKED",
        (now,),
    ).fetchall()
    for episode_id, level, protocol, step in due:
        chain = chain_of(protocols, protocol, level)
        if not chain:
            transition(
                conn, episode_id, "downgraded", now=now, changes={"next_escalation_at": None}
            )
            continue
        taken, position = escalation.take(chain, step, now)
        # A GP who has heard of this episode twice already (say an amber reminder, then the news
        # that it turned red) is not reminded a third time: the chain goes on to the duty phone.
        heard = taken.to == "gp" and _gp_texts(conn, episode_id) >= MAX_GP_SMS_PER_LEVEL
        transition(
            conn,
            episode_id,
            "escalated",
            now=now,
            severity=level,
            changes={
                "escalated_at": now,
                "escalation_step": position.step,
                "next_escalation_at": position.due,
            },
            details={
                "step": min(step, len(chain) - 1) + 1,
                "to": taken.to,
                **({"not_texted": "the GP has had two SMS about this episode"} if heard else {}),
            },
        )
        counts.escalated += 1
        if not heard:
            counts.notifications += _notify(
                conn, episode_id, "escalated", settings, now, to=taken.to
            )
    lapsed = conn.execute(
        "SELECT id, alert_level, protocol, escalation_step FROM episodes "
        "WHERE state = 'acknowledged' AND snoozed_until <= %s "
        "ORDER BY patient_id FOR UPDATE SKIP LOCKED",
        (now,),
    ).fetchall()
    for episode_id, level, protocol, step in lapsed:
        position = escalation.resume(chain_of(protocols, protocol, level), step, now)
        transition(
            conn,
            episode_id,
            "snooze_expired",
            now=now,
            changes={
                "snoozed_until": None,
                "escalation_step": position.step,
                "next_escalation_at": position.due if level else None,
            },
        )
        counts.snooze_expired += 1
    return counts


def act(
    conn: psycopg.Connection,
    episode_id: int,
    action: PersonAction,
    *,
    actor: int,
    now: datetime,
    protocols: Mapping[str, Protocol],
    settings: Settings | None = None,
    note: str = "",
    outcome: str | None = None,
    force: bool = False,
) -> Change:
    """A person's action on an episode. ``settings``: how to text, for an escalation (None:
    the escalation is recorded and nobody is texted)."""
    row = conn.execute(
        "SELECT claimed_by FROM episodes WHERE id = %s FOR UPDATE", (episode_id,)
    ).fetchone()
    if row is None:
        raise TransitionNotAllowed("no such episode")
    claimed_by = row[0]
    note_text = note.strip() or None
    changes: dict[str, object] = {}
    details: dict[str, object] = {}
    if action == "claim":
        if claimed_by not in (None, actor) and not force:
            raise TransitionNotAllowed("already claimed by a colleague")
        changes = {"claimed_by": actor, "claimed_at": now}
        details = {"previous_claim": claimed_by}
    elif action == "outcome":
        # Recording a call makes the caller its owner if nobody had claimed the episode.
        changes = {"outcome": outcome}
        if claimed_by is None:
            changes |= {"claimed_by": actor, "claimed_at": now}
        details = {"outcome": outcome}
    elif action == "acknowledge":
        changes = {
            "acknowledged_by": actor,
            "acknowledged_at": now,
            "snoozed_until": now + _snooze(conn, episode_id, protocols),
            "next_escalation_at": None,
        }
    elif action == "escalate":
        changes = {"escalated_at": now}
        details = {"to": "gp"}
    elif action == "resolve":
        changes = {"resolved_by": actor, "resolved_at": now, "next_escalation_at": None}
        if note_text:
            changes["resolution_note"] = note_text
        if outcome:
            changes["outcome"] = outcome
            details = {"outcome": outcome}
    change = transition(
        conn,
        episode_id,
        action,
        now=now,
        actor=actor,
        changes=changes,
        note=note_text,
        details=details,
    )
    if action == "resolve":
        for (finding_id,) in conn.execute(
            "SELECT id FROM alerts WHERE episode_id = %s AND state <> 'resolved' ORDER BY id",
            (episode_id,),
        ).fetchall():
            finding_transition(
                conn,
                finding_id,
                "resolve",
                now=now,
                actor=actor,
                changes={"resolved_by": actor, "resolved_at": now, "outcome": outcome},
                note=note_text,
            )
    if action in ("acknowledge", "resolve"):
        cancel_moot_notifications(conn, now, episode_id)
    if action == "escalate" and settings is not None:
        _notify(conn, episode_id, "escalated", settings, now)
    return change


def resolve_finding(
    conn: psycopg.Connection,
    alert_id: int,
    *,
    actor: int,
    now: datetime,
    protocols: Mapping[str, Protocol],
    settings: Settings,
    note: str = "",
) -> Change:
    """A person resolves one finding of an episode; the episode resolves with its last one."""
    change = finding_transition(
        conn,
        alert_id,
        "resolve",
        now=now,
        actor=actor,
        changes={"resolved_by": actor, "resolved_at": now},
        note=note.strip() or None,
    )
    if change.episode_id is not None:
        transition(
            conn, change.episode_id, "finding_resolved", now=now, actor=actor, alert_id=alert_id
        )
        settle(
            conn,
            change.episode_id,
            protocols=protocols,
            settings=settings,
            now=now,
            actor=actor,
            alert_id=alert_id,
        )
    return change


def _gp_texts(conn: psycopg.Connection, episode_id: int) -> int:
    """SMS to the GP about the episode that went, or will go, out."""
    row = conn.execute(
        "SELECT count(*) FROM notifications WHERE episode_id = %s AND recipient_kind = 'gp' "
        "AND status <> 'cancelled'",
        (episode_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def _snooze(
    conn: psycopg.Connection, episode_id: int, protocols: Mapping[str, Protocol]
) -> timedelta:
    """The shortest snooze among the open findings' rules: the episode comes back no later
    than its most pressing finding would have."""
    seconds = []
    for protocol, rule in conn.execute(
        "SELECT protocol, rule FROM alerts WHERE episode_id = %s AND state <> 'resolved'",
        (episode_id,),
    ):
        try:
            seconds.append(protocols[protocol].rule(rule).snooze_after_ack)
        except KeyError:
            continue
    return timedelta(seconds=min(seconds)) if seconds else _DEFAULT_SNOOZE


def _notify(
    conn: psycopg.Connection,
    episode_id: int,
    reason: Literal["opened", "worsened", "escalated"],
    settings: Settings,
    now: datetime,
    *,
    to: Literal["gp", "duty_phone"] | None = None,
) -> int:
    return len(enqueue_episode_notifications(conn, episode_id, reason, settings, now=now, to=to))
