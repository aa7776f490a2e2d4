"""Per-segment trend estimators over selected readings, all segments at once.

``mask`` selects the readings; None takes them all (the evaluator cuts its windows first).
Times are shifted to a reference (the evaluation time) before any arithmetic: epoch seconds
squared would lose every significant digit of a slope in float64.
"""

from __future__ import annotations

import numpy as np

from alerts.windows import (
    first_index,
    gather_slices,
    last_index,
    masked_count,
    offsets_of,
    segment_reduce,
    take,
)


def _selected(
    offsets: np.ndarray, t: np.ndarray, v: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if mask is None:
        return offsets, t, v
    return offsets_of(masked_count(offsets, mask)), t[mask], v[mask]


def ols_slopes(
    offsets: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None,
    reference: int,
) -> np.ndarray:
    """Least-squares slope (value units per second) per segment; NaN if the times don't vary."""
    offsets, t, v = _selected(offsets, t, v, mask)
    x = (t - reference).astype(np.float64)
    n = np.diff(offsets)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = segment_reduce(np.add, x, offsets, 0.0) / n
        mean_v = segment_reduce(np.add, v, offsets, 0.0) / n
        dx = x - np.repeat(mean_x, n)
        dv = v - np.repeat(mean_v, n)
        sxy = segment_reduce(np.add, dx * dv, offsets, 0.0)
        sxx = segment_reduce(np.add, dx * dx, offsets, 0.0)
        return np.where((n >= 2) & (sxx > 0), sxy / sxx, np.nan)


def theil_sen_slopes(
    offsets: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray | None,
    reference: int,
    max_points: int = 32,
    chunk_cells: int = 4_000_000,
) -> np.ndarray:
    """Median of pairwise slopes over each segment's last ``max_points`` selected readings.

    Segments with the same number of points make one (segments × points) matrix, whose pairs
    of points all come from one gather: the work is the pairs each patient has, however many
    another patient has. Chunks bound the memory used.
    """
    offsets, t, v = _selected(offsets, t, v, mask)
    count = np.minimum(np.diff(offsets), max_points)
    offsets, gather = gather_slices(offsets[1:] - count, count)
    x = (t[gather] - reference).astype(np.float64)
    y = v[gather]
    out = np.full(count.size, np.nan)
    for points in np.unique(count[count >= 2]).tolist():
        rows = np.flatnonzero(count == points)
        first, second = np.triu_indices(points, 1)
        step = max(1, chunk_cells // first.size)
        for lo in range(0, rows.size, step):
            chunk = rows[lo : lo + step]
            index = offsets[chunk][:, None] + np.arange(points)
            dx = x[index[:, second]] - x[index[:, first]]
            dy = y[index[:, second]] - y[index[:, first]]
            valid = dx != 0  # two readings at the same second give no slope
            with np.errstate(invalid="ignore", divide="ignore"):
                slopes = np.where(valid, dy / dx, np.nan)
            m = valid.sum(axis=1)
            ordered = np.sort(slopes, axis=1)  # NaN sorts last
            low = np.take_along_axis(ordered, np.maximum((m - 1) // 2, 0)[:, None], 1)[:, 0]
            high = np.take_along_axis(ordered, (m // 2)[:, None], 1)[:, 0]
            out[chunk] = np.where(m > 0, (low + high) / 2, np.nan)
    return out


def deltas(
    offsets: np.ndarray, v: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Last minus first selected value per segment, with the first and last indices (-1: none)."""
    first = first_index(offsets, mask)
    last = last_index(offsets, mask)
    change = take(v, last, np.nan) - take(v, first, np.nan)
    return np.where(last > first, change, np.nan), first, last
