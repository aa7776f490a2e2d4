"""Reads of clinical data, always filtered through ``authz.patient_scope``, and the rows the
patient asked to hide (``restrictions.visible``) left out for everyone but their GP.

Callers have already checked the permission; these functions only ever see the rows in scope.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row

from dashboard.authz import Principal, patient_scope
from dashboard.bands import bands_for_patient
from dashboard.models import (
    Device,
    EpisodeEvent,
    EpisodeItem,
    FindingItem,
    Gateway,
    PatientDetail,
    Point,
    ProtocolAssignment,
    Series,
)
from dashboard.restrictions import (
    finding_visible,
    hidden_metrics,
    readings_visible,
    rollup_visible,
    visible,
)
from dashboard.wording import language_of, reason_text, title_of
from telemon.findings import evidence_in
from telemon.flags import UNRELIABLE_FLAGS
from telemon.metrics import METRICS, METRICS_BY_ID
from telemon.time_correction import TimeCorrection

_EPISODE_SELECT = """
SELECT e.id, e.patient_id, p.code AS patient_code,
       p.given_name || ' ' || p.family_name AS patient_name,
       g.display_name AS gp_name, e.severity, e.state, e.opened_at, e.updated_at,
       c.display_name AS claimed_by, e.claimed_at, k.display_name AS acknowledged_by,
       e.acknowledged_at, e.snoozed_until, e.escalated_at, e.outcome, e.resolution_note,
       e.resolved_at
FROM episodes e
JOIN patients p ON p.id = e.patient_id
JOIN staff g ON g.id = p.gp_id
LEFT JOIN staff c ON c.id = e.claimed_by
LEFT JOIN staff k ON k.id = e.acknowledged_by
"""

_FINDING_SELECT = """
SELECT a.id, a.episode_id, a.patient_id, a.protocol, a.rule, a.kind, a.severity, a.state,
       a.metric_id, a.trigger_value, a.details::text AS details, a.opened_at, a.resolved_at,
       a.resolution_note{reading_time}{shown}
FROM alerts a
JOIN patients p ON p.id = a.patient_id
"""
# The reading's time record (issue 19), found by the patient/metric/time index: for the pages
# that show one episode or finding in detail, not for every row of a queue. The engine keeps the
# reading's time to the second; the reading may have a fraction.
_READING_TIME = """,
       (SELECT o.time_correction FROM observations o
        WHERE o.patient_id = a.patient_id AND o.metric_id = a.metric_id
          AND o.measured_at >= (a.details->>'reading_at')::timestamptz
          AND o.measured_at < (a.details->>'reading_at')::timestamptz + interval '1 second'
        ORDER BY o.measured_at, o.received_at DESC NULLS LAST LIMIT 1) AS reading_time"""


def _finding_select(*, reading_times: bool, shown: str | None = None) -> str:
    """The findings' SELECT; ``shown``: an SQL predicate read as the column ``shown``."""
    return _FINDING_SELECT.format(
        reading_time=_READING_TIME if reading_times else "",
        shown=f",\n       ({shown}) AS shown" if shown is not None else "",
    )


def _dicts(conn: psycopg.Connection, query: str, params: dict[str, object]) -> list[DictRow]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


def finding_reason(
    protocol: str,
    rule: str,
    details: Mapping[str, Any],
    language: str,
    metric: str | None = None,
    value: float | None = None,
) -> str:
    """A finding's reason in words, for every page, list and API item that shows one: from its
    evidence, else its rule's title, in the reader's language; never a key."""
    return reason_text(evidence_in(details), protocol, rule, metric, value, language)


@functools.lru_cache(maxsize=8192)
def _finding_words(
    protocol: str, rule: str, details: str, language: str, metric: str | None, value: float | None
) -> tuple[str, str | None]:
    """A finding's reason and its rule's title, from the stored details as text: pure, and the
    same findings are shown again at every refresh of every nurse's queue, so it is kept."""
    return (
        finding_reason(protocol, rule, json.loads(details), language, metric, value),
        title_of(protocol, rule, language),
    )


def _finding(row: dict[str, Any], language: str) -> FindingItem:
    row = dict(row)
    stored = row.pop("details") or "{}"
    details = json.loads(stored)
    time = time_record(row.pop("reading_time", None))
    metric = METRICS_BY_ID.get(row.pop("metric_id"))
    value = row.pop("trigger_value")
    reading_at = details.get("reading_at")
    lang = language_of(language)
    reason, rule_title = _finding_words(
        row["protocol"], row["rule"], stored, lang, metric.key if metric else None, value
    )
    return FindingItem(
        **row,
        reason=reason,
        rule_title=rule_title,
        metric=metric.key if metric else None,
        value=value,
        unit=metric.unit if metric else None,
        display_unit=metric.display_unit(lang) if metric else None,
        evidence=details.get("evidence"),
        reading_at=datetime.fromisoformat(reading_at) if reading_at else None,
        reading_time=time,
    )


