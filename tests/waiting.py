"""Waiting for something another thread or process does: the one helper every test uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 15.0,
    what: str = "condition",
    *,
    state: Callable[[], object] | None = None,
    poll: float = 0.05,
) -> T:
    """``condition()`` once truthy, returned; TimeoutError after ``timeout`` s, saying ``what``
    and, to tell why, the ``state()`` of things then."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"; {state()}" if state is not None else f" (last value {value!r})"
            raise TimeoutError(f"{what}: not within {timeout:g} s{seen}")
        time.sleep(poll)
