"""Ragged windows and the segment reductions, including empty segments and local time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alerts.windows import (
    MetricWindow,
    SessionDays,
    first_index,
    first_of_equal,
    last_index,
    local_day_and_hour,
    masked_mean,
    segment_reduce,
    trailing_run,
    utc_offsets,
)


def test_from_arrays_sorts_by_patient_then_time_and_keeps_empty_patients():
    w = MetricWindow.from_arrays(
        np.array([2, 0, 2, 0]),
        np.array([30, 20, 10, 5]),
        np.array([3.0, 2.0, 1.0, 0.5]),
        np.array([True, False, True, True]),
        n_patients=4,
    )
    assert w.offsets.tolist() == [0, 2, 2, 4, 4]
    assert w.t.tolist() == [5, 20, 10, 30]
    assert w.v.tolist() == [0.5, 2.0, 1.0, 3.0]
    assert w.reliable.tolist() == [True, False, True, True]
    assert w.patient_of_reading().tolist() == [0, 0, 2, 2]


def test_datetime64_times_become_epoch_seconds():
    t = np.array(["2026-01-01T00:00:00", "2026-01-01T00:01:00"], dtype="datetime64[ms]")
    w = MetricWindow(np.array([0, 2]), t, np.array([1.0, 2.0]))
    assert w.t.tolist() == [1_767_225_600, 1_767_225_660]


@pytest.mark.parametrize(
    ("offsets", "t", "message"),
    [
        ([1, 2], [1, 2], "starting at 0"),
        ([0, 2, 1], [1, 2], "non-decreasing"),
        ([0, 3], [1, 2], "offsets\\[-1\\] elements"),
        ([0, 2], [2, 1], "sorted within each patient"),
    ],
)
def test_window_validation(offsets, t, message):
    with pytest.raises(ValueError, match=message):
        MetricWindow(np.array(offsets), np.array(t), np.zeros(len(t)))


def test_time_may_go_back_across_patients():
    w = MetricWindow(np.array([0, 1, 2]), np.array([9, 1]), np.zeros(2))
    assert w.n_patients == 2


def test_segment_reduce_handles_empty_segments_anywhere():
    offsets = np.array([0, 0, 2, 2, 5, 5])
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert segment_reduce(np.add, values, offsets, 0.0).tolist() == [0, 3, 0, 12, 0]
    assert segment_reduce(np.maximum, values, offsets, -np.inf).tolist() == [
        -np.inf, 2, -np.inf, 5, -np.inf,
    ]  # fmt: skip
    assert segment_reduce(np.add, np.empty(0), np.zeros(3, np.int64), 0.0).tolist() == [0, 0]


def test_masked_reductions():
    offsets = np.array([0, 3, 5, 5])
    v = np.array([1.0, 2.0, 6.0, 4.0, 8.0])
    mask = np.array([True, False, True, False, False])
    assert masked_mean(offsets, v, mask)[0] == 3.5
    assert np.isnan(masked_mean(offsets, v, mask)[1:]).all()
    assert last_index(offsets, mask).tolist() == [2, -1, -1]
    assert first_index(offsets, mask).tolist() == [0, -1, -1]
    # A segment whose last reading is not selected is searched back to its last selected one.
    picked = np.array([1, 1, 0, 0, 0, 1, 0, 0], bool)
    assert last_index(np.array([0, 3, 6, 8]), picked).tolist() == [1, 5, -1]
    # Without a mask every reading is selected: the segment bounds.
    assert last_index(offsets, None).tolist() == [2, 4, -1]
    assert first_index(offsets, None).tolist() == [0, 3, -1]


def window_of(*segments: list[int]) -> MetricWindow:
    t = [x for segment in segments for x in segment]
    counts = [len(segment) for segment in segments]
    return MetricWindow(np.cumsum([0, *counts]), np.array(t), np.array(t, dtype=float) / 10)


def segments_of(w: MetricWindow) -> list[list[int]]:
    return [w.t[a:b].tolist() for a, b in zip(w.offsets[:-1], w.offsets[1:], strict=True)]


def test_cuts_keep_segments_and_order():
    w = window_of([1, 5, 9], [], [2, 3], [7])
    assert segments_of(w.tail(np.array([2, 0, 5, 0]))) == [[5, 9], [], [2, 3], []]
    assert segments_of(w.since(4)) == [[5, 9], [], [], [7]]
    assert w.since(0) is w  # nothing to cut: no copy
    assert w.tail(w.counts) is w
    picked = w.select(np.array([True, False, True, False, True, True]))
    assert segments_of(picked) == [[1, 9], [], [3], [7]]
    assert picked.v.tolist() == [0.1, 0.9, 0.3, 0.7]


def test_utc_offsets_follow_daylight_saving_like_zoneinfo():
    rome = ZoneInfo("Europe/Rome")
    start = int(datetime(2026, 3, 28, tzinfo=UTC).timestamp())
    t = np.arange(start, start + 3 * 86400, 599, dtype=np.int64)  # across the March change
    expected = [datetime.fromtimestamp(x, UTC).astimezone(rome).utcoffset().seconds for x in t]
    assert utc_offsets(t, "Europe/Rome").tolist() == expected
    assert set(expected) == {3600, 7200}
    day, hour = local_day_and_hour(t, "Europe/Rome")
    local = [datetime.fromtimestamp(x, UTC).astimezone(rome) for x in t]
    assert hour.tolist() == [x.hour for x in local]
    assert (day - day[0]).tolist() == [(x.date() - local[0].date()).days for x in local]


def test_trailing_run_is_the_unbroken_end_of_each_segment():
    # Segments: [in, out, in, in], [], [in, in], [out], [out, in, in].
    offsets = np.array([0, 4, 4, 6, 7, 10])
    member = np.array([1, 0, 1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    length, broken = trailing_run(offsets, member)
    assert length.tolist() == [2, 0, 2, 0, 2]
    assert broken.tolist() == [1, -1, -1, 6, 7]


def test_trailing_run_of_nothing():
    length, broken = trailing_run(np.array([0, 0, 0]), np.zeros(0, bool))
    assert length.tolist() == [0, 0] and broken.tolist() == [-1, -1]


def test_session_days_follow_the_local_calendar_across_a_clock_change():
    rome = ZoneInfo("Europe/Rome")
    now = int(datetime(2026, 3, 31, 21, 0, tzinfo=UTC).timestamp())  # 23:00 in Rome
    t = np.arange(now - 4 * 86400 + 1, now + 1, 300, dtype=np.int64)  # across 29 March
    sessions = [(4, 12), (17, 24)]
    local = [datetime.fromtimestamp(x, UTC).astimezone(rome) for x in t]
    today = local[-1].date()
    expected = [
        1 << (2 - (today - x.date()).days)
        if (today - x.date()).days < 3 and any(a <= x.hour < b for a, b in sessions)
        else 0
        for x in local
    ]
    calendar = SessionDays.of(now, 3, sessions, "Europe/Rome")
    assert calendar.bits(t).tolist() == expected
    with pytest.raises(ValueError, match="outside"):
        calendar.bits(np.array([now + 3600]))


def test_first_of_equal_keeps_one_per_key_and_segment():
    offsets = np.array([0, 3, 3, 5, 5])
    keys = np.array([1, 1, 2, 2, 2])
    assert first_of_equal(offsets, keys).tolist() == [True, False, True, True, False]
