"""Who gets an SMS about an alert, and when.

Red alerts reach the patient's GP and the service centre's duty phone at once. Amber alerts wait
in the service-centre queue of the dashboard, and reach the GP only when nobody acknowledged
them in time (the alerts engine escalates them and calls us again). A patient who stopped
measuring is a task for the service centre, not a reason to wake a GP: no SMS at all.

GPs may set quiet hours (Europe/Rome local time, possibly across midnight); an SMS due to them
then waits for the end of the quiet period, while the duty phone, staffed around the clock,
still gets it at once.

An SMS waiting for its time may lose its point meanwhile (:func:`cancel_reason`): nothing is
sent about a resolved alert, and an escalation, which asks for an acknowledgement, is moot once
the alert has one. A red alert's own SMS is not: the GP hears of every red alert, whoever took
charge of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.notify.texts import Language, Reason

ROME = ZoneInfo("Europe/Rome")

RecipientKind = Literal["gp", "service_centre"]
AlertState = Literal["open", "acknowledged", "escalated", "resolved"]

RESOLVED = "alert resolved before sending"
ACKNOWLEDGED = "alert acknowledged before sending"
SUPERSEDED = "superseded by a later SMS of the same kind"


@dataclass(frozen=True, slots=True)
class AlertFacts:
    id: int
    severity: int  # 1 amber, 2 red
    kind: Literal["clinical", "not_measuring"]
    state: AlertState


@dataclass(frozen=True, slots=True)
class GpContact:
    id: int
    phone: str | None
    language: Language = "it"
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None


@dataclass(frozen=True, slots=True)
class ServiceCentre:
    id: int | None  # None: the duty phone comes from settings, not from a care team
    phone: str | None
    language: Language = "it"


@dataclass(frozen=True, slots=True)
class Delivery:
    recipient_kind: RecipientKind
    recipient_id: int | None
    to: str
    language: Language
    not_before: datetime


def route(
    alert: AlertFacts,
    gp: GpContact,
    centre: ServiceCentre,
    reason: Reason,
    now: datetime,
) -> tuple[Delivery, ...]:
    """The SMS an alert calls for on ``reason``; empty when the dashboard queue is enough."""
    if alert.kind == "not_measuring" or cancel_reason(alert.state, reason) is not None:
        return ()
    if reason == "escalated":
        return _to_gp(gp, now)
    if alert.severity == 2:
        return _to_gp(gp, now) + _to_centre(centre, now)
    return ()


def cancel_reason(
    state: AlertState, reason: Reason | None, *, superseded: bool = False
) -> str | None:
    """Why an SMS not sent yet is no longer wanted, the alert being in ``state``; None if it is.

    ``superseded``: a later SMS with the same reason to the same recipient exists, for instance
    the hourly escalations of a night all waiting for a GP's quiet hours to end: the newest says
    it all. ``reason`` None: a row from before reasons were recorded; only resolution cancels it.
    """
    if state == "resolved":
        return RESOLVED
    if reason == "escalated" and state == "acknowledged":
        return ACKNOWLEDGED
    if superseded:
        return SUPERSEDED
    return None


def quiet_period_end(
    start: time | None, end: time | None, at: datetime, zone: ZoneInfo = ROME
) -> datetime | None:
    """When the quiet period around ``at`` ends (UTC), or None when ``at`` is not in one."""
    if start is None or end is None or start == end:
        return None
    local = at.astimezone(zone)
    clock = local.time().replace(tzinfo=None)
    quiet = start <= clock < end if start < end else clock >= start or clock < end
    if not quiet:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=zone).astimezone(UTC)


def _to_gp(gp: GpContact, now: datetime) -> tuple[Delivery, ...]:
    if not gp.phone:
        return ()
    not_before = quiet_period_end(gp.quiet_hours_start, gp.quiet_hours_end, now) or now
    return (Delivery("gp", gp.id, gp.phone, gp.language, not_before),)


def _to_centre(centre: ServiceCentre, now: datetime) -> tuple[Delivery, ...]:
    if not centre.phone:
        return ()
    return (Delivery("service_centre", centre.id, centre.phone, centre.language, now),)
