"""The GP's list at a glance: per patient the open episode, the latest value of each protocol
metric with its trend, adherence to the protocol's schedule, time since the last reading and the
GP's own tags; filtered and sorted by need.

A handful of queries for the whole list, whatever its length: the latest readings are found
through the hourly rollup (one index probe per patient and metric, then one hour of raw rows),
adherence is counted on the rollup's hours, never on raw readings.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg
from psycopg.rows import dict_row

from alerts.protocol import MissingDataRule, Protocol
from dashboard import report_stats, restrictions
from dashboard.authz import Principal, patient_scope
from dashboard.bands import effective_protocol
from dashboard.models import Adherence, LatestValue, PatientSummary
from dashboard.wording import language_of
from telemon.flags import UNRELIABLE_FLAGS
from telemon.metrics import METRICS, METRICS_BY_ID

# Days are counted in the cooperatives' local time (the pages' times are too).
LOCAL_TZ = ZoneInfo("Europe/Rome")
WINDOWS = (7, 30)
# The week a reading is compared with for its trend arrow.
TREND_BASELINE = timedelta(days=7)
Need = Literal["", "attention", "not_measuring"]

# How far a reading must be from its previous week's mean to earn an arrow: below these
# changes a metric is "steady" (about a measurement's own noise, in the metric's unit).
TREND_TOLERANCE: dict[str, float] = {
    "spo2": 1.5,
    "pulse_rate": 8.0,
    "systolic": 8.0,
    "diastolic": 5.0,
    "mean_arterial_pressure": 6.0,
    "glucose": 20.0,
    "body_temperature": 0.4,
    "body_weight": 1.0,
    "respiratory_rate": 3.0,
}


@dataclass(frozen=True, slots=True)
class Schedule:
    """What a protocol asks the patient to measure, and how often (its not-measuring rule)."""

    protocol: str
    metric: str
    every_seconds: int


def schedules(protocol: Protocol) -> list[Schedule]:
    return [
        Schedule(protocol.key, rule.metrics[0], rule.expected_every)
        for rule in protocol.rules
        if isinstance(rule, MissingDataRule) and rule.enabled and rule.expected_every
    ]


def protocol_metrics(protocols: Iterable[Protocol]) -> list[str]:
    """The metrics the protocols' rules read, in the catalogue's order."""
    read = {m for p in protocols for rule in p.rules for m in rule.metrics if m in METRICS}
    return [key for key in METRICS if key in read]


def trend_of(
    metric: str, latest: float, baseline: float | None
) -> Literal["up", "down", "steady"] | None:
    if baseline is None:
        return None
    change = latest - baseline
    if abs(change) < TREND_TOLERANCE.get(metric, 0.0):
        return "steady"
    return "up" if change > 0 else "down"


def need_rank(p: PatientSummary) -> tuple[int, int, float]:
    """Worst open clinical episode first (longest open first), then not measuring, then the rest."""
    if p.episode_id is not None and not p.task:
        return (
            0,
            -(p.severity or 0),
            p.episode_opened_at.timestamp() if p.episode_opened_at else 0,
        )
    if p.not_measuring or p.task:
        return (1, 0, 0.0)
    return (2, 0, 0.0)


def matches(p: PatientSummary, need: Need, protocol: str, tag: str) -> bool:
    if need == "attention" and (p.episode_id is None or p.task):
        return False
    if need == "not_measuring" and not (p.not_measuring or p.task):
        return False
    if protocol and protocol not in p.protocols:
        return False
    return not tag or tag in p.tags


_PATIENTS = """
SELECT p.id, p.code, p.given_name || ' ' || p.family_name AS name, g.display_name AS gp_name,
       coalesce((SELECT jsonb_agg(jsonb_build_array(pp.protocol, pp.overrides, pp.started_at)
                                  ORDER BY pp.protocol)
                 FROM patient_protocols pp
                 WHERE pp.patient_id = p.id AND pp.ended_at IS NULL), '[]') AS assigned,
       e.id AS episode_id, e.severity, e.opened_at AS episode_opened_at,
       coalesce(nm.open_tasks, 0) AS open_tasks, coalesce(nm.open_clinical, 0) AS open_clinical,
       coalesce((SELECT array_agg(t.tag ORDER BY t.tag) FROM patient_tags t
                 WHERE t.patient_id = p.id AND t.staff_id = %(me)s), '{{}}') AS tags
