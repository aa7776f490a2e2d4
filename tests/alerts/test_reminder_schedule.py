"""Patient reminders decided by pure functions on a clock the test sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.notify.routing import ROME
from alerts.reminders.schedule import Facts, Policy, current_slot, decide, remind_at

H = timedelta(hours=1)
POLICY = Policy()  # 2 a day, quiet 21:00-08:00 Rome, 30 min after the slot
PHONE = "+393339998877"


def rome(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=ROME).astimezone(UTC)


def facts(anchor: datetime, **changes: object) -> Facts:
    base = {"anchor": anchor, "every": 8 * H, "phone": PHONE}
    return Facts(**(base | changes))  # type: ignore[arg-type]


def test_no_slot_is_missed_before_the_first_falls_due() -> None:
    anchor = rome(10, 9)
    assert current_slot(anchor, 8 * H, rome(10, 16, 59)) is None
    slot = current_slot(anchor, 8 * H, rome(10, 17))
    assert slot is not None and (slot.index, slot.due) == (1, rome(10, 17))


@pytest.mark.parametrize(
    ("now", "verdict"),
    [
        (rome(10, 16), "not_missed"),
        (rome(10, 17, 29), "not_yet"),  # due 17:00, missed at 17:30
        (rome(10, 17, 30), "remind"),
        (rome(10, 23), "night"),  # slot 2 is due at 01:00: nothing at night
        (rome(11, 8, 29), "not_yet"),  # after the night: quiet end plus the delay
        (rome(11, 8, 30), "remind"),  # slot 2, missed in the night, reminded in the morning
    ],
)
def test_one_reminder_per_missed_slot_never_at_night(now: datetime, verdict: str) -> None:
    assert decide(facts(rome(10, 9)), now, POLICY).verdict == verdict


def test_a_slot_whose_morning_comes_after_the_next_slot_is_dropped() -> None:
    # Every 4 h from 22:00: slots at 02:00 and 06:00 in the night, 10:00 in the morning.
    anchor = rome(10, 22)
    night_slot = current_slot(anchor, 4 * H, rome(11, 3))
    assert night_slot is not None and remind_at(night_slot, POLICY) == rome(11, 8, 30)
    morning = decide(facts(anchor, every=4 * H), rome(11, 8, 30), POLICY)
    assert (morning.verdict, morning.slot and morning.slot.index) == ("remind", 2)  # not slot 1


@pytest.mark.parametrize(
    ("changes", "verdict"),
    [
        ({"sent_today": 2}, "cap_reached"),
        ({"sent_today": 1}, "remind"),
        ({"opted_out": True}, "opted_out"),
        ({"phone": None}, "no_phone"),
        ({"enabled": False}, "disabled"),
        # Readings taken meanwhile wait in the gateway's outbox: nothing to remind of.
        ({"gateway_offline": True}, "gateway_offline"),
    ],
)
def test_cap_opt_out_phone_offline_gateway_and_a_disabled_rule(changes: dict, verdict: str) -> None:
    assert decide(facts(rome(10, 9), **changes), rome(10, 18), POLICY).verdict == verdict


def test_the_cap_and_quiet_hours_are_settings() -> None:
    policy = Policy(per_day=3, quiet_start=POLICY.quiet_start, quiet_end=POLICY.quiet_end)
    assert decide(facts(rome(10, 9), sent_today=2), rome(10, 18), policy).verdict == "remind"
    no_night = Policy(quiet_start=POLICY.quiet_end, quiet_end=POLICY.quiet_end)
    assert decide(facts(rome(10, 9)), rome(11, 1, 30), no_night).verdict == "remind"
