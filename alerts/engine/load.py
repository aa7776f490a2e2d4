"""Loading what the evaluator needs: who follows which protocol, and their readings as windows.

Readings come out with one binary ``COPY`` per metric for all the patients at once, ordered by
(patient, time) in the database, and are decoded in bulk with numpy: every row has the same
three fixed-width, non-null fields, so the stream is one structured array after its header.
Readings flagged unreliable stay in the database: no rule reads them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, assert_never

import numpy as np
import psycopg
from psycopg import sql

from alerts.protocol import (
    AggregateRule,
    AnyRule,
    MissingDataRule,
    PatientOverride,
    Protocol,
    ProtocolError,
    ScoreRule,
    ThresholdRule,
    TrendRule,
    apply_override,
)
from alerts.windows import MetricWindow, gather_slices
from telemon.flags import UNRELIABLE_FLAGS
from telemon.metrics import METRICS

log = logging.getLogger(__name__)

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
# Each row: field count, then (length, value) for patient_id, measured_at, value.
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("patient_len", ">i4"),
        ("patient", ">i8"),
        ("t_len", ">i4"),
        ("t", ">i8"),
        ("v_len", ">i4"),
        ("v", ">f8"),
    ]
)
_EXPECTED = {"fields": 3, "patient_len": 8, "t_len": 8, "v_len": 8}
# PostgreSQL's binary timestamps count microseconds from 2000-01-01 UTC.
_PG_EPOCH = 946_684_800
_UNRELIABLE = sorted(UNRELIABLE_FLAGS)


@dataclass(frozen=True, slots=True)
class MetricNeed:
    """How far back a metric is read, and whether the newest reading of any age is needed too."""

    lookback: int
    latest: bool = False

    def merge(self, other: MetricNeed) -> MetricNeed:
        return MetricNeed(max(self.lookback, other.lookback), self.latest or other.latest)


def rule_needs(rule: AnyRule) -> dict[str, MetricNeed]:
    """What one rule reads; windows must match the masks of ``alerts.evaluate``."""
    if isinstance(rule, ThresholdRule | ScoreRule):
        need = MetricNeed(rule.lookback)
    elif isinstance(rule, TrendRule):
        # The window ends at the newest reading, itself at most a window old.
        need = MetricNeed(2 * rule.window)
    elif isinstance(rule, AggregateRule):
        need = MetricNeed((rule.days + 1) * 86400)
    elif isinstance(rule, MissingDataRule):
        # Hours since the newest reliable reading, however old: no lookback bounds it. Reading
        # as far back as the highest band keeps the per-patient look-up for those beyond it.
        horizon = max(band.value for band in rule.bands) + rule.clear_margin
        need = MetricNeed(int(horizon * 3600) + 3600, latest=True)
    else:
        assert_never(rule)
    return dict.fromkeys(rule.metrics, need)


def protocol_needs(protocols: Iterable[Protocol]) -> dict[str, MetricNeed]:
    needs: dict[str, MetricNeed] = {}
    for protocol in protocols:
        for rule in protocol.rules:
            for metric, need in rule_needs(rule).items():
                needs[metric] = needs[metric].merge(need) if metric in needs else need
    return needs


@dataclass(frozen=True, slots=True)
class Enrolment:
    """The patients following one protocol, sorted by id, with overrides by position and the
    epoch seconds each one's enrolment started (None: not known)."""

    protocol: Protocol
    patient_ids: np.ndarray
    overrides: dict[int, PatientOverride] = field(default_factory=dict)
    started_at: np.ndarray | None = None


def load_enrolments(
    conn: psycopg.Connection,
    protocols: Mapping[str, Protocol],
    now: datetime,
    patient_ids: Sequence[int] | None = None,
) -> dict[str, Enrolment]:
    """Current enrolments in known protocols, for ``patient_ids`` or everyone.

    An override that no longer validates against its protocol (the protocol changed under it)
    is logged and ignored, so that one bad override cannot stop the monitoring of everyone.
    """
    query = sql.SQL(
        """
        SELECT pp.protocol, pp.patient_id, pp.overrides, pp.started_at
        FROM patient_protocols pp JOIN patients p ON p.id = pp.patient_id
        WHERE pp.protocol = ANY(%(protocols)s) AND pp.started_at <= %(now)s
          AND (pp.ended_at IS NULL OR pp.ended_at > %(now)s)
          AND (p.discharged_at IS NULL OR p.discharged_at > %(now)s) {}
        ORDER BY pp.protocol, pp.patient_id
        """
    ).format(sql.SQL("AND pp.patient_id = ANY(%(ids)s)" if patient_ids is not None else ""))
    params = {"protocols": list(protocols), "now": now, "ids": list(patient_ids or ())}
    rows: dict[str, list[tuple[int, Any, datetime]]] = {}
    for key, patient_id, raw, started in conn.execute(query, params):
        rows.setdefault(key, []).append((patient_id, raw, started))
    return {key: _enrolment(protocols[key], members) for key, members in rows.items()}


