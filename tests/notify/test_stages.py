"""Stages: which notification of its episode an SMS is, counted from the episode's events."""

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
        # A nurse's escalation and the chain's steps are one ladder.
        ("escalated", ["opened", "escalate", "acknowledge", "escalated"], Stage("escalated", 2)),
        # A lapsed acknowledgement resumes the chain: its next step is the next escalation.
        (
            "escalated",
            ["opened", "escalated", "acknowledge", "snooze_expired", "escalated"],
            Stage("escalated", 2),
        ),
        # An episode only the service centre had heard of texts as it opens when it turns red:
        # the worsening is the stage, so a second red after the first cleared is a new one.
        ("opened", ["opened", "finding_joined", "worsened"], Stage("worsened")),
        (
            "opened",
            ["opened", "worsened", "downgraded", "finding_joined", "worsened"],
            Stage("worsened", 2),
        ),
        # Events of other kinds, the SMS' own and findings joining included, count for nothing.
        (
            "opened",
            ["opened", "notify_queued", "notified", "claim", "finding_joined"],
            Stage("opened"),
        ),
        # An episode with no such event yet is at the first stage.
        ("opened", [], Stage("opened")),
        ("escalated", [], Stage("escalated")),
    ],
)
def test_stage_of(reason: str, events: list[str], expected: Stage) -> None:
    assert stage_of(reason, events) == expected  # type: ignore[arg-type]


def test_the_same_events_give_the_same_stage_however_often_asked() -> None:
    events = ["opened", "escalated", "escalated"]

    assert {stage_of("escalated", events) for _ in range(3)} == {Stage("escalated", 2)}


def test_keys_name_episode_recipient_and_stage() -> None:
    assert idempotency_key(17, "gp", 4, Stage("escalated", 2)) == "episode:17:gp:4:escalated:2"
    assert idempotency_key(17, "gp", 4, Stage("worsened")) == "episode:17:gp:4:worsened"
    assert idempotency_key(17, "service_centre", None, Stage("opened")) == (
        "episode:17:service_centre:default:opened"
    )
