"""Reconnection delays: exponential backoff with jitter after a failure (a pure function of the
attempt), and the growing wait after sessions that brought nothing (a table)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    base: float = 1.0  # seconds before the first retry
    factor: float = 2.0
    cap: float = 300.0  # a device in a drawer is retried every few minutes, not hammered

    def delay(self, attempt: int, uniform: Callable[[], float] = random.random) -> float:
        """Delay before retry number ``attempt`` (1 = the first retry).

        "Equal jitter": half the exponential step is kept, half is random, so retries never
        collapse to zero and several devices failing together (an adapter hiccup) spread out.
        """
        if attempt < 1:
            return 0.0
        step = min(self.cap, self.base * self.factor ** (attempt - 1))
        return step / 2 + uniform() * step / 2


def idle_wait(waits: Sequence[float], empty_sessions: int) -> float:
    """The wait after a session, ``empty_sessions`` in a row having brought nothing new.

    ``waits[0]`` follows a session that brought a reading, and the first empty one; each further
    empty session takes the next entry, the last one holding.
    """
    return waits[min(max(empty_sessions - 1, 0), len(waits) - 1)]
