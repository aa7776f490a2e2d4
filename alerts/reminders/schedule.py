"""Whether a patient is due a reminder now: pure functions of the clock, no database.

A missing-data rule says how often a measurement is expected (``expected_every``). Its slots
follow the newest reliable reading, or the enrolment start when that is later (as the rule's
hours count): slot k falls due at ``anchor + k * every``, k >= 1. A slot counts as missed
``delay`` after it fell due, and stays the patient's current slot until the next one falls due.

Night: a reminder never goes out in the quiet hours. One that falls due in them waits for
their end, plus the same delay (the patient who measures on waking has the time to); if by
then the next slot has fallen due, the earlier slot is dropped and only the current one is
reminded: one SMS about a missed measurement, not one per slot missed overnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from alerts.notify.routing import ROME, quiet_period_end


@dataclass(frozen=True, slots=True)
class Policy:
    per_day: int = 2  # reminders a patient a local day (Europe/Rome), all metrics together
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    delay: timedelta = timedelta(minutes=30)


@dataclass(frozen=True, slots=True)
class Slot:
    index: int  # k >= 1: the k-th measurement expected since the anchor
    due: datetime


@dataclass(frozen=True, slots=True)
class Facts:
    """What the decision needs about one patient and one metric."""

    anchor: datetime  # newest reliable reading, or the enrolment start when later
    every: timedelta  # the protocol's expected_every
    enabled: bool = True  # the not-measuring rule is on for this patient
    phone: str | None = None
    opted_out: bool = False
    sent_today: int = 0  # reminders already written for the patient this local day
    # The patient's gateway, once seen, is offline: readings taken meanwhile wait in its
    # outbox, so a reminder would ask for what was likely done. The nurses' offline-gateway
    # worklist and, past the grace period, their not-measuring task cover it.
    gateway_offline: bool = False


Verdict = Literal[
    "remind",
    "disabled",
    "opted_out",
    "no_phone",
    "gateway_offline",
    "not_missed",
    "not_yet",
    "night",
    "cap_reached",
]


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    slot: Slot | None = None
    remind_at: datetime | None = None  # when the slot's reminder may go out


def current_slot(anchor: datetime, every: timedelta, now: datetime) -> Slot | None:
    """The newest slot fallen due by ``now``; None while the first is still ahead."""
    if every <= timedelta(0):
        raise ValueError("expected_every must be positive")
    index = (now - anchor) // every
    if index < 1:
        return None
    return Slot(index, anchor + index * every)


def is_quiet(at: datetime, policy: Policy) -> bool:
    return quiet_period_end(policy.quiet_start, policy.quiet_end, at, ROME) is not None


def remind_at(slot: Slot, policy: Policy) -> datetime:
    """When the slot's reminder may go out: ``delay`` after it fell due, or after the quiet
    hours that instant falls in."""
    at = slot.due + policy.delay
    morning = quiet_period_end(policy.quiet_start, policy.quiet_end, at, ROME)
    return at if morning is None else morning + policy.delay


def decide(facts: Facts, now: datetime, policy: Policy) -> Decision:
    """Whether to write the current slot's reminder now; the first reason not to, if not."""
    if not facts.enabled:
        return Decision("disabled")
    if facts.opted_out:
        return Decision("opted_out")
    if not facts.phone:
        return Decision("no_phone")
    if facts.gateway_offline:
        return Decision("gateway_offline")
    slot = current_slot(facts.anchor, facts.every, now)
    if slot is None:
        return Decision("not_missed")
    at = remind_at(slot, policy)
    if is_quiet(now, policy):
        return Decision("night", slot, at)
    if now < at:
        return Decision("not_yet", slot, at)
    if facts.sent_today >= policy.per_day:
        return Decision("cap_reached", slot, at)
    return Decision("remind", slot, at)


def local_day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s local day (Europe/Rome): the daily cap counts from it."""
    local = now.astimezone(ROME)
    return datetime.combine(local.date(), time(0), tzinfo=ROME)
