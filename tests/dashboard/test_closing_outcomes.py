"""How the closing report counts episodes' endings (dashboard.closing, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.closing import Outcome, outcomes
from dashboard.report import EpisodeEntry

DISCHARGED = datetime(2026, 11, 30, 10, tzinfo=UTC)


def _episode(severity: int, resolved_at: datetime | None, outcome: str | None) -> EpisodeEntry:
    return EpisodeEntry(
        id=1,
        severity=severity,
        state="open" if resolved_at is None else "resolved",
        opened_at=DISCHARGED - timedelta(days=3),
        resolved_at=resolved_at,
        reasons=[],
        outcome=outcome,
        resolution_note=None,
        calls=[],
    )


def test_each_episode_is_counted_once_by_how_it_ended_red_first() -> None:
    earlier = DISCHARGED - timedelta(days=1)
    episodes = [
        _episode(1, earlier, "auto_resolved"),  # the readings came back in range
        _episode(2, earlier, "sent_to_emergency"),
        _episode(1, earlier, None),  # a clinician resolved it without a call outcome
        _episode(2, DISCHARGED, "reached"),  # still open at discharge: the discharge closed it
        _episode(1, earlier, "reached"),
        _episode(1, earlier, "auto_resolved"),
    ]
    assert outcomes(episodes, DISCHARGED) == [
        Outcome(2, 2, [("discharge", 1), ("sent_to_emergency", 1)]),
        Outcome(1, 4, [("reached", 1), ("auto_resolved", 2), ("resolved", 1)]),
    ]


def test_no_episode_still_lists_both_severities() -> None:
    assert outcomes([], DISCHARGED) == [Outcome(2, 0, []), Outcome(1, 0, [])]
