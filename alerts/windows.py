"""Ragged per-patient readings of one metric, and the segment reductions the rules are built on.

All patients' readings of a metric live in three flat arrays sorted by (patient, time);
``offsets[p]:offsets[p + 1]`` is patient ``p``'s segment. Every helper here works on all
segments at once; none loops over patients.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np

Reading = tuple[int, float, bool]  # (epoch seconds, value, reliable)


def _as_epoch_seconds(t: np.ndarray) -> np.ndarray:
    t = np.asarray(t)
    if np.issubdtype(t.dtype, np.datetime64):
        return t.astype("datetime64[s]").astype(np.int64)
    return t.astype(np.int64, copy=False)


# init=False: ``reliable`` may be left out (every reading reliable), yet a window always has it.
@dataclass(frozen=True, slots=True, eq=False, init=False)
class MetricWindow:
    """Readings of one metric for patients ``0..n_patients-1``, in a fixed patient order.

    ``t`` is int64 epoch seconds (datetime64 is converted), sorted within each segment.
    ``reliable`` is False for readings carrying an unreliable flag; rules skip them.
    """

    offsets: np.ndarray
    t: np.ndarray
    v: np.ndarray
    reliable: np.ndarray

    def __init__(
        self,
        offsets: np.ndarray,
        t: np.ndarray,
        v: np.ndarray,
        reliable: np.ndarray | None = None,
    ) -> None:
        offsets = np.asarray(offsets, dtype=np.int64)
        t = _as_epoch_seconds(t)
        v = np.asarray(v, dtype=np.float64)
        reliable = (
            np.ones(t.shape, dtype=bool) if reliable is None else np.asarray(reliable, dtype=bool)
        )
        if offsets.ndim != 1 or offsets.size < 1 or offsets[0] != 0:
            raise ValueError("offsets must be a 1-d array starting at 0")
        if np.any(np.diff(offsets) < 0):
            raise ValueError("offsets must be non-decreasing")
        if not (t.shape == v.shape == reliable.shape == (int(offsets[-1]),)):
            raise ValueError("t, v and reliable must all have offsets[-1] elements")
        if t.size > 1:
            backwards = np.diff(t) < 0
            backwards[offsets[1:-1][(offsets[1:-1] > 0) & (offsets[1:-1] < t.size)] - 1] = False
            if np.any(backwards):
                raise ValueError("t must be sorted within each patient's segment")
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "t", t)
        object.__setattr__(self, "v", v)
        object.__setattr__(self, "reliable", reliable)

    @property
    def n_patients(self) -> int:
        return self.offsets.size - 1

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def patient_of_reading(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_patients, dtype=np.int64), self.counts)

    def select(self, mask: np.ndarray) -> MetricWindow:
        """The readings of ``mask``, as a window of their own."""
        t = self.t[mask]
        return MetricWindow._cut(
            offsets_of(masked_count(self.offsets, mask)), t, self.v[mask], self._reliable(mask, t)
        )

    def tail(self, n: np.ndarray) -> MetricWindow:
        """Each patient's newest ``n[p]`` readings (all of them where they are fewer).

        Times being sorted, a cut in time is a tail: the copy costs what it keeps, and nothing
        when it keeps everything.
        """
        n = np.minimum(n, self.counts)
        if np.array_equal(n, self.counts):
            return self
        offsets, gather = gather_slices(self.offsets[1:] - n, n)
        t = self.t[gather]
        return MetricWindow._cut(offsets, t, self.v[gather], self._reliable(gather, t))

    def _reliable(self, index: np.ndarray, t: np.ndarray) -> np.ndarray:
        # The evaluator cuts windows of reliable readings only: a check is cheaper than a copy.
        return np.ones(t.shape, bool) if self.reliable.all() else self.reliable[index]

    def since(self, bound: float) -> MetricWindow:
        """The readings with ``t > bound``."""
        if np.all(self.t[self.offsets[:-1][self.counts > 0]] > bound):
            return self
        return self.tail(masked_count(self.offsets, self.t > bound))

    @classmethod
    def _cut(
        cls, offsets: np.ndarray, t: np.ndarray, v: np.ndarray, reliable: np.ndarray
    ) -> MetricWindow:
        # Cut out of a checked window, so already in shape and order: the checks would cost as
        # much as the cut.
        window = object.__new__(cls)
        for name, value in (("offsets", offsets), ("t", t), ("v", v), ("reliable", reliable)):
            object.__setattr__(window, name, value)
        return window

    @classmethod
    def empty(cls, n_patients: int) -> MetricWindow:
        return cls(np.zeros(n_patients + 1, np.int64), np.empty(0, np.int64), np.empty(0))

    @classmethod
    def from_arrays(
        cls,
        patient_index: np.ndarray,
        t: np.ndarray,
        v: np.ndarray,
        reliable: np.ndarray | None = None,
        *,
        n_patients: int,
    ) -> MetricWindow:
        """Build from unsorted flat arrays, e.g. the rows of one database query."""
        patient_index = np.asarray(patient_index, dtype=np.int64)
        t = _as_epoch_seconds(t)
        if patient_index.size and (patient_index.min() < 0 or patient_index.max() >= n_patients):
            raise ValueError("patient_index out of range")
        order = np.lexsort((t, patient_index))
        offsets = np.zeros(n_patients + 1, np.int64)
        np.cumsum(np.bincount(patient_index, minlength=n_patients), out=offsets[1:])
        rel = None if reliable is None else np.asarray(reliable, dtype=bool)[order]
        return cls(offsets, t[order], np.asarray(v, dtype=np.float64)[order], rel)

    @classmethod
    def from_readings(cls, per_patient: Sequence[Sequence[Reading]]) -> MetricWindow:
        """Build from per-patient lists of ``(t, value, reliable)``; meant for tests and tools."""
        counts = [len(r) for r in per_patient]
        patient_index = np.repeat(np.arange(len(per_patient)), counts)
        flat = [r for readings in per_patient for r in readings]
        t = np.array([r[0] for r in flat], dtype=np.int64)
        v = np.array([r[1] for r in flat], dtype=np.float64)
        rel = np.array([r[2] for r in flat], dtype=bool)
        return cls.from_arrays(patient_index, t, v, rel, n_patients=len(per_patient))


def windows_from_patients(
    patients: Sequence[Mapping[str, Sequence[Reading]]], metrics: Sequence[str]
) -> dict[str, MetricWindow]:
    return {m: MetricWindow.from_readings([p.get(m, ()) for p in patients]) for m in metrics}


def offsets_of(counts: np.ndarray) -> np.ndarray:
    """Segment bounds from segment sizes."""
    offsets = np.zeros(counts.size + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def gather_slices(start: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slices ``[start[p], start[p] + length[p])`` laid end to end: their offsets, and the
    index of each element in the array they are cut from."""
    offsets = offsets_of(length)
    return offsets, np.repeat(start - offsets[:-1], length) + np.arange(offsets[-1])


