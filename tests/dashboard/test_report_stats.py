"""The period report's numbers (dashboard/report_stats.py), against hand-computed values."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dashboard import report_stats as rs
from dashboard.report import Period, PeriodError, parse_period

ROME = ZoneInfo("Europe/Rome")


def test_summary_counts_mean_extremes_and_share_in_range() -> None:
    # SpO2 with the CO@h bands: amber <= 94, red <= 92.
    bands = [("<=", 94.0), ("<=", 92.0)]
    summary = rs.summarise([97, 96, 94, 91], bands)
    assert summary.count == 4
    assert summary.mean == pytest.approx(94.5)
    assert (summary.min, summary.max) == (91, 97)
    assert summary.in_range_pct == pytest.approx(50.0)  # 94 fires amber (<=), 91 red


def test_summary_without_bands_or_readings() -> None:
    assert rs.summarise([80, 90], []).in_range_pct is None
    empty = rs.summarise([], [(">", 1.0)])
    assert (empty.count, empty.mean, empty.in_range_pct) == (0, None, None)


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=ROME).astimezone(UTC)


def test_esh_mean_discards_day_one_of_the_series() -> None:
    last = date(2026, 3, 10)
    days = [last - timedelta(days=n) for n in range(6, -1, -1)]  # 7 days, 04/03 to 10/03
    # Day 1 is high (white-coat effect at the start of a series): it must not count.
    sys = [(_at(d, 8), 170.0 if i == 0 else 140.0) for i, d in enumerate(days)]
    sys += [(_at(d, 20), 170.0 if i == 0 else 130.0) for i, d in enumerate(days)]
    dia = [(at, 80.0) for at, _ in sys]
    mean = rs.esh_home_mean(sys, dia, last_day=last, tz=ROME)
    assert mean is not None
    assert mean.systolic == pytest.approx(135.0)
    assert mean.diastolic == pytest.approx(80.0)
    assert (mean.days, mean.first_day, mean.last_day) == (6, days[1], last)


def test_esh_mean_needs_three_days_after_the_discard() -> None:
    last = date(2026, 3, 10)
    three = [(_at(last - timedelta(days=n), 8), 140.0) for n in range(3)]
    assert rs.esh_home_mean(three, three, last_day=last, tz=ROME) is None  # 2 left
    four = [(_at(last - timedelta(days=n), 8), 140.0) for n in range(4)]
    assert rs.esh_home_mean(four, four, last_day=last, tz=ROME) is not None
    # Readings older than the 7-day window do not count.
    old = [(_at(last - timedelta(days=n), 8), 140.0) for n in range(7, 12)]
    assert rs.esh_home_mean(old, old, last_day=last, tz=ROME) is None


def test_glucose_levels_follow_ada() -> None:
    levels = rs.glucose_levels([50, 53.9, 54, 69.9, 70, 120, 180, 181, 250, 100])
    assert levels is not None
    assert levels.level_2 == 2  # < 54
    assert levels.level_1 == 2  # 54 to < 70
    assert levels.above == 2  # > 180
    assert levels.in_range_pct == pytest.approx(40.0)  # 70, 120, 180, 100
    assert rs.glucose_levels([]) is None


def test_adherence_daily_and_sparser_schedules() -> None:
    first, last = date(2026, 3, 1), date(2026, 3, 10)
    seen = [date(2026, 3, d) for d in (1, 2, 2, 5, 9)] + [date(2026, 2, 28)]
    daily = rs.adherence(seen, first=first, last=last, every_hours=8)
    assert (daily.days_with_readings, daily.days_expected) == (4, 10)
    assert daily.pct == pytest.approx(40.0)
    # One whole week, 4-10 March (counted back from the last day); 1-3 March are not due.
    weekly = rs.adherence(seen, first=first, last=last, every_hours=168)
    assert (weekly.days_with_readings, weekly.days_expected) == (1, 1)
    assert weekly.due and weekly.pct == pytest.approx(100.0)
    assert rs.adherence([], first=first, last=first, every_hours=24).pct == 0.0
    # 30 days, readings 1-3, 10 and 20 days before the last: 3 of the 4 whole weeks.
    month = [last - timedelta(days=n) for n in (1, 2, 3, 10, 20)]
    thirty = rs.adherence(month, first=last - timedelta(days=29), last=last, every_hours=168)
    assert (thirty.days_with_readings, thirty.days_expected) == (3, 4)
    # A weekly series begun 6 days ago, measured on 3 of them: not yet due, never "3/0".
    begun = rs.adherence(month, first=last - timedelta(days=5), last=last, every_hours=168)
    assert (begun.days_with_readings, begun.days_expected, begun.due) == (0, 0, False)
    assert begun.pct is None
    # Every 36 h over 4 days: two whole stretches, (last - 1.5 d, last] and the one before.
    sparse = rs.adherence([last], first=last - timedelta(days=3), last=last, every_hours=36)
    assert (sparse.days_with_readings, sparse.days_expected) == (1, 2)


def test_periods_are_checked_with_a_reason() -> None:
    today = date(2026, 3, 31)
    assert parse_period(None, None, today=today) == Period(date(2026, 3, 2), today)
    assert parse_period("2026-03-01", "2026-03-07", today=today).days == 7
    for first, last, reason in (
        ("2026-3-1", "2026-03-07", "YYYY-MM-DD"),
        ("2026-02-30", "2026-03-07", "YYYY-MM-DD"),
        ("2026-03-08", "2026-03-07", "after"),
        ("2026-03-01", "2026-04-01", "after today"),
        ("2025-01-01", "2026-03-07", "at most"),
    ):
        with pytest.raises(PeriodError, match=reason):
            parse_period(first, last, today=today)
    # Local days: the period starts at midnight in Rome, not UTC.
    period = Period(date(2026, 7, 1), date(2026, 7, 1))
    assert period.start == datetime(2026, 6, 30, 22, tzinfo=UTC)
    assert period.end == datetime(2026, 7, 1, 22, tzinfo=UTC)


def test_every_score_channel_has_words() -> None:
    from alerts.protocol import SCORE_CHANNELS
    from dashboard.i18n import TEXTS

    assert all(f"report.channel.{c}" in TEXTS for c in SCORE_CHANNELS)
