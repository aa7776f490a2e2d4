"""Where an episode stands on its escalation chain, and when its next step is due. Pure.

A chain (``alerts.protocol.Escalation``) is a short list of steps per alert level; the episode
keeps how many steps it has taken at its level and when the next one is due. Only the last step
may repeat (``every``), so the SMS to a GP are finite by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.protocol import EscalationStep


@dataclass(frozen=True, slots=True)
class Position:
    step: int  # steps taken at this level
    due: datetime | None  # when the next step fires; None: the chain has ended


def start(chain: Sequence[EscalationStep], now: datetime) -> Position:
    """The episode has just reached its level (opened, or worsened)."""
    return Position(0, now + timedelta(seconds=chain[0].after) if chain else None)


def resume(chain: Sequence[EscalationStep], step: int, now: datetime) -> Position:
    """An acknowledgement lapsed, or the level changed: the remaining steps go on from ``now``,
    none already taken is taken again (a repeating step repeats, up to its ``times``)."""
    if step < len(chain):
        return Position(step, now + timedelta(seconds=chain[step].after))
    last = chain[-1] if chain else None
    if last is not None and last.every is not None and not _spent(last, step - len(chain) + 1):
        return Position(step, now + timedelta(seconds=last.every))
    return Position(step, None)


def take(
    chain: Sequence[EscalationStep], step: int, now: datetime
) -> tuple[EscalationStep, Position]:
    """The step due now and the position after it. ``step`` counts every step taken, each
    repetition of the last one too."""
    index = min(step, len(chain) - 1)
    current = chain[index]
    following = step + 1
    if current.every is not None:
        if _spent(current, following - index):
            return current, Position(following, None)
        return current, Position(following, now + timedelta(seconds=current.every))
    if following < len(chain):
        return current, Position(following, now + timedelta(seconds=chain[following].after))
    return current, Position(following, None)


def _spent(step: EscalationStep, taken: int) -> bool:
    """Whether a repeating step taken ``taken`` times has had all its ``times``."""
    return step.times is not None and taken >= step.times
