"""Who gets an SMS about an episode, and when.

SMS go per episode, not per finding. An episode that opens red, or worsens to red, reaches the
patient's GP and the service centre's duty phone at once; amber waits in the service-centre
queue of the dashboard. Each step of the protocol's escalation chain then texts whom the step
names (a nurse's escalation texts the GP). A finding that joins an open episode at the same or
a lower level sends nothing. A patient who stopped measuring is a task for the service centre,
not a reason to wake a GP: an episode with nothing routed to the GP (alert level 0) texts no one.

GPs may set quiet hours (Europe/Rome local time, possibly across midnight); an SMS due to them
then waits for the end of the quiet period, while the duty phone, staffed around the clock,
still gets it at once.

An SMS waiting for its time may lose its point meanwhile (:func:`cancel_reason`): nothing is
sent about a resolved episode, and an escalation, which asks for an acknowledgement, is moot once
the episode has one. A red episode's own SMS is not: the GP hears of every red episode, whoever
took charge of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from alerts.notify.texts import Language, Reason
from alerts.protocol import Recipient
from telemon.alert_lifecycle import AlertState

ROME = ZoneInfo("Europe/Rome")

RecipientKind = Literal["gp", "service_centre"]

RESOLVED = "episode resolved before sending"
ACKNOWLEDGED = "episode acknowledged before sending"
SUPERSEDED = "superseded by a later SMS of the same kind"
# A patient's reminder (alerts/reminders) loses its point with the patient's own state.
DISCHARGED = "patient discharged before sending"
OPTED_OUT = "patient opted out of reminders before sending"
MEASURED = "patient measured before sending"


@dataclass(frozen=True, slots=True)
class EpisodeFacts:
    id: int
    alert_level: int  # the worst open finding routed to the GP: 0 none, 1 amber, 2 red
    state: AlertState
    acknowledged_before: bool = False  # someone acknowledged it once: a reminder, not news


@dataclass(frozen=True, slots=True)
class GpContact:
    id: int
    phone: str | None
    language: Language = "it"
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    # Open amber episodes in one SMS a day at this local time, instead of an SMS per escalation.
    amber_digest_at: time | None = None


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
    episode: EpisodeFacts,
    gp: GpContact,
    centre: ServiceCentre,
    reason: Reason,
    now: datetime,
    to: Recipient | None = None,
) -> tuple[Delivery, ...]:
    """The SMS an episode calls for on ``reason``; empty when the dashboard queue is enough.

    ``to``: the escalation step's recipient; None for a nurse's escalation, which goes to the GP.
    """
    if episode.alert_level == 0 or cancel_reason(episode.state, reason) is not None:
        return ()
    if reason == "escalated":
        if to == "duty_phone":
            return _to_centre(centre, now)
        if to == "gp" and episode.alert_level == 1 and gp.amber_digest_at is not None:
            return ()  # the GP's daily digest lists it (a nurse's escalation still texts)
        return to_gp(gp, now)
    if episode.alert_level == 2:
        return to_gp(gp, now) + _to_centre(centre, now)
    return ()


def cancel_reason(
    state: AlertState, reason: Reason | None, *, superseded: bool = False
) -> str | None:
    """Why an SMS not sent yet is no longer wanted, its episode being in ``state``; None if it is.

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


def to_gp(gp: GpContact, now: datetime) -> tuple[Delivery, ...]:
    if not gp.phone:
        return ()
    not_before = quiet_period_end(gp.quiet_hours_start, gp.quiet_hours_end, now) or now
    return (Delivery("gp", gp.id, gp.phone, gp.language, not_before),)


def _to_centre(centre: ServiceCentre, now: datetime) -> tuple[Delivery, ...]:
    if not centre.phone:
        return ()
    return (Delivery("service_centre", centre.id, centre.phone, centre.language, now),)
