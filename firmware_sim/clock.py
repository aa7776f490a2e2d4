"""Simulated time: an accelerated clock for running days in minutes, a stepped one for tests.

Both hand out timezone-aware UTC datetimes and offer ``sleep_until(t)``, so simulated devices
are written once against :class:`SimClock` and run at any speed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

DAY_PER_MINUTE = 1440.0


@runtime_checkable
class SimClock(Protocol):
    def now(self) -> datetime: ...

    async def sleep_until(self, t: datetime) -> None: ...

    async def sleep(self, duration: timedelta) -> None: ...


def as_utc(t: datetime) -> datetime:
    if t.utcoffset() is None:
        raise ValueError("simulated time must be timezone-aware")
    return t.astimezone(UTC)


class AcceleratedClock:
    """Simulated time runs ``speed`` times faster than real time, from ``start``.

    Simulated time starts at ``start`` the moment the clock is made. ``real_time`` is any
    monotonic seconds counter; tests pass their own to check the arithmetic.
    """

    __slots__ = ("_real_origin", "_real_time", "_speed", "_start")

    def __init__(
        self,
        start: datetime,
        speed: float = DAY_PER_MINUTE,
        *,
        real_time: Callable[[], float] = time.monotonic,
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self._start = as_utc(start)
        self._speed = float(speed)
        self._real_time = real_time
        self._real_origin = real_time()

    @property
    def start(self) -> datetime:
        return self._start

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        return self.sim_time_at(self._real_time())

    def sim_time_at(self, real_seconds: float) -> datetime:
        """Simulated time when the real counter reads ``real_seconds``."""
        elapsed = (real_seconds - self._real_origin) * self._speed
        return self._start + timedelta(seconds=elapsed)

    def real_seconds_until(self, t: datetime) -> float:
        """Real seconds from now until simulated time reaches ``t``; 0 if it already has."""
        return max(0.0, (as_utc(t) - self.now()).total_seconds() / self._speed)

    async def sleep_until(self, t: datetime) -> None:
        # The event loop may wake a hair early; loop so that now() >= t on return.
        while (delay := self.real_seconds_until(t)) > 0:
            await asyncio.sleep(delay)

    async def sleep(self, duration: timedelta) -> None:
        await self.sleep_until(self.now() + duration)


class CatchUpClock:
    """Replays the recent past at ``speed`` until simulated time meets the wall clock, then keeps
    pace with it.

    The demo starts its patients days ago so that a deterioration shows within minutes, yet no
    reading it times is ever in the future, which the server rightly refuses.
    """

    __slots__ = ("_accelerated", "_wall")

    def __init__(
        self,
        start: datetime,
        speed: float = DAY_PER_MINUTE,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        real_time: Callable[[], float] = time.monotonic,
    ) -> None:
        self._accelerated = AcceleratedClock(start, speed, real_time=real_time)
        self._wall = wall

    def now(self) -> datetime:
        return min(self._accelerated.now(), self._wall())

    @property
    def caught_up(self) -> bool:
        return self._accelerated.now() >= self._wall()

    def real_seconds_until(self, t: datetime) -> float:
        t = as_utc(t)
        behind_wall = (t - self._wall()).total_seconds()
        return max(0.0, self._accelerated.real_seconds_until(t), behind_wall)

    async def sleep_until(self, t: datetime) -> None:
        while (delay := self.real_seconds_until(t)) > 0:
            await asyncio.sleep(delay)

    async def sleep(self, duration: timedelta) -> None:
        await self.sleep_until(self.now() + duration)


class SteppedClock:
    """Simulated time moves only when told to: for tests, and for replaying as fast as possible.

    Sleepers wake, in time order, as :meth:`advance_to` or :meth:`run_until` pass their time.
    """

    __slots__ = ("_now", "_order", "_sleepers")

    def __init__(self, start: datetime) -> None:
        self._now = as_utc(start)
        self._sleepers: list[tuple[datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # keeps equal wake times in arrival order

    def now(self) -> datetime:
        return self._now

    @property
    def next_wakeup(self) -> datetime | None:
        self._drop_cancelled()
        return self._sleepers[0][0] if self._sleepers else None

    async def sleep_until(self, t: datetime) -> None:
        t = as_utc(t)
        if t <= self._now:
            return
        wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (t, next(self._order), wake))
        await wake

    async def sleep(self, duration: timedelta) -> None:
        await self.sleep_until(self._now + duration)

    def advance(self, duration: timedelta) -> None:
        self.advance_to(self._now + duration)

    def advance_to(self, t: datetime) -> None:
        """Jump to ``t`` and wake every sleeper due by then. Woken tasks run at the next await."""
        t = as_utc(t)
        if t < self._now:
            raise ValueError("a clock does not go backwards")
        self._now = t
        while self._sleepers and self._sleepers[0][0] <= t:
            _, _, wake = heapq.heappop(self._sleepers)
            if not wake.done():
                wake.set_result(None)

    async def run_until(self, t: datetime) -> None:
        """Step through each wake-up up to ``t``, letting woken tasks run before the next one,
        so that a task which sleeps again is woken again within the same call."""
        t = as_utc(t)
        while (due := self.next_wakeup) is not None and due <= t:
            self.advance_to(due)
            await asyncio.sleep(0)
        self.advance_to(max(t, self._now))

    def _drop_cancelled(self) -> None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)
