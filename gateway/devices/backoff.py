"""Reconnection delays: exponential backoff with jitter (a pure function of the attempt)."""

from __future__ import annotations

import random
from collections.abc import Callable
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
