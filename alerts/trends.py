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

    Segments are right-aligned into a padded (patients × points) matrix so the slopes of every
    pair of points of every patient come from one gather; chunks bound the memory used.
    """
    offsets, t, v = _selected(offsets, t, v, mask)
    n_patients = offsets.size - 1
    count = np.minimum(np.diff(offsets), max_points)
    offsets, gather = gather_slices(offsets[1:] - count, count)
    # Pad only as wide as the fullest segment: usually a handful of readings, not max_points.
    k = int(max(2, count.max(initial=0)))
    rows = np.repeat(np.arange(n_patients), count)
    cols = np.arange(gather.size) - np.repeat(offsets[:-1] - (k - count), count)
    xs = np.full((n_patients, k), np.nan)
    vs = np.full((n_patients, k), np.nan)
    xs[rows, cols] = (t[gather] - reference).astype(np.float64)
    vs[rows, cols] = v[gather]

    first, second = np.triu_indices(k, 1)
    out = np.full(n_patients, np.nan)
    step = max(1, chunk_cells // first.size)
    for lo in range(0, n_patients, step):
        x, y = xs[lo : lo + step], vs[lo : lo + step]
        dx = x[:, second] - x[:, first]  # NaN where either point is padding
        dy = y[:, second] - y[:, first]
        valid = np.isfinite(dx) & (dx != 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            slopes = np.where(valid, dy / dx, np.nan)
        m = valid.sum(axis=1)
        ordered = np.sort(slopes, axis=1)  # NaN sorts last
        low = np.take_along_axis(ordered, np.maximum((m - 1) // 2, 0)[:, None], 1)[:, 0]
        high = np.take_along_axis(ordered, (m // 2)[:, None], 1)[:, 0]
        out[lo : lo + step] = np.where(m > 0, (low + high) / 2, np.nan)
    return out


def deltas(
    offsets: np.ndarray, v: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Last minus first selected value per segment, with the first and last indices (-1: none)."""
    first = first_index(offsets, mask)
    last = last_index(offsets, mask)
    change = take(v, last, np.nan) - take(v, first, np.nan)
    return np.where(last > first, change, np.nan), first, last