def _enrolment(protocol: Protocol, members: list[tuple[int, Any, datetime]]) -> Enrolment:
    ids = np.array([patient_id for patient_id, _, _ in members], dtype=np.int64)
    started = np.array([int(s.timestamp()) for _, _, s in members], dtype=np.int64)
    checked: dict[str, PatientOverride | None] = {}
    overrides: dict[int, PatientOverride] = {}
    for index, (patient_id, raw, _) in enumerate(members):
        if not raw or not raw.get("rules"):
            continue
        text = repr(sorted(raw.items()))
        if text not in checked:
            checked[text] = _valid_override(protocol, raw, patient_id)
        override = checked[text]
        if override is not None:
            overrides[index] = override
    return Enrolment(protocol, ids, overrides, started)


def _valid_override(protocol: Protocol, raw: Any, patient_id: int) -> PatientOverride | None:
    try:
        override = PatientOverride.model_validate(raw)
        apply_override(protocol, override)
    except (ValueError, ProtocolError) as exc:
        log.error(
            "patient %s: override of %s ignored, protocol defaults apply: %s",
            patient_id,
            protocol.key,
            exc,
        )
        return None
    return override


def window_query(
    metric: str, now: datetime, lookback: int, patient_ids: Sequence[int] | None
) -> sql.Composed:
    """The COPY of one metric's reliable readings in ``(now - lookback, now]``, by patient and
    time."""
    since = datetime.fromtimestamp(now.timestamp() - lookback, UTC)
    subset = (
        sql.SQL("AND o.patient_id = ANY({}::bigint[])").format(sql.Literal(list(patient_ids)))
        if patient_ids is not None
        else sql.SQL("")
    )
    return sql.SQL(
        """
        COPY (
            SELECT o.patient_id, o.measured_at, o.value
            FROM observations o
            WHERE o.metric_id = {metric} AND o.measured_at > {since} AND o.measured_at <= {now}
              AND NOT coalesce(o.flags && {unreliable}::text[], false)
              {subset}
            ORDER BY o.patient_id, o.measured_at
        ) TO STDOUT (FORMAT BINARY)
        """
    ).format(
        unreliable=sql.Literal(_UNRELIABLE),
        metric=sql.Literal(METRICS[metric].id),
        since=sql.Literal(since),
        now=sql.Literal(now),
        subset=subset,
    )


def latest_query(metric: str, before: datetime, patient_ids: Sequence[int]) -> sql.Composed:
    """The COPY of each patient's newest reliable reading at or before ``before``.

    One index probe per patient: only asked for patients whose window holds no reliable
    reading of a metric a missing_data rule watches.
    """
    return sql.SQL(
        """
        COPY (
            SELECT p.id, l.measured_at, l.value
            FROM unnest({ids}::bigint[]) AS p(id)
            CROSS JOIN LATERAL (
                SELECT o.measured_at, o.value FROM observations o
                WHERE o.patient_id = p.id AND o.metric_id = {metric}
                  AND o.measured_at <= {before}
                  AND NOT coalesce(o.flags && {unreliable}::text[], false)
                ORDER BY o.measured_at DESC LIMIT 1
            ) l
            ORDER BY p.id
        ) TO STDOUT (FORMAT BINARY)
        """
    ).format(
        ids=sql.Literal(list(patient_ids)),
        metric=sql.Literal(METRICS[metric].id),
        before=sql.Literal(before),
        unreliable=sql.Literal(_UNRELIABLE),
    )


def copy_out(conn: psycopg.Connection, query: sql.Composed) -> bytes:
    """The raw bytes of a ``COPY ... TO STDOUT``, read in the blocks libpq hands over."""
    with conn.cursor() as cur, cur.copy(query) as copy:
        return b"".join(bytes(block) for block in copy)