def time_record(stored: object) -> TimeCorrection | None:
    """The stored record, or None if there is none or it is not one this version reads: a
    reading's details must show even when its time note cannot."""
    if stored is None:
        return None
    try:
        return TimeCorrection.from_wire(stored)
    except ValueError:
        return None


def _waiting_since(row: dict[str, Any], opened: list[datetime]) -> datetime:
    """Since when the episode has waited for someone: its oldest open finding (``opened``: when
    each opened) that nobody has acknowledged (one that joined after an acknowledgement has not
    been seen), else its opening."""
    seen = row["acknowledged_at"]
    # The engine stamps whole seconds: a finding of the acknowledgement's own second counts as
    # not seen, rather than one opened just after it as seen.
    seen = seen.replace(microsecond=0) if seen else None
    unseen = [at for at in opened if seen is None or at >= seen]
    return min(unseen, default=row["opened_at"])


@dataclass(slots=True)
class _Found:
    """An episode's row and its findings' rows as read, before any model is built."""

    row: dict[str, Any]
    findings: list[dict[str, Any]] = field(default_factory=list)
    withheld: int = 0

    @property
    def open(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f["state"] == "open"]

    @property
    def task(self) -> bool:
        current = self.open
        return bool(current) and all(f["kind"] == "not_measuring" for f in current)

    @property
    def waiting_since(self) -> datetime:
        return _waiting_since(self.row, [f["opened_at"] for f in self.open])


def _read_episodes(
    conn: psycopg.Connection,
    user: Principal,
    where: str,
    params: dict[str, object],
    *,
    open_findings_only: bool,
    reading_times: bool,
) -> list[_Found]:
    scope, scope_params = patient_scope(user)
    rows = _dicts(conn, f"{_EPISODE_SELECT} WHERE {where} AND {scope}", scope_params | params)
    if not rows:
        return []
    found = {row["id"]: _Found(dict(row)) for row in rows}
    # Hidden findings are counted, not shown: the episode stays (it may be red), the reader
    # calls the GP (restrictions.py).
    select = _finding_select(reading_times=reading_times, shown=finding_visible(user))
    for f in _dicts(
        conn,
        f"{select} WHERE a.episode_id = ANY(%(episodes)s) "
        "ORDER BY a.state = 'resolved', a.severity DESC, a.opened_at, a.id",
        {"episodes": list(found)},
    ):
        episode = found[f["episode_id"]]
        if not f.pop("shown"):
            if not open_findings_only or f["state"] == "open":
                episode.withheld += 1
            continue
        episode.findings.append(dict(f))
    return list(found.values())


def _episode_item(found: _Found, user: Principal, *, open_findings_only: bool) -> EpisodeItem:
    findings = [_finding(f, user.language) for f in found.findings]
    current = [f for f in findings if f.state == "open"]
    worst = (current or findings)[0] if findings else None
    return EpisodeItem(
        **found.row,
        reason=worst.reason if worst else "",
        task=found.task,
        waiting_since=found.waiting_since,
        findings=current if open_findings_only else findings,
        withheld=found.withheld,
    )


def _episodes(
    conn: psycopg.Connection,
    user: Principal,
    where: str,
    params: dict[str, object],
    *,
    open_findings_only: bool,
    reading_times: bool = False,
) -> list[EpisodeItem]:
    return [
        _episode_item(found, user, open_findings_only=open_findings_only)
        for found in _read_episodes(
            conn,
            user,
            where,
            params,
            open_findings_only=open_findings_only,
            reading_times=reading_times,
        )
    ]


def _queue_order(found: _Found) -> tuple[int, datetime, int]:
    """Red before amber, then the longest waiting."""
    return (-found.row["severity"], found.waiting_since, found.row["id"])


def triage_queue(conn: psycopg.Connection, user: Principal) -> list[EpisodeItem]:
    """Open episodes in scope, one per patient: red before amber, then the longest waiting."""
    queue = _read_episodes(
        conn, user, "e.state <> 'resolved'", {}, open_findings_only=True, reading_times=False
    )
    return [
        _episode_item(found, user, open_findings_only=True)
        for found in sorted(queue, key=_queue_order)
    ]


