"""Routing: who gets an SMS about an episode, and when, across GPs' quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from alerts.notify.routing import (
    ROME,
    EpisodeFacts,
    GpContact,
    ServiceCentre,
    cancel_reason,
    quiet_period_end,
    route,
)

GP = GpContact(id=7, phone="+393331112222", language="en")
CENTRE = ServiceCentre(id=3, phone="+390212345678", language="it")
NOON = datetime(2026, 3, 10, 11, 0, tzinfo=UTC)  # 12:00 in Rome


def rome(*args: int) -> datetime:
    return datetime(*args, tzinfo=ROME)


@pytest.mark.parametrize(
    ("level", "state", "reason", "to", "expected"),
    [
        # Red: the GP and the duty phone at once, on opening and on worsening to red.
        (2, "open", "opened", None, ["gp", "service_centre"]),
        (2, "open", "worsened", None, ["gp", "service_centre"]),
        # Escalation steps text whom the step names; a nurse's escalation (no step) the GP.
        (2, "escalated", "escalated", "gp", ["gp"]),
        (2, "escalated", "escalated", "duty_phone", ["service_centre"]),
        (2, "escalated", "escalated", None, ["gp"]),
        # Amber: the queue only, until an escalation.
        (1, "open", "opened", None, []),
        (1, "escalated", "escalated", "gp", ["gp"]),
        (1, "escalated", "escalated", None, ["gp"]),
        # An acknowledged episode needs no escalation; a resolved one nothing at all.
        (1, "acknowledged", "escalated", "gp", []),
        (2, "acknowledged", "escalated", "duty_phone", []),
        (2, "resolved", "opened", None, []),
        # Nothing routed to the GP (a patient who stopped measuring): nobody, ever.
        (0, "open", "opened", None, []),
        (0, "open", "worsened", None, []),
        (0, "escalated", "escalated", None, []),
        (0, "escalated", "escalated", "duty_phone", []),
    ],
)
def test_routing_table(
    level: int, state: str, reason: str, to: str | None, expected: list[str]
) -> None:
    episode = EpisodeFacts(id=1, alert_level=level, state=state)  # type: ignore[arg-type]

    deliveries = route(episode, GP, CENTRE, reason, NOON, to)  # type: ignore[arg-type]

    assert [d.recipient_kind for d in deliveries] == expected
    assert all(d.not_before == NOON for d in deliveries)


def test_each_recipient_in_their_own_language_and_number() -> None:
    gp, centre = route(EpisodeFacts(1, 2, "open"), GP, CENTRE, "opened", NOON)

    assert (gp.to, gp.language, gp.recipient_id) == (GP.phone, "en", 7)
    assert (centre.to, centre.language, centre.recipient_id) == (CENTRE.phone, "it", 3)


def test_recipients_without_a_phone_are_left_out() -> None:
    red = EpisodeFacts(1, 2, "open")

    no_gp_phone = GpContact(id=7, phone=None)
    no_duty_phone = ServiceCentre(id=None, phone=None)

    assert [d.recipient_kind for d in route(red, no_gp_phone, CENTRE, "opened", NOON)] == [
        "service_centre"
    ]
    assert [d.recipient_kind for d in route(red, GP, no_duty_phone, "opened", NOON)] == ["gp"]
    assert route(red, GP, no_duty_phone, "escalated", NOON, "duty_phone") == ()


@pytest.mark.parametrize(
    ("start", "end", "at", "ends_at"),
    [
        # Across midnight: evening and small hours both end next/this morning.
        (time(22), time(7), rome(2026, 3, 10, 23, 30), rome(2026, 3, 11, 7)),
        (time(22), time(7), rome(2026, 3, 11, 3, 0), rome(2026, 3, 11, 7)),
        (time(22), time(7), rome(2026, 3, 10, 22, 0), rome(2026, 3, 11, 7)),
        (time(22), time(7), rome(2026, 3, 11, 7, 0), None),
        (time(22), time(7), rome(2026, 3, 10, 12, 0), None),
        (time(22), time(7), rome(2026, 3, 10, 21, 59), None),
        # Within one day.
        (time(13), time(15), rome(2026, 3, 10, 14, 0), rome(2026, 3, 10, 15)),
        (time(13), time(15), rome(2026, 3, 10, 16, 0), None),
        # The night clocks go forward: 07:00 CEST is 05:00 UTC.
        (time(22), time(7), rome(2026, 3, 28, 23, 0), datetime(2026, 3, 29, 5, tzinfo=UTC)),
        # No quiet hours set, or an empty period.
        (None, None, rome(2026, 3, 10, 3, 0), None),
        (time(22), None, rome(2026, 3, 10, 23, 0), None),
        (time(8), time(8), rome(2026, 3, 10, 8, 0), None),
    ],
)
def test_quiet_period_end(
    start: time | None, end: time | None, at: datetime, ends_at: datetime | None
) -> None:
    assert quiet_period_end(start, end, at.astimezone(UTC)) == ends_at


NIGHT = rome(2026, 3, 10, 23, 40).astimezone(UTC)
SEVEN = rome(2026, 3, 11, 7)


@pytest.mark.parametrize(
    ("reason", "to", "expected"),
    [
        ("opened", None, {"gp": SEVEN, "service_centre": NIGHT}),
        ("worsened", None, {"gp": SEVEN, "service_centre": NIGHT}),
        ("escalated", "gp", {"gp": SEVEN}),
        ("escalated", "duty_phone", {"service_centre": NIGHT}),
    ],
)
def test_in_the_night_the_gp_waits_and_the_duty_phone_does_not(
    reason: str, to: str | None, expected: dict[str, datetime]
) -> None:
    sleeping = GpContact(
        id=7, phone="+393331112222", quiet_hours_start=time(22), quiet_hours_end=time(7)
    )

    deliveries = route(EpisodeFacts(1, 2, "open"), sleeping, CENTRE, reason, NIGHT, to)  # type: ignore[arg-type]

    assert {d.recipient_kind: d.not_before for d in deliveries} == expected


@pytest.mark.parametrize(
    ("state", "reason", "superseded", "expected"),
    [
        ("open", "opened", False, None),
        ("escalated", "escalated", False, None),
        ("resolved", "opened", False, "episode resolved before sending"),
        ("resolved", "escalated", False, "episode resolved before sending"),
        ("resolved", None, False, "episode resolved before sending"),
        # An escalation asks for an acknowledgement; a red episode's own SMS tells the GP anyway.
        ("acknowledged", "escalated", False, "episode acknowledged before sending"),
        ("acknowledged", "opened", False, None),
        ("acknowledged", "worsened", False, None),
        ("acknowledged", None, False, None),
        ("escalated", "escalated", True, "superseded by a later SMS of the same kind"),
        ("open", "worsened", True, "superseded by a later SMS of the same kind"),
    ],
)
def test_cancel_reason(
    state: str, reason: str | None, superseded: bool, expected: str | None
) -> None:
    assert cancel_reason(state, reason, superseded=superseded) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("state", ["open", "acknowledged", "escalated", "resolved"])
@pytest.mark.parametrize("reason", ["opened", "worsened", "escalated"])
def test_what_route_would_not_send_is_what_a_waiting_sms_is_cancelled_for(
    state: str, reason: str
) -> None:
    red = EpisodeFacts(1, 2, state)  # type: ignore[arg-type]

    routed = route(red, GP, CENTRE, reason, NOON)  # type: ignore[arg-type]

    assert (routed == ()) == (cancel_reason(red.state, reason) is not None)  # type: ignore[arg-type]