@dataclass(frozen=True, slots=True)
class Rows:
    patient: np.ndarray  # int64 patient ids
    t: np.ndarray  # int64 epoch seconds
    v: np.ndarray  # float64


def decode_rows(data: bytes) -> Rows:
    """Decode a binary COPY of (bigint, timestamptz, double precision) rows."""
    if not data.startswith(_SIGNATURE):
        raise ValueError("not a PostgreSQL binary COPY stream")
    extension = int.from_bytes(data[15:19], "big")
    start = 19 + extension
    body = len(data) - start - 2  # the trailer is a field count of -1
    if body < 0 or data[-2:] != b"\xff\xff" or body % _ROW.itemsize:
        raise ValueError("binary COPY stream of unexpected layout")
    rows = np.frombuffer(data, dtype=_ROW, count=body // _ROW.itemsize, offset=start)
    for name, expected in _EXPECTED.items():
        if rows.size and np.any(rows[name] != expected):
            raise ValueError(f"binary COPY rows of unexpected shape ({name} != {expected})")
    micros = rows["t"].astype(np.int64)
    return Rows(
        patient=rows["patient"].astype(np.int64),
        t=micros // 1_000_000 + _PG_EPOCH,
        v=rows["v"].astype(np.float64),
    )


def window_from_rows(rows: Rows, patient_ids: np.ndarray) -> MetricWindow:
    """Rows sorted by (patient, time) as a window over ``patient_ids`` (sorted); others dropped."""
    index = np.searchsorted(patient_ids, rows.patient)
    known = index < patient_ids.size
    known[known] = patient_ids[index[known]] == rows.patient[known]
    if not known.all():
        index, rows = index[known], Rows(*(a[known] for a in _fields(rows)))
    offsets = np.zeros(patient_ids.size + 1, np.int64)
    np.cumsum(np.bincount(index, minlength=patient_ids.size), out=offsets[1:])
    return MetricWindow(offsets, rows.t, rows.v)


def _fields(rows: Rows) -> tuple[np.ndarray, ...]:
    return rows.patient, rows.t, rows.v


def load_windows(
    conn: psycopg.Connection,
    patient_ids: np.ndarray,
    needs: Mapping[str, MetricNeed],
    now: datetime,
    *,
    everyone: bool = False,
) -> dict[str, MetricWindow]:
    """One window per metric over ``patient_ids`` (sorted ids); ``everyone`` skips the id filter.

    With ``everyone`` the query reads the metric for all patients and rows of patients not in
    ``patient_ids`` are dropped: cheaper than shipping a hundred thousand ids in the query.
    """
    subset = None if everyone else patient_ids.tolist()
    windows = {}
    for metric, need in needs.items():
        rows = decode_rows(copy_out(conn, window_query(metric, now, need.lookback, subset)))
        window = window_from_rows(rows, patient_ids)
        if need.latest:
            window = _with_latest(conn, metric, window, patient_ids, now, need.lookback)
        windows[metric] = window
    return windows


def _with_latest(
    conn: psycopg.Connection,
    metric: str,
    window: MetricWindow,
    patient_ids: np.ndarray,
    now: datetime,
    lookback: int,
) -> MetricWindow:
    without = np.flatnonzero(window.counts == 0)
    if without.size == 0:
        return window
    before = datetime.fromtimestamp(now.timestamp() - lookback, UTC)
    older = decode_rows(copy_out(conn, latest_query(metric, before, patient_ids[without].tolist())))
    if older.patient.size == 0:
        return window
    index = np.concatenate(
        (window.patient_of_reading(), np.searchsorted(patient_ids, older.patient))
    )
    return MetricWindow.from_arrays(
        index,
        np.concatenate((window.t, older.t)),
        np.concatenate((window.v, older.v)),
        n_patients=patient_ids.size,
    )


def take_patients(window: MetricWindow, index: np.ndarray) -> MetricWindow:
    """The window restricted to the patients at ``index`` (positions, in the new order)."""
    if index.size == window.n_patients and np.array_equal(index, np.arange(index.size)):
        return window
    offsets, gather = gather_slices(window.offsets[:-1][index], window.counts[index])
    return MetricWindow(offsets, window.t[gather], window.v[gather], window.reliable[gather])
