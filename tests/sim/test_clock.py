from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from firmware_sim.clock import DAY_PER_MINUTE, AcceleratedClock, SimClock, SteppedClock

START = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


class FakeRealTime:
    def __init__(self, at: float = 1000.0) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


def test_a_day_per_minute():
    real = FakeRealTime()
    clock = AcceleratedClock(START, DAY_PER_MINUTE, real_time=real)

    assert clock.now() == START
    real.at += 60.0
    assert clock.now() == START + timedelta(days=1)
    real.at += 0.5
    assert clock.now() == START + timedelta(days=1, minutes=12)


def test_real_seconds_until_a_simulated_time():
    real = FakeRealTime()
    clock = AcceleratedClock(START, 3600.0, real_time=real)

    assert clock.real_seconds_until(START + timedelta(hours=2)) == pytest.approx(2.0)
    real.at += 1.5
    assert clock.real_seconds_until(START + timedelta(hours=2)) == pytest.approx(0.5)
    assert clock.real_seconds_until(START) == 0.0  # already past


def test_sim_time_at_is_linear_in_real_time():
    clock = AcceleratedClock(START, 100.0, real_time=FakeRealTime(50.0))

    assert clock.sim_time_at(50.0) == START
    assert clock.sim_time_at(53.0) == START + timedelta(seconds=300)
    assert clock.sim_time_at(49.0) == START - timedelta(seconds=100)


def test_start_in_another_zone_is_held_as_utc():
    rome = timezone(timedelta(hours=1))
    clock = AcceleratedClock(datetime(2025, 3, 3, 9, 0, tzinfo=rome), real_time=FakeRealTime())

    assert clock.now() == START
    assert clock.now().tzinfo is UTC


@pytest.mark.parametrize("speed", [0.0, -2.0])
def test_speed_must_be_positive(speed):
    with pytest.raises(ValueError, match="positive"):
        AcceleratedClock(START, speed)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        AcceleratedClock(datetime(2025, 3, 3, 8, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        SteppedClock(datetime(2025, 3, 3, 8, 0))


def test_both_clocks_satisfy_the_protocol():
    assert isinstance(AcceleratedClock(START), SimClock)
    assert isinstance(SteppedClock(START), SimClock)


async def test_accelerated_sleep_until_sleeps_the_real_time():
    clock = AcceleratedClock(START, 36_000.0)  # an hour in 0.1 s
    target = START + timedelta(hours=1)
    began = time.monotonic()

    await clock.sleep_until(target)

    assert clock.now() >= target
    assert 0.09 <= time.monotonic() - began < 0.5


async def test_accelerated_sleep_until_the_past_returns_at_once():
    clock = AcceleratedClock(START, 1.0)
    began = time.monotonic()

    await clock.sleep_until(START - timedelta(days=1))

    assert time.monotonic() - began < 0.05


async def test_stepped_clock_wakes_sleepers_in_time_order():
    clock = SteppedClock(START)
    woke: list[str] = []

    async def sleeper(name: str, minutes: int) -> None:
        await clock.sleep_until(START + timedelta(minutes=minutes))
        woke.append(name)

    tasks = [asyncio.create_task(sleeper(n, m)) for n, m in (("c", 30), ("a", 10), ("b", 20))]
    await asyncio.sleep(0)
    assert clock.next_wakeup == START + timedelta(minutes=10)

    clock.advance(timedelta(minutes=20))
    await asyncio.sleep(0)
    assert woke == ["a", "b"]
    assert clock.now() == START + timedelta(minutes=20)

    clock.advance_to(START + timedelta(hours=1))
    await asyncio.gather(*tasks)
    assert woke == ["a", "b", "c"]
    assert clock.next_wakeup is None


async def test_run_until_drives_a_periodic_task():
    clock = SteppedClock(START)
    ticks: list[datetime] = []

    async def every_ten_minutes() -> None:
        while True:
            await clock.sleep(timedelta(minutes=10))
            ticks.append(clock.now())

    task = asyncio.create_task(every_ten_minutes())
    await asyncio.sleep(0)
    await clock.run_until(START + timedelta(hours=1, minutes=5))
    task.cancel()

    assert ticks == [START + timedelta(minutes=10 * n) for n in range(1, 7)]
    assert clock.now() == START + timedelta(hours=1, minutes=5)


async def test_cancelled_sleepers_are_skipped():
    clock = SteppedClock(START)
    task = asyncio.create_task(clock.sleep_until(START + timedelta(minutes=5)))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.sleep(0)

    assert clock.next_wakeup is None
    clock.advance(timedelta(hours=1))  # must not trip over the cancelled future


async def test_stepped_sleep_until_now_returns_at_once():
    clock = SteppedClock(START)

    await asyncio.wait_for(clock.sleep_until(START), timeout=0.1)


def test_stepped_clock_does_not_go_backwards():
    clock = SteppedClock(START)

    with pytest.raises(ValueError, match="backwards"):
        clock.advance_to(START - timedelta(seconds=1))


def test_catch_up_clock_replays_then_keeps_pace_with_the_wall():
    from firmware_sim.clock import CatchUpClock

    wall_start = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    real = [0.0]
    clock = CatchUpClock(
        wall_start - timedelta(days=2),
        speed=1440.0,
        wall=lambda: wall_start + timedelta(seconds=real[0]),
        real_time=lambda: real[0],
    )
    assert clock.now() == wall_start - timedelta(days=2)
    assert not clock.caught_up
    real[0] = 60.0  # a real minute replays a simulated day
    assert clock.now() == wall_start - timedelta(days=1) + timedelta(seconds=60 * 1440 - 86400)
    real[0] = 121.0  # past the wall clock: from now on, real time
    assert clock.caught_up
    assert clock.now() == wall_start + timedelta(seconds=121)
    assert clock.real_seconds_until(wall_start + timedelta(seconds=131)) == 10.0
