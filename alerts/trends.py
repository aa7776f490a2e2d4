"""Per-segment trend estimators over selected readings, all segments at once.

Times are shifted to a reference (the evaluation time) before any arithmetic: epoch seconds
squared would lose every significant digit of a slope in float64.
"""

from __future__ import annotations

import numpy as np

from alerts.windows import first_index, last_index, masked_count, masked_sum, take


def ols_slopes(
    offsets: np.ndarray, t: np.ndarray, v: np.ndarray, mask: np.ndarray, reference: int
) -> np.ndarray:
    """Least-squares slope (value units per second) per segment; NaN if the times don't vary."""
    x = (t - reference).astype(np.float64)
    n = masked_count(offsets, mask)
    seg = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_x = masked_sum(offsets, x, mask) / n
        mean_v = masked_sum(offsets, v, mask) / n
        dx = x - mean_x[seg] if x.size else x
        dv = v - mean_v[seg] if v.size else v
        sxy = masked_sum(offsets, dx * dv, mask)
        sxx = masked_sum(offsets, dx * dx, mask)
        return np.where((n >= 2) & (sxx > 0), sxy / sxx, np.nan)


def theil_sen_slopes(
    offsets: np.ndarray,
    t: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray,
    reference: int,
    max_points: int = 32,
    chunk_cells: int = 4_000_000,
) -> np.ndarray:
    """Median of pairwise slopes over each segment's last ``max_points`` selected readings.

    Segments are right-aligned into a padded (patients × max_points) matrix so the pairwise
    slopes of every patient come from one broadcast; chunks bound the memory used.
    """
    n_patients = offsets.size - 1
    selected = np.flatnonzero(mask)
    seg = np.repeat(np.arange(n_patients), np.diff(offsets))[selected]
    count = np.bincount(seg, minlength=n_patients)
    # Pad only as wide as the fullest segment: usually a handful of readings, not max_points.
    k = int(max(2, min(max_points, count.max(initial=0))))
    starts = np.cumsum(count) - count
    from_end = count[seg] - 1 - (np.arange(selected.size) - starts[seg])
    keep = from_end < k
    rows, cols = seg[keep], k - 1 - from_end[keep]
    xs = np.full((n_patients, k), np.nan)
    vs = np.full((n_patients, k), np.nan)
    xs[rows, cols] = (t[selected[keep]] - reference).astype(np.float64)
    vs[rows, cols] = v[selected[keep]]

    upper = np.triu(np.ones((k, k), dtype=bool), 1)
    out = np.full(n_patients, np.nan)
    step = max(1, chunk_cells // (k * k))
    for lo in range(0, n_patients, step):
        x, y = xs[lo : lo + step], vs[lo : lo + step]
        dx = x[:, None, :] - x[:, :, None]  # [p, i, j] = x_j - x_i
        dy = y[:, None, :] - y[:, :, None]
        valid = upper & np.isfinite(dx) & (dx != 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            slopes = np.where(valid, dy / dx, np.nan).reshape(len(x), k * k)
        m = valid.reshape(len(x), k * k).sum(axis=1)
        ordered = np.sort(slopes, axis=1)  # NaN sorts last
        low = np.take_along_axis(ordered, np.maximum((m - 1) // 2, 0)[:, None], 1)[:, 0]
        high = np.take_along_axis(ordered, (m // 2)[:, None], 1)[:, 0]
        out[lo : lo + step] = np.where(m > 0, (low + high) / 2, np.nan)
    return out


def deltas(
    offsets: np.ndarray, v: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Last minus first selected value per segment, with the first and last indices (-1: none)."""
    first = first_index(offsets, mask)
    last = last_index(offsets, mask)
    change = take(v, last, np.nan) - take(v, first, np.nan)
    return np.where(last > first, change, np.nan), first, last