QUEUE_PAGE = 50


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of the triage queue: its clinical episodes and its tasks (episodes of missing
    readings only), each list paged alike, with how many each holds in all."""

    clinical: list[EpisodeItem]
    tasks: list[EpisodeItem]
    clinical_total: int
    tasks_total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        longest = max(self.clinical_total, self.tasks_total)
        return max(math.ceil(longest / self.per_page), 1)


def triage_page(
    conn: psycopg.Connection, user: Principal, *, page: int = 1, per_page: int = QUEUE_PAGE
) -> QueuePage:
    """The queue a page at a time. Every open episode in scope is ordered on its rows as read;
    the findings' reasons and the models are made for the page's episodes alone."""
    queue = sorted(
        _read_episodes(
            conn, user, "e.state <> 'resolved'", {}, open_findings_only=True, reading_times=False
        ),
        key=_queue_order,
    )
    clinical = [found for found in queue if not found.task]
    tasks = [found for found in queue if found.task]
    per_page = max(per_page, 1)
    longest = max(len(clinical), len(tasks))
    page = min(max(page, 1), max(math.ceil(longest / per_page), 1))
    shown = slice((page - 1) * per_page, page * per_page)
    return QueuePage(
        clinical=[_episode_item(f, user, open_findings_only=True) for f in clinical[shown]],
        tasks=[_episode_item(f, user, open_findings_only=True) for f in tasks[shown]],
        clinical_total=len(clinical),
        tasks_total=len(tasks),
        page=page,
        per_page=per_page,
    )


def episode(conn: psycopg.Connection, user: Principal, episode_id: int) -> EpisodeItem | None:
    found = _episodes(
        conn,
        user,
        "e.id = %(episode)s",
        {"episode": episode_id},
        open_findings_only=False,
        reading_times=True,
    )
    return found[0] if found else None


def patient_episodes(
    conn: psycopg.Connection, user: Principal, patient_id: int, limit: int = 100
) -> list[EpisodeItem]:
    """The patient's episodes, newest first, each with all its findings."""
    found = _episodes(
        conn,
        user,
        "e.patient_id = %(patient)s",
        {"patient": patient_id},
        open_findings_only=False,
    )
    return sorted(found, key=lambda e: e.opened_at, reverse=True)[:limit]


def findings_without_episode(
    conn: psycopg.Connection, user: Principal, patient_id: int, limit: int = 100
) -> list[FindingItem]:
    """The patient's findings from before episodes that no episode adopted (all resolved)."""
    scope, params = patient_scope(user)
    rows = _dicts(
        conn,
        f"{_finding_select(reading_times=False)} WHERE a.patient_id = %(patient)s "
        "AND a.episode_id IS NULL "
        f"AND {scope} AND {finding_visible(user)} "
        "ORDER BY a.opened_at DESC, a.id DESC LIMIT %(limit)s",
        params | {"patient": patient_id, "limit": limit},
    )
    return [_finding(r, user.language) for r in rows]


def finding(conn: psycopg.Connection, user: Principal, alert_id: int) -> FindingItem | None:
    scope, params = patient_scope(user)
    rows = _dicts(
        conn,
        f"{_finding_select(reading_times=True)} WHERE a.id = %(alert)s AND {scope} "
        f"AND {finding_visible(user)}",
        params | {"alert": alert_id},
    )
    return _finding(rows[0], user.language) if rows else None


def events(
    conn: psycopg.Connection,
    user: Principal,
    *,
    episode_id: int | None = None,
    alert_id: int | None = None,
) -> list[EpisodeEvent]:
    """An episode's events merged with its findings' in time order (or one finding's alone)."""
    scope, params = patient_scope(user)
    rows = _dicts(
        conn,
        f"""
        SELECT at, kind, actor, from_state, to_state, note, alert_id, rule FROM (
            SELECT e.at, e.kind, s.display_name AS actor, e.from_state, e.to_state, e.note,
                   e.alert_id, a.rule, 0 AS source, e.id
            FROM episode_events e
            JOIN episodes ep ON ep.id = e.episode_id
            JOIN patients p ON p.id = ep.patient_id
            LEFT JOIN alerts a ON a.id = e.alert_id
            LEFT JOIN staff s ON s.id = e.actor_id
            WHERE e.episode_id = %(episode)s AND {scope} AND {finding_visible(user)}
            UNION ALL
            SELECT e.at, e.kind, s.display_name, e.from_state, e.to_state, e.note,
                   e.alert_id, a.rule, 1, e.id
            FROM alert_events e
            JOIN alerts a ON a.id = e.alert_id
            JOIN patients p ON p.id = a.patient_id
            LEFT JOIN staff s ON s.id = e.actor_id
            WHERE (a.episode_id = %(episode)s OR a.id = %(alert)s) AND {scope}
              AND {finding_visible(user)}
        ) merged
        ORDER BY at, source, id
        """,
        params | {"episode": episode_id, "alert": alert_id},
    )
    return [EpisodeEvent(**r) for r in rows]


