"""Which notification of its episode an SMS is: the stage that makes its idempotency key unique.

An episode may text the same phone a few times: when it opens red, when it worsens, and at the
steps of its escalation chain (and a nurse's escalation). Stages are numbered from the episode's
events, which commit in the same transaction as the notification rows: an engine restarted, or
a step run again, counts the same events and writes the same keys, while the next escalation
counts one more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from alerts.notify.texts import Reason

StageKind = Literal["opened", "worsened", "escalated"]

# The episode_events kinds that start a stage: the engine's, and the dashboard's 'escalate'. An
# escalation by a nurse and a step of the chain are numbered together: each texts someone.
EVENT_STAGES: Mapping[str, StageKind] = MappingProxyType(
    {
        "opened": "opened",
        "worsened": "worsened",
        "escalated": "escalated",
        "escalate": "escalated",
    }
)

# The events an SMS for each reason may announce. An episode whose findings only the service
# centre heard of (a patient who stopped measuring) texts as it opens when it turns red, which
# is a 'worsened' event; and it may do so again after that red cleared, at the next one.
_REASON_STAGES: Mapping[Reason, tuple[StageKind, ...]] = MappingProxyType(
    {"opened": ("opened", "worsened"), "worsened": ("worsened",), "escalated": ("escalated",)}
)


@dataclass(frozen=True, slots=True)
class Stage:
    kind: StageKind
    number: int = 1  # the how-manyeth stage of its kind in the episode's life

    @property
    def label(self) -> str:
        # The first of each kind is labelled as keys were before stages were numbered, so rows
        # written by an older engine still deduplicate.
        return self.kind if self.number == 1 else f"{self.kind}:{self.number}"


def stage_of(reason: Reason, event_kinds: Sequence[str]) -> Stage:
    """The stage an SMS for ``reason`` announces, from the episode's event kinds, oldest first.

    It is the newest event the reason can announce (the caller wrote it in this transaction);
    an episode with no such event is at the first stage of the reason's kind.
    """
    stages = [EVENT_STAGES[kind] for kind in event_kinds if kind in EVENT_STAGES]
    candidates = _REASON_STAGES[reason]
    current = next((s for s in reversed(stages) if s in candidates), candidates[0])
    return Stage(current, max(1, stages.count(current)))
