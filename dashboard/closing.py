"""The closing report's own content: what the discharge adds to the period report over the
whole monitoring span (reason, duration, outcomes). ``gather`` reads it, the rest is pure.

The report itself is ``dashboard.report`` over ``span``; ``dashboard.period_reports.close``
freezes the two together at discharge.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

import psycopg

from dashboard import report
from dashboard.web import LOCAL_TZ
from telemon.flags import UNRELIABLE_FLAGS
from telemon.metrics import METRICS, METRICS_BY_ID

# How an episode ended, in the order the report lists them: the discharge itself, a nurse's
# call outcome, the readings clearing (the engine), a clinician resolving it, still open.
ENDINGS = (
    "discharge",
    "sent_to_emergency",
    "advised",
    "reached",
    "not_reached",
    "auto_resolved",
    "resolved",
    "open",
)
SEVERITIES = (2, 1)  # red, then amber


@dataclass(frozen=True, slots=True)
class Outcome:
    """The episodes of one severity over the span, and how many ended each way."""

    severity: int
    count: int
    endings: list[tuple[str, int]]  # (a key of ENDINGS, how many), in ENDINGS' order


@dataclass(frozen=True, slots=True)
class LastValue:
    metric: str
    at: datetime
    value: float


@dataclass(frozen=True, slots=True)
class Closing:
    reason: str
    enrolled_on: date
    discharged_on: date
    days: int  # whole local days monitored, both ends included (as the report's period)
    outcomes: list[Outcome]
    adherence: list[report.Scheduled]
    last_values: list[LastValue]


def span(enrolled_at: datetime, discharged_on: date) -> report.Period:
    """Enrolment's local day to the discharge date (a back-dated discharge never ends first)."""
    first = enrolled_at.astimezone(LOCAL_TZ).date()
    return report.Period(min(first, discharged_on), discharged_on)


def ending(episode: report.EpisodeEntry, discharged_at: datetime) -> str:
    """How one episode ended: the discharge resolved it, or its outcome, or a clinician."""
    if episode.resolved_at is None:
        return "open"
    if episode.resolved_at == discharged_at:
        return "discharge"
    if episode.outcome in ENDINGS:
        return episode.outcome
    return "resolved"


def outcomes(episodes: Iterable[report.EpisodeEntry], discharged_at: datetime) -> list[Outcome]:
    by_severity: dict[int, Counter[str]] = {s: Counter() for s in SEVERITIES}
    for e in episodes:
        by_severity.setdefault(e.severity, Counter())[ending(e, discharged_at)] += 1
    return [
        Outcome(
            severity,
            sum(counts.values()),
            [(k, counts[k]) for k in ENDINGS if counts[k]],
        )
        for severity, counts in by_severity.items()
    ]


def last_values(
    conn: psycopg.Connection, patient_id: int, period: report.Period
) -> list[LastValue]:
    """Each metric's last reliable reading in the span (flagged readings left out)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (metric_id) metric_id, measured_at, value FROM observations "
        "WHERE patient_id = %s AND measured_at >= %s AND measured_at < %s "
        "AND NOT coalesce(flags && %s, false) ORDER BY metric_id, measured_at DESC",
        (patient_id, period.start, period.end, list(UNRELIABLE_FLAGS)),
    ).fetchall()
    found = {
        METRICS_BY_ID[m].key: LastValue(METRICS_BY_ID[m].key, at, v)
        for m, at, v in rows
        if m in METRICS_BY_ID
    }
    return [found[k] for k in METRICS if k in found]  # the catalogue's order


def gather(
    conn: psycopg.Connection,
    content: report.PeriodReport,
    *,
    reason: str,
    enrolled_at: datetime,
    discharged_at: datetime,
) -> Closing:
    """The closing section of ``content``, the report built over the monitoring span."""
    period = content.period
    return Closing(
        reason=reason,
        enrolled_on=enrolled_at.astimezone(LOCAL_TZ).date(),
        discharged_on=period.last,
        days=period.days,
        outcomes=outcomes(content.episodes, discharged_at),
        adherence=[s for p in content.plan for s in p.schedule],
        last_values=last_values(conn, content.patient_id, period),
    )