FROM patients p
JOIN staff g ON g.id = p.gp_id
LEFT JOIN episodes e ON e.patient_id = p.id AND e.state <> 'resolved'
-- A not-measuring finding the patient hid from the reader is not counted (it would say which
-- metric is missing); a hidden clinical one still makes the episode clinical, not a call task:
-- the episode shows as red or amber to everyone (restrictions.py), and hiding must not demote it.
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE a.kind = 'not_measuring' AND {shown}) AS open_tasks,
           count(*) FILTER (WHERE a.kind <> 'not_measuring') AS open_clinical
    FROM alerts a WHERE a.patient_id = p.id AND a.state <> 'resolved'
) nm ON true
WHERE p.discharged_at IS NULL AND {scope}
ORDER BY p.family_name, p.given_name, p.id
"""

# One probe of the rollup's primary key per (patient, metric) finds the newest hour with
# readings; the raw rows of that hour alone give the value (partition pruning keeps it to one
# partition); the week before it, from the rollup, is the trend's baseline.
_LATEST = """
SELECT w.patient_id, w.metric_id, last.bucket, r.measured_at, r.value, base.mean
FROM unnest(%(patients)s::bigint[], %(metrics)s::smallint[]) AS w(patient_id, metric_id)
CROSS JOIN LATERAL (
    SELECT h.bucket FROM observation_hourly h
    WHERE h.patient_id = w.patient_id AND h.metric_id = w.metric_id AND h.bucket > %(since)s
      AND {rollup}
    ORDER BY h.bucket DESC LIMIT 1
) last
LEFT JOIN LATERAL (
    SELECT o.measured_at, o.value FROM observations o
    WHERE o.patient_id = w.patient_id AND o.metric_id = w.metric_id
      AND o.measured_at >= last.bucket AND o.measured_at < last.bucket + interval '1 hour'
      AND NOT coalesce(o.flags && %(unreliable)s, false) AND {readings}
    ORDER BY o.measured_at DESC LIMIT 1
) r ON true
LEFT JOIN LATERAL (
    SELECT sum(h.mean * h.count) / nullif(sum(h.count), 0) AS mean FROM observation_hourly h
    WHERE h.patient_id = w.patient_id AND h.metric_id = w.metric_id
      AND h.bucket >= last.bucket - %(baseline)s AND h.bucket < last.bucket AND {rollup}
) base ON true
"""

# One index range scan of the rollup per (patient, metric): a join would scan the whole month.
_DAYS = """
SELECT w.patient_id, w.metric_id, d.days
FROM unnest(%(patients)s::bigint[], %(metrics)s::smallint[]) AS w(patient_id, metric_id)
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(DISTINCT (h.bucket AT TIME ZONE %(tz)s)::date), '{{}}') AS days
    FROM observation_hourly h
    WHERE h.patient_id = w.patient_id AND h.metric_id = w.metric_id
      AND h.bucket >= %(since)s AND h.bucket <= %(now)s AND {rollup}
) d
"""


def _local_day(at: datetime) -> date:
    return at.astimezone(LOCAL_TZ).date()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), LOCAL_TZ)


def latest(
    conn: psycopg.Connection,
    pairs: Sequence[tuple[int, str]],
    *,
    reader: Principal,
    now: datetime,
    language: str,
    within_days: int = 30,
) -> tuple[dict[int, list[LatestValue]], dict[int, datetime]]:
    """The newest reliable value of each (patient, metric) with its trend, and each patient's
    newest reading of any of them (ids already scoped by the caller), among the readings the
    patients did not hide from ``reader``."""
    values: dict[int, list[LatestValue]] = {}
    newest: dict[int, datetime] = {}
    if not pairs:
        return values, newest
    lang = language_of(language)
    rows = conn.execute(
        _LATEST.format(
            rollup=restrictions.rollup_visible(reader, "h"),
            readings=restrictions.readings_visible(reader, "o"),
        ),
        {
            "patients": [p for p, _ in pairs],
            "metrics": [METRICS[m].id for _, m in pairs],
            "since": now - timedelta(days=within_days),
            "unreliable": list(UNRELIABLE_FLAGS),
            "baseline": TREND_BASELINE,
        },
    ).fetchall()
    for patient_id, metric_id, bucket, measured_at, amount, baseline in rows:
        seen = measured_at or bucket
        newest[patient_id] = max(newest.get(patient_id, seen), seen)
        metric = METRICS_BY_ID[metric_id]
        if measured_at is None:
            continue  # that hour held only unreliable readings
        values.setdefault(patient_id, []).append(
            LatestValue(
                metric=metric.key,
                value=amount,
                unit=metric.unit,
                display_unit=metric.display_unit(lang),
                measured_at=measured_at,
                trend=trend_of(metric.key, amount, baseline),
            )
        )
    order = {key: i for i, key in enumerate(METRICS)}
    for items in values.values():
        items.sort(key=lambda v: order[v.metric])
    return values, newest


def adherence(
    conn: psycopg.Connection,
    due: Sequence[tuple[int, Schedule, datetime]],
    *,
    reader: Principal,
    now: datetime,
) -> dict[int, list[Adherence]]:
    """Days with readings in the last 7 and 30 local days (today included; a schedule sparser
    than daily: its stretches), per patient and schedule, against those the schedule asked for
    since the protocol started."""
    if not due:
        return {}
    today = _local_day(now)
    first = today - timedelta(days=max(WINDOWS) - 1)
    found = {
        (patient_id, metric_id): set(days)
        for patient_id, metric_id, days in conn.execute(
            _DAYS.format(rollup=restrictions.rollup_visible(reader, "h")),
            {
                "tz": LOCAL_TZ.key,
                "patients": [p for p, _, _ in due],
                "metrics": [METRICS[s.metric].id for _, s, _ in due],
                "since": _day_start(first),
                "now": now,
            },
        )
    }
    out: dict[int, list[Adherence]] = {}
    for patient_id, schedule, started_at in due:
        days = found.get((patient_id, METRICS[schedule.metric].id), set())
        started = _local_day(started_at)
        counts = {}
        for window in WINDOWS:
            # The report's count (report_stats.adherence), over the window since the start:
            # a weekly series is one stretch in 7 days, 4 in 30, none yet in its first 6 days.
            kept = report_stats.adherence(
                days,
                first=max(today - timedelta(days=window - 1), started),
                last=today,
                every_hours=schedule.every_seconds / 3600,
            )
            counts[window] = (kept.days_with_readings, kept.days_expected)
        out.setdefault(patient_id, []).append(
            Adherence(
                protocol=schedule.protocol,
                metric=schedule.metric,
                every_hours=schedule.every_seconds / 3600,
                days_7=counts[7][0],
                expected_7=counts[7][1],
                days_30=counts[30][0],
                expected_30=counts[30][1],
            )
        )
    return out


PER_PAGE = 50
MAX_PER_PAGE = 500


@dataclass(frozen=True, slots=True)
class PatientPage:
    """One page of the list: the patients on it, and where it lies among all that matched."""

    patients: list[PatientSummary]
    total: int  # patients matching the filters, on every page
    page: int  # 1-based
    per_page: int

    @property
    def pages(self) -> int:
        return max(math.ceil(self.total / self.per_page), 1)

    @property
    def first(self) -> int:
        """The 1-based position of the page's first patient (0 when nothing matched)."""
        return (self.page - 1) * self.per_page + 1 if self.patients else 0

    @property
    def last(self) -> int:
        return self.first + len(self.patients) - 1 if self.patients else 0


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What the reader asked of the list: its filters and the page."""

    need: Need = ""
    protocol: str = ""
    tag: str = ""
    page: int = 1
    per_page: int = PER_PAGE


def patient_list(
    conn: psycopg.Connection,
    user: Principal,
    *,
    now: datetime,
    query: ListQuery = ListQuery(),
) -> PatientPage:
    """Patients in scope at a glance, filtered, the most in need first, one page of them.

    The order and the filters need only the patients' own rows (their episode, tasks, protocols
    and tags): every patient in scope is ranked, and the latest values and adherence, which cost
    a rollup probe per patient and metric, are read for the page's patients alone."""
    scope, params = patient_scope(user)
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            _PATIENTS.format(scope=scope, shown=restrictions.finding_visible(user)),
            params | {"me": user.id},
        )
        .fetchall()
    )
    # A protocol or metric the patient hid from the reader: not listed, not filtered on.
    hidden = restrictions.hidden_by_patient(conn, user, [row["id"] for row in rows])
    ranked = []
    for row in rows:
        hidden_protocols, _ = hidden.get(row["id"], (set(), set()))
        row["assigned"] = [a for a in row["assigned"] if a[0] not in hidden_protocols]
        summary = PatientSummary(
            id=row["id"],
            code=row["code"],
            name=row["name"],
            gp_name=row["gp_name"],
            protocols=[name for name, _, _ in row["assigned"]],
            episode_id=row["episode_id"],
            severity=row["severity"],
            episode_opened_at=row["episode_opened_at"],
            task=row["episode_id"] is not None and row["open_clinical"] == 0,
            not_measuring=row["open_tasks"] > 0,
            latest=[],
            tags=row["tags"],
        )
        if matches(summary, query.need, query.protocol, query.tag):
            ranked.append((summary, row["assigned"]))
    ranked.sort(key=lambda found: need_rank(found[0]))
    per_page = min(max(query.per_page, 1), MAX_PER_PAGE)
    page = min(max(query.page, 1), max(math.ceil(len(ranked) / per_page), 1))
    shown = ranked[(page - 1) * per_page : page * per_page]

    pairs: list[tuple[int, str]] = []
    due: list[tuple[int, Schedule, datetime]] = []
    for summary, assignments in shown:
        assigned = []
        for name, overrides, started_at in assignments:
            found = effective_protocol(name, overrides)
            if found is not None:
                assigned.append(found)
                started = datetime.fromisoformat(started_at)
                due += [(summary.id, s, started) for s in schedules(found)]
        _, hidden_metrics = hidden.get(summary.id, (set(), set()))
        pairs += [(summary.id, m) for m in protocol_metrics(assigned) if m not in hidden_metrics]
        due = [d for d in due if d[0] != summary.id or d[1].metric not in hidden_metrics]
    values, newest = latest(conn, pairs, reader=user, now=now, language=user.language)
    kept = adherence(conn, due, reader=user, now=now)
    return PatientPage(
        patients=[
            summary.model_copy(
                update={
                    "latest": values.get(summary.id, []),
                    "last_reading_at": newest.get(summary.id),
                    "adherence": kept.get(summary.id, []),
                }
            )
            for summary, _ in shown
        ],
        total=len(ranked),
        page=page,
        per_page=per_page,
    )
