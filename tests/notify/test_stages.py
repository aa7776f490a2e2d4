"""Stages: which notification of its alert an SMS is, counted from the alert's events."""

from __future__ import annotations

import pytest

from alerts.notify.plan import idempotency_key
from alerts.notify.stages import Stage, stage_of


@pytest.mark.parametrize(
    ("reason", "events", "expected"),
    [
        ("opened", ["opened"], Stage("opened")),
        ("worsened", ["opened", "worsened"], Stage("worsened")),
        ("worsened", ["opened", "worsened", "downgraded", "worsened"], Stage("worsened", 2)),
        ("escalated", ["opened", "escalated"], Stage("escalated")),
        ("escalated", ["opened", "escalated", "escalated"], Stage("escalated", 2)),
        # A nurse's escalation and the engine's are one ladder.
        ("escalated", ["opened", "escalate", "acknowledge", "escalated"], Stage("escalated", 2)),
        # A lapsed snooze reminds with the escalation's text, as a stage of its own.
        ("escalated", ["opened", "escalated", "snooze_expired"], Stage("reminded")),
        (
            "escalated",
            ["opened", "snooze_expired", "escalated", "snooze_expired"],
            Stage("reminded", 2),
        ),
        ("escalated", ["opened", "snooze_expired", "escalated"], Stage("escalated")),
        # Events of other kinds, the SMS' own included, count for nothing.
        ("opened", ["opened", "notify_queued", "notified", "claim"], Stage("opened")),
        # An alert written without events (by hand, in a test) is at the first stage.
        ("opened", [], Stage("opened")),
        ("escalated", [], Stage("escalated")),
    ],
)
def test_stage_of(reason: str, events: list[str], expected: Stage) -> None:
    assert stage_of(reason, events) == expected  # type: ignore[arg-type]


def test_the_same_events_give_the_same_stage_however_often_asked() -> None:
    events = ["opened", "escalated", "escalated"]

    assert {stage_of("escalated", events) for _ in range(3)} == {Stage("escalated", 2)}


def test_keys_name_alert_recipient_and_stage_and_keep_the_old_form_for_first_stages() -> None:
    assert idempotency_key(17, "gp", 4, Stage("escalated", 2)) == "alert:17:gp:4:escalated:2"
    assert idempotency_key(17, "gp", 4, Stage("reminded")) == "alert:17:gp:4:reminded"
    assert idempotency_key(17, "service_centre", None, Stage("opened")) == (
        "alert:17:service_centre:default:opened"
    )
