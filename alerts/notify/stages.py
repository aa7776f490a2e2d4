"""Which notification of its alert an SMS is: the stage that makes its idempotency key unique.

An alert may text the same person several times: when it opens, at each worsening, at each
escalation while nobody acknowledges it, and each time an acknowledgement's snooze lapses with
the alert still on. Stages are numbered from the alert's events, which commit in the same
transaction as the notification rows: an engine restarted, or a step run again, counts the same
events and writes the same keys, while the next escalation counts one more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from alerts.notify.texts import Reason

StageKind = Literal["opened", "worsened", "escalated", "reminded"]

# The alert_events kinds that start a stage: the engine's, and the dashboard's 'escalate'. An
# escalation by a nurse and one by the engine are numbered together: each texts the GP.
EVENT_STAGES: Mapping[str, StageKind] = MappingProxyType(
    {
        "opened": "opened",
        "worsened": "worsened",
        "escalated": "escalated",
        "escalate": "escalated",
        "snooze_expired": "reminded",
    }
)

# A lapsed snooze is an escalation reason with a stage (and a text) of its own.
_REASON_STAGES: Mapping[Reason, tuple[StageKind, ...]] = MappingProxyType(
    {"opened": ("opened",), "worsened": ("worsened",), "escalated": ("escalated", "reminded")}
)


@dataclass(frozen=True, slots=True)
class Stage:
    kind: StageKind
    number: int = 1  # the how-manyeth stage of its kind in the alert's life

    @property
    def label(self) -> str:
        # The first of each kind is labelled as keys were before stages were numbered, so rows
        # written by an older engine still deduplicate.
        return self.kind if self.number == 1 else f"{self.kind}:{self.number}"


def stage_of(reason: Reason, event_kinds: Sequence[str]) -> Stage:
    """The stage an SMS for ``reason`` announces, from the alert's event kinds, oldest first.

    It is the newest event the reason can announce (the caller wrote it in this transaction);
    an alert with no such event (written by hand) is at the first stage of the reason's kind.
    """
    stages = [EVENT_STAGES[kind] for kind in event_kinds if kind in EVENT_STAGES]
    candidates = _REASON_STAGES[reason]
    current = next((s for s in reversed(stages) if s in candidates), candidates[0])
    return Stage(current, max(1, stages.count(current)))
