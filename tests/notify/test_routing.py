"""Routing: who gets an SMS for which alert, and when, across GPs' quiet hours."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from alerts.notify.routing import (
    ROME,
    AlertFacts,
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
    ("severity", "kind", "state", "reason", "expected"),
    [
        (2, "clinical", "open", "opened", ["gp", "service_centre"]),
        (2, "clinical", "open", "worsened", ["gp", "service_centre"]),
        (2, "clinical", "escalated", "escalated", ["gp"]),
        (1, "clinical", "open", "opened", []),
        (1, "clinical", "escalated", "escalated", ["gp"]),
        (1, "clinical", "acknowledged", "escalated", []),
        (2, "clinical", "resolved", "opened", []),
        (1, "not_measuring", "open", "opened", []),
        (2, "not_measuring", "open", "opened", []),
        (1, "not_measuring", "escalated", "escalated", []),
    ],
)
def test_routing_table(
    severity: int, kind: str, state: str, reason: str, expected: list[str]
) -> None:
    alert = AlertFacts(id=1, severity=severity, kind=kind, state=state)  # type: ignore[arg-type]

    deliveries = route(alert, GP, CENTRE, reason, NOON)  # type: ignore[arg-type]

    assert [d.recipient_kind for d in deliveries] == expected
    assert all(d.not_before == NOON for d in deliveries)


def test_each_recipient_in_their_own_language_and_number() -> None:
    gp, centre = route(AlertFacts(1, 2, "clinical", "open"), GP, CENTRE, "opened", NOON)

    assert (gp.to, gp.language, gp.recipient_id) == (GP.phone, "en", 7)
    assert (centre.to, centre.language, centre.recipient_id) == (CENTRE.phone, "it", 3)


def test_recipients_without_a_phone_are_left_out() -> None:
    red = AlertFacts(1, 2, "clinical", "open")

    no_gp_phone = GpContact(id=7, phone=None)
    no_duty_phone = ServiceCentre(id=None, phone=None)

    assert [d.recipient_kind for d in route(red, no_gp_phone, CENTRE, "opened", NOON)] == [
        "service_centre"
    ]
    assert [d.recipient_kind for d in route(red, GP, no_duty_phone, "opened", NOON)] == ["gp"]


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


def test_a_red_alert_in_the_night_waits_for_the_gp_but_not_for_the_duty_phone() -> None:
    sleeping = GpContact(
        id=7, phone="+393331112222", quiet_hours_start=time(22), quiet_hours_end=time(7)
    )
    night = rome(2026, 3, 10, 23, 40).astimezone(UTC)

    gp, centre = route(AlertFacts(1, 2, "clinical", "open"), sleeping, CENTRE, "opened", night)

    assert gp.not_before == rome(2026, 3, 11, 7)
    assert centre.not_before == night


@pytest.mark.parametrize(
    ("state", "reason", "superseded", "expected"),
    [
        ("open", "opened", False, None),
        ("escalated", "escalated", False, None),
        ("resolved", "opened", False, "alert resolved before sending"),
        ("resolved", "escalated", False, "alert resolved before sending"),
        ("resolved", None, False, "alert resolved before sending"),
        # An escalation asks for an acknowledgement; a red alert's own SMS tells the GP anyway.
        ("acknowledged", "escalated", False, "alert acknowledged before sending"),
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
    red = AlertFacts(1, 2, "clinical", state)  # type: ignore[arg-type]

    routed = route(red, GP, CENTRE, reason, NOON)  # type: ignore[arg-type]

    assert (routed == ()) == (cancel_reason(red.state, reason) is not None)  # type: ignore[arg-type]
