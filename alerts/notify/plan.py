"""From an episode to the notification rows to write: routing, texts and idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from alerts.notify.routing import EpisodeFacts, GpContact, RecipientKind, ServiceCentre, route
from alerts.notify.stages import Stage
from alerts.notify.texts import AlertSummary, Reason, Wording, initials, render_sms
from alerts.protocol import Recipient
from telemon.findings import Evidence


@dataclass(frozen=True, slots=True)
class PatientFacts:
    given_name: str
    family_name: str


@dataclass(frozen=True, slots=True)
class Finding:
    """The episode's worst open finding, which the SMS names."""

    alert_id: int | None
    metric: str | None  # a key of telemon.metrics.METRICS
    value: float | None
    evidence: Evidence | None = None  # what it rests on, for the reason in words
    # Hidden by the patient from everyone but their GP (oscuramento): named to the GP only.
    withheld: bool = False


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    idempotency_key: str
    episode_id: int
    alert_id: int | None  # the finding the SMS names
    reason: Reason
    stage: Stage
    recipient_kind: RecipientKind
    staff_id: int | None  # notifications.recipient_id references staff; a care team is not one
    to: str
    body: str
    not_before: datetime


def idempotency_key(
    episode_id: int, recipient_kind: RecipientKind, recipient_id: int | None, stage: Stage
) -> str:
    """One SMS per episode, recipient and stage: 'episode:17:gp:4:escalated:2'."""
    recipient = "default" if recipient_id is None else str(recipient_id)
    return f"episode:{episode_id}:{recipient_kind}:{recipient}:{stage.label}"


def wording(reason: Reason, episode: EpisodeFacts) -> Wording:
    # An escalation after an acknowledgement lapsed must not say "not yet acknowledged".
    if reason == "escalated" and episode.acknowledged_before:
        return "reminded"
    return reason


def plan_notifications(
    episode: EpisodeFacts,
    finding: Finding,
    patient: PatientFacts,
    gp: GpContact,
    centre: ServiceCentre,
    reason: Reason,
    stage: Stage,
    now: datetime,
    public_url: str,
    to: Recipient | None = None,
) -> list[PlannedNotification]:
    summary = AlertSummary(
        episode_id=episode.id,
        severity=max(episode.alert_level, 1),
        initials=initials(patient.given_name, patient.family_name),
        metric=finding.metric,
        value=finding.value,
        evidence=finding.evidence,
    )
    # The centre learns that there is a finding, its severity and the link; the page it opens
    # says to call the GP (dashboard/restrictions.py).
    unnamed = replace(summary, metric=None, value=None, evidence=None)
    return [
        PlannedNotification(
            idempotency_key=idempotency_key(
                episode.id, delivery.recipient_kind, delivery.recipient_id, stage
            ),
            episode_id=episode.id,
            alert_id=finding.alert_id,
            reason=reason,
            stage=stage,
            recipient_kind=delivery.recipient_kind,
            staff_id=delivery.recipient_id if delivery.recipient_kind == "gp" else None,
            to=delivery.to,
            body=render_sms(
                unnamed if finding.withheld and delivery.recipient_kind != "gp" else summary,
                wording(reason, episode),
                delivery.language,
                public_url,
            ),
            not_before=delivery.not_before,
        )
        for delivery in route(episode, gp, centre, reason, now, to)
    ]
