"""From an alert to the notification rows to write: routing, texts and idempotency keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alerts.notify.routing import AlertFacts, GpContact, RecipientKind, ServiceCentre, route
from alerts.notify.stages import Stage
from alerts.notify.texts import AlertSummary, Reason, initials, render_sms


@dataclass(frozen=True, slots=True)
class PatientFacts:
    given_name: str
    family_name: str


@dataclass(frozen=True, slots=True)
class Finding:
    metric: str | None  # a key of telemon.metrics.METRICS
    value: float | None


@dataclass(frozen=True, slots=True)
class PlannedNotification:
    idempotency_key: str
    alert_id: int
    reason: Reason
    stage: Stage
    recipient_kind: RecipientKind
    staff_id: int | None  # notifications.recipient_id references staff; a care team is not one
    to: str
    body: str
    not_before: datetime


def idempotency_key(
    alert_id: int, recipient_kind: RecipientKind, recipient_id: int | None, stage: Stage
) -> str:
    """One SMS per alert, recipient and stage: 'alert:17:gp:4:escalated:2'."""
    recipient = "default" if recipient_id is None else str(recipient_id)
    return f"alert:{alert_id}:{recipient_kind}:{recipient}:{stage.label}"


def plan_notifications(
    alert: AlertFacts,
    finding: Finding,
    patient: PatientFacts,
    gp: GpContact,
    centre: ServiceCentre,
    reason: Reason,
    stage: Stage,
    now: datetime,
    public_url: str,
) -> list[PlannedNotification]:
    summary = AlertSummary(
        alert_id=alert.id,
        severity=alert.severity,
        initials=initials(patient.given_name, patient.family_name),
        metric=finding.metric,
        value=finding.value,
    )
    return [
        PlannedNotification(
            idempotency_key=idempotency_key(
                alert.id, delivery.recipient_kind, delivery.recipient_id, stage
            ),
            alert_id=alert.id,
            reason=reason,
            stage=stage,
            recipient_kind=delivery.recipient_kind,
            staff_id=delivery.recipient_id if delivery.recipient_kind == "gp" else None,
            to=delivery.to,
            body=render_sms(summary, stage.kind, delivery.language, public_url),
            not_before=delivery.not_before,
        )
        for delivery in route(alert, gp, centre, reason, now)
    ]