def segment_reduce(
    ufunc: np.ufunc,
    values: np.ndarray,
    offsets: np.ndarray,
    identity: float | int,
    dtype: np.dtype | type | None = None,
) -> np.ndarray:
    """``ufunc`` reduced over each segment; ``identity`` for empty segments.

    ``reduceat`` returns an element, not the identity, for an empty segment, and cannot take an
    index equal to the array length: it is given the starts of non-empty segments only, each of
    which then runs to the next non-empty start, which is where the segment ends. ``dtype``
    accumulates in another type block by block, without a converted copy of ``values``.
    """
    values = np.asarray(values)
    nonempty = offsets[1:] > offsets[:-1]
    if values.size:
        reduced = ufunc.reduceat(values, offsets[:-1][nonempty], dtype=dtype)
    else:
        reduced = values[:0].astype(dtype or values.dtype)
    out = np.full(nonempty.size, identity, dtype=np.result_type(reduced.dtype, values.dtype))
    out[nonempty] = reduced
    return out


def masked_count(offsets: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return segment_reduce(np.add, mask, offsets, 0, dtype=np.int64)


def masked_sum(offsets: np.ndarray, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Sum per segment over ``mask``; ``values`` finite (as readings are)."""
    # A product rather than np.where: the same sums (x + 0.0 == x), several times faster.
    return segment_reduce(np.add, values * mask, offsets, 0.0)


def masked_mean(offsets: np.ndarray, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean per segment over ``mask``, :func:`settled`; NaN where nothing is selected."""
    n = masked_count(offsets, mask)
    total = masked_sum(offsets, values, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, settled(total / np.maximum(n, 1)), np.nan)


# Float sums leave 134.99999999999997 where readings average exactly 135, the ESH threshold,
# and the last bit depends on the order of the additions (numpy adds in pairs, the reference
# one after another). Means are kept to a millionth of their unit, far below what any device
# resolves, with the same IEEE operations here and in ``bench._reference``: the same mean
# whatever the order, unless the exact mean falls on half a millionth.
MEAN_DECIMALS = 6


def settled(mean: np.ndarray) -> np.ndarray:
    """``mean`` rounded half up to :data:`MEAN_DECIMALS` decimals."""
    scale = 10.0**MEAN_DECIMALS
    return np.floor(mean * scale + 0.5) / scale


# The first and last selected reading of each segment are found by binary search of the segment
# bounds among the selected indices: one pass over the mask, then work per patient only. Without
# a mask, every reading is selected and they are the segment bounds.


def last_index(offsets: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Index of the last selected reading of each segment, -1 if none."""
    if mask is None:
        last = offsets[1:] - 1
        last[offsets[1:] == offsets[:-1]] = -1
        return last
    last = last_index(offsets, None)
    # Usually a segment's last reading is selected: only the others need the search.
    done = last >= 0
    done[done] = mask[last[done]]
    rest = np.flatnonzero(~done)
    if rest.size == 0:
        return last
    selected = np.flatnonzero(mask)
    if selected.size == 0:
        last[rest] = -1
        return last
    k = np.searchsorted(selected, offsets[1:][rest]) - 1
    candidate = selected[np.maximum(k, 0)]
    last[rest] = np.where((k >= 0) & (candidate >= offsets[:-1][rest]), candidate, -1)
    return last


def first_index(offsets: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Index of the first selected reading of each segment, -1 if none."""
    if mask is None:
        first = offsets[:-1].copy()
        first[offsets[1:] == offsets[:-1]] = -1
        return first
    selected = np.flatnonzero(mask)
    if selected.size == 0:
        return np.full(offsets.size - 1, -1, np.int64)
    k = np.searchsorted(selected, offsets[:-1])
    candidate = selected[np.minimum(k, selected.size - 1)]
    return np.where((k < selected.size) & (candidate < offsets[1:]), candidate, -1)


def trailing_run(offsets: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last unbroken run of ``member`` readings of each segment.

    Returns, per segment, the run's length (it is the segment's tail) and the index of the
    reading that broke it (the newest one not a member), -1 if none did.
    """
    broken = last_index(offsets, ~member)
    start = np.where(broken >= 0, broken + 1, offsets[:-1])
    return offsets[1:] - start, broken


def first_of_equal(offsets: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Mask of the elements whose key differs from the previous one of their segment (the first
    of each run of equal keys); keys must be sorted per segment."""
    keep = np.ones(keys.size, dtype=bool)
    keep[1:] = keys[1:] != keys[:-1]
    # Empty segments at the end start past the last element; others start where a segment does.
    starts = offsets[:-1]
    keep[starts[starts < keys.size]] = True
    return keep


def followed_within(offsets: np.ndarray, t: np.ndarray, within: int) -> np.ndarray:
    """Mask of the readings followed in their segment by another at most ``within`` seconds
    later; ``t`` sorted per segment."""
    follows = np.zeros(t.size, dtype=bool)
    follows[:-1] = t[1:] - t[:-1] <= within
    ends = offsets[1:][offsets[1:] > offsets[:-1]] - 1  # each non-empty segment's last reading
    follows[ends] = False
    return follows


def take(values: np.ndarray, index: np.ndarray, fill: float | int) -> np.ndarray:
    """``values[index]`` with ``fill`` (of the values' type) where ``index`` is -1."""
    if values.size == 0:
        return np.full(index.shape, fill, dtype=values.dtype)
    out: np.ndarray = values[index]
    out[index < 0] = fill
    return out


def utc_offsets(t: np.ndarray, tz: str) -> np.ndarray:
    """UTC offset in seconds at each epoch second in ``t`` for the IANA zone ``tz``.

    Offsets are looked up once per hour of the covered span (zone transitions fall on whole
    hours), then spread to readings with integer division: a loop over hours, not readings.
    """
    if t.size == 0:
        return np.zeros(0, np.int64)
    zone = ZoneInfo(tz)
    first = int(t.min()) // 3600
    last = int(t.max()) // 3600
    hours = range(first, last + 1)
    table = np.array(
        [datetime.fromtimestamp(h * 3600, UTC).astimezone(zone).utcoffset() for h in hours]
    )
    seconds = np.array([int(o.total_seconds()) for o in table], dtype=np.int64)
    offsets: np.ndarray = seconds[t // 3600 - first]
    return offsets


def local_day_and_hour(t: np.ndarray, tz: str) -> tuple[np.ndarray, np.ndarray]:
    """Local calendar day number (days since 1970-01-01 local) and local hour, 0..23."""
    local = t + utc_offsets(t, tz)
    return local // 86400, (local % 86400) // 3600


QUARTER_HOUR = 900


@dataclass(frozen=True, slots=True, eq=False)
class SessionDays:
    """Per UTC quarter hour of the last ``days`` local days up to ``now``, the bit of its local
    day (bit 0: the oldest day) when its local hour is in one of the sessions, else 0.

    As bits, the days a patient measured on are one OR over the patient's readings, and later
    days have larger bits. Zone offsets are whole quarter hours and change on the hour, so every
    time in a UTC quarter hour has the same local day and hour: the calendar is worked out once
    per quarter hour of the span (once per rule, for all its metrics) and read by index.
    """

    first: int  # the first quarter hour covered, in quarter hours since the epoch
    calendar: np.ndarray  # unsigned, wide enough for ``days`` bits

    @classmethod
    def of(cls, now: int, days: int, sessions: Sequence[tuple[int, int]], tz: str) -> SessionDays:
        """``sessions`` are ``[start, end)`` local hours; ``days`` <= 63."""
        first = (now - (days + 1) * 86400) // QUARTER_HOUR
        quarters = np.arange(first, now // QUARTER_HOUR + 1, dtype=np.int64) * QUARTER_HOUR
        day, hour = local_day_and_hour(quarters, tz)
        oldest = int(local_day_and_hour(np.array([now]), tz)[0][0]) - days + 1
        in_session = np.logical_or.reduce([(hour >= a) & (hour < b) for a, b in sessions])
        counted = (day >= oldest) & in_session
        bits = np.where(counted, np.left_shift(1, np.where(counted, day - oldest, 0)), 0)
        return cls(first, bits.astype(np.min_scalar_type(1 << (days - 1))))

    def bits(self, t: np.ndarray) -> np.ndarray:
        """The day bit of each time; ``t`` must lie in ``(now - (days + 1) days, now]``."""
        index = t // QUARTER_HOUR
        index -= self.first
        if index.size and (index.min() < 0 or index.max() >= self.calendar.size):
            raise ValueError("times outside the days the calendar covers")
        day_bits: np.ndarray = self.calendar[index]
        return day_bits