def patient_detail(
    conn: psycopg.Connection, user: Principal, patient_id: int
) -> PatientDetail | None:
    scope, params = patient_scope(user)
    rows = _dicts(
        conn,
        f"""
        SELECT p.id, p.code, p.given_name, p.family_name, p.birth_date::text AS birth_date,
               p.sex, p.phone, g.display_name AS gp_name, p.enrolled_at
        FROM patients p JOIN staff g ON g.id = p.gp_id
        WHERE p.id = %(patient)s AND {scope}
        """,
        params | {"patient": patient_id},
    )
    if not rows:
        return None
    protocols = [
        ProtocolAssignment(**r)
        for r in _dicts(
            conn,
            "SELECT protocol, overrides, started_at FROM patient_protocols "
            "WHERE patient_id = %(patient)s AND ended_at IS NULL "
            f"AND {visible(user, patient='patient_id', protocol='protocol')} ORDER BY protocol",
            {"patient": patient_id},
        )
    ]
    gateways = []
    for g in _dicts(
        conn,
        "SELECT id, code, online, last_seen_at, offline_since, outbox_depth FROM gateways "
        "WHERE patient_id = %(patient)s ORDER BY code",
        {"patient": patient_id},
    ):
        devices = _dicts(
            conn,
            "SELECT id, kind, manufacturer, model, battery_pct, last_seen_at FROM devices "
            "WHERE gateway_id = %(gateway)s AND unpaired_at IS NULL ORDER BY kind",
            {"gateway": g["id"]},
        )
        gateways.append(Gateway(**g, devices=[Device(**d) for d in devices]))
    return PatientDetail(**rows[0], protocols=protocols, gateways=gateways)


# Raw readings up to a week; longer windows are drawn from the hourly rollup, re-binned so a
# chart stays a few hundred points (the rollup holds every reading, flagged ones included).
_BUCKET_HOURS = {7: 0, 30: 4, 90: 12}


def series(
    conn: psycopg.Connection,
    user: Principal | None,
    patient_id: int,
    metric_key: str,
    days: int,
    *,
    now: datetime,
    language: str = "en",
) -> Series:
    """Readings of one metric (caller has checked access) that ``user`` may see; unreliable
    ones are marked."""
    metric = METRICS[metric_key]
    since = now - timedelta(days=days)
    bucket = _BUCKET_HOURS.get(days, 12)
    if bucket == 0:
        rows = conn.execute(
            "SELECT measured_at, value, NOT coalesce(flags && %s, false) FROM observations o "
            "WHERE patient_id = %s AND metric_id = %s AND measured_at > %s AND measured_at <= %s "
            f"AND {readings_visible(user)} ORDER BY measured_at",
            (list(UNRELIABLE_FLAGS), patient_id, metric.id, since, now),
        ).fetchall()
        points = [Point(at=at, value=v, reliable=ok) for at, v, ok in rows]
    else:
        rows = conn.execute(
            "SELECT date_bin(make_interval(hours => %s), bucket, %s) AS b, "
            "sum(mean * count) / sum(count), min(min), max(max) FROM observation_hourly h "
            "WHERE patient_id = %s AND metric_id = %s AND bucket >= %s AND bucket <= %s "
            f"AND {rollup_visible(user)} GROUP BY b ORDER BY b",
            (bucket, since, patient_id, metric.id, since, now),
        ).fetchall()
        points = [Point(at=at, value=v, low=lo, high=hi) for at, v, lo, hi in rows]
    return Series(
        metric=metric.key,
        label=metric.label(language_of(language)),
        unit=metric.unit,
        display_unit=metric.display_unit(language_of(language)),
        days=days,
        aggregated=bucket != 0,
        points=points,
        bands=bands_for_patient(conn, patient_id, language).get(metric.key, []),
    )


def charted_metrics(
    conn: psycopg.Connection, user: Principal, patient_id: int, *, now: datetime
) -> list[str]:
    """Metrics worth a chart: measured in the last 90 days or watched by a protocol band;
    none the patient hid from ``user`` altogether (a chart's title would tell)."""
    measured = {
        METRICS_BY_ID[r[0]].key
        for r in conn.execute(
            "SELECT DISTINCT metric_id FROM observation_hourly h WHERE patient_id = %s "
            f"AND bucket > %s AND {rollup_visible(user)}",
            (patient_id, now - timedelta(days=90)),
        )
        if r[0] in METRICS_BY_ID
    }
    watched = set(bands_for_patient(conn, patient_id)) - hidden_metrics(conn, user, patient_id)
    return [key for key in METRICS if key in measured | watched]
