"""What staff do to an episode or one of its findings: each action is one transaction with its
lifecycle event (``alerts.episodes``, the one writer) and its audit row."""

from __future__ import annotations

from datetime import datetime

import psycopg

from alerts import episodes
from alerts.lifecycle import TransitionNotAllowed
from dashboard import audit
from dashboard.authz import Principal
from dashboard.bands import protocols
from telemon.alert_lifecycle import PersonAction
from telemon.config import Settings


class Conflict(Exception):
    """The episode's or finding's state does not allow the action (someone got there first)."""


def perform(
    conn: psycopg.Connection,
    user: Principal,
    episode_id: int,
    action: PersonAction,
    *,
    now: datetime,
    note: str = "",
    outcome: str | None = None,
    force: bool = False,
    notify: Settings | None = None,
) -> None:
    """Apply ``action`` to the episode; the caller has checked the user may act on it.

    An escalation queues the GP's SMS (``notify`` says how) in the same transaction; a
    resolution or an acknowledgement cancels the waiting SMS it made pointless.
    """
    with conn.transaction():
        try:
            change = episodes.act(
                conn,
                episode_id,
                action,
                actor=user.id,
                now=now,
                protocols=protocols(),
                settings=notify,
                note=note,
                outcome=outcome,
                force=force,
            )
        except TransitionNotAllowed as exc:
            raise Conflict(str(exc)) from None
        details: dict[str, object] = {"from": change.from_state, "to": change.to_state}
        if outcome:
            details["outcome"] = outcome
        audit.record(
            conn,
            user,
            f"episode.{action}",
            patient_id=change.patient_id,
            object_type="episode",
            object_id=episode_id,
            details=details,
        )


def resolve_finding(
    conn: psycopg.Connection,
    user: Principal,
    alert_id: int,
    *,
    now: datetime,
    settings: Settings,
    note: str = "",
) -> None:
    """Resolve one finding; its episode goes on with the others, or resolves with its last."""
    with conn.transaction():
        try:
            change = episodes.resolve_finding(
                conn,
                alert_id,
                actor=user.id,
                now=now,
                protocols=protocols(),
                settings=settings,
                note=note,
            )
        except TransitionNotAllowed as exc:
            raise Conflict(str(exc)) from None
        audit.record(
            conn,
            user,
            "finding.resolve",
            patient_id=change.patient_id,
            object_type="alert",
            object_id=alert_id,
            details={"from": change.from_state, "to": change.to_state},
        )
