"""Reads of clinical data, always filtered through ``authz.patient_scope``.

Callers have already checked the permission; these functions only ever see the rows in scope.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from dashboard.authz import Principal, patient_scope
from dashboard.bands import bands_for_patient
from dashboard.models import (
    AlertEvent,
    AlertItem,
    Device,
    Gateway,
    LatestValue,
    PatientDetail,
    PatientSummary,
    Point,
    ProtocolAssignment,
    Series,
)
from dashboard.wording import language_of, reason_text, title_of
from telemon.findings import evidence_in
from telemon.flags import UNRELIABLE_FLAGS
from telemon.metrics import METRICS, METRICS_BY_ID

_ALERT_SELECT = """
SELECT a.id, a.patient_id, p.code AS patient_code,
       p.given_name || ' ' || p.family_name AS patient_name,
       g.display_name AS gp_name, a.protocol, a.rule, a.kind, a.severity, a.state,
       a.opened_at, a.updated_at, m.key AS metric, a.trigger_value, a.reason,
       c.display_name AS claimed_by, a.claimed_at, a.outcome, a.resolution_note, a.resolved_at,
       a.details
FROM alerts a
JOIN patients p ON p.id = a.patient_id
JOIN staff g ON g.id = p.gp_id
LEFT JOIN staff c ON c.id = a.claimed_by
LEFT JOIN metrics m ON m.id = a.metric_id
"""


def _alert_item(row: dict, language: str) -> AlertItem:
    """An alert row as a page and the API give it: with its reason in the reader's words."""
    evidence = evidence_in(row.pop("details"))
    protocol, rule = row["protocol"], row["rule"]
    return AlertItem(
        **row,
        evidence=evidence,
        rule_title=title_of(protocol, rule, language),
        reason_text=reason_text(
            evidence, protocol, rule, row["metric"], row["trigger_value"], language
        ),
    )


def _dicts(conn: psycopg.Connection, query: str, params: dict[str, object]) -> list[dict]:
    return conn.cursor(row_factory=dict_row).execute(query, params).fetchall()


def triage_queue(conn: psycopg.Connection, user: Principal) -> list[AlertItem]:
    """Unresolved alerts in scope: red before amber, then the longest waiting first."""
    scope, params = patient_scope(user)
    rows = _dicts(
        conn,
        f"{_ALERT_SELECT} WHERE a.state <> 'resolved' AND {scope} "
        "ORDER BY a.severity DESC, a.opened_at, a.id",
        params,
    )
    return [_alert_item(r, user.language) for r in rows]


def alert(conn: psycopg.Connection, user: Principal, alert_id: int) -> AlertItem | None:
    scope, params = patient_scope(user)
    rows = _dicts(
        conn, f"{_ALERT_SELECT} WHERE a.id = %(alert)s AND {scope}", params | {"alert": alert_id}
    )
    return _alert_item(rows[0], user.language) if rows else None


def patient_alerts(
    conn: psycopg.Connection, user: Principal, patient_id: int, limit: int = 100
) -> list[AlertItem]:
    scope, params = patient_scope(user)
    rows = _dicts(
        conn,
        f"{_ALERT_SELECT} WHERE a.patient_id = %(patient)s AND {scope} "
        "ORDER BY a.opened_at DESC LIMIT %(limit)s",
        params | {"patient": patient_id, "limit": limit},
    )
    return [_alert_item(r, user.language) for r in rows]


def alert_events(conn: psycopg.Connection, user: Principal, alert_id: int) -> list[AlertEvent]:
    scope, params = patient_scope(user)
    rows = _dicts(
        conn,
        f"""
        SELECT e.at, e.kind, s.display_name AS actor, e.from_state, e.to_state, e.note
        FROM alert_events e
        JOIN alerts a ON a.id = e.alert_id
        JOIN patients p ON p.id = a.patient_id
        LEFT JOIN staff s ON s.id = e.actor_id
        WHERE e.alert_id = %(alert)s AND {scope}
        ORDER BY e.at, e.id
        """,
        params | {"alert": alert_id},
    )
    return [AlertEvent(**r) for r in rows]


def patient_list(conn: psycopg.Connection, user: Principal) -> list[PatientSummary]:
    """Patients in scope, those who need attention first (red, then amber, oldest alert)."""
    scope, params = patient_scope(user)
    rows = _dicts(
        conn,
        f"""
        SELECT p.id, p.code, p.given_name || ' ' || p.family_name AS name,
               g.display_name AS gp_name,
               coalesce((SELECT array_agg(pp.protocol ORDER BY pp.protocol)
                         FROM patient_protocols pp
                         WHERE pp.patient_id = p.id AND pp.ended_at IS NULL), '{{}}') AS protocols,
               count(a.id) AS open_alerts, max(a.severity) AS max_severity,
               min(a.opened_at) AS oldest_alert_at
        FROM patients p
        JOIN staff g ON g.id = p.gp_id
        LEFT JOIN alerts a ON a.patient_id = p.id AND a.state <> 'resolved'
        WHERE p.discharged_at IS NULL AND {scope}
        GROUP BY p.id, g.display_name
        ORDER BY max(a.severity) DESC NULLS LAST, min(a.opened_at), p.family_name, p.given_name
        """,
        params,
    )
    latest = latest_values(conn, [r["id"] for r in rows], language=user.language)
    return [PatientSummary(**r, latest=latest.get(r["id"], [])) for r in rows]


def latest_values(
    conn: psycopg.Connection, patient_ids: list[int], within_days: int = 30, *, language: str = "en"
) -> dict[int, list[LatestValue]]:
    """The newest reliable value of each metric per patient (ids already scoped by the caller)."""
    if not patient_ids:
        return {}
    rows = conn.execute(
        """
        SELECT DISTINCT ON (patient_id, metric_id) patient_id, metric_id, value, measured_at
        FROM observations
        WHERE patient_id = ANY(%s) AND measured_at > now() - make_interval(days => %s)
          AND NOT coalesce(flags && %s, false)
        ORDER BY patient_id, metric_id, measured_at DESC
        """,
        (patient_ids, within_days, list(UNRELIABLE_FLAGS)),
    ).fetchall()
    out: dict[int, list[LatestValue]] = {}
    for patient_id, metric_id, value, measured_at in rows:
        metric = METRICS_BY_ID.get(metric_id)
        if metric is not None:
            out.setdefault(patient_id, []).append(
                LatestValue(
                    metric=metric.key,
                    value=value,
                    unit=metric.unit,
                    display_unit=metric.display_unit(language_of(language)),
                    measured_at=measured_at,
                )
            )
    return out


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
            "WHERE patient_id = %(patient)s AND ended_at IS NULL ORDER BY protocol",
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


# Raw readings up to a week; longer windows are bucketed so a chart stays a few hundred points.
_BUCKET_HOURS = {7: 0, 30: 4, 90: 12}


def series(
    conn: psycopg.Connection,
    patient_id: int,
    metric_key: str,
    days: int,
    *,
    now: datetime,
    language: str = "en",
) -> Series:
    """Readings of one metric (caller has checked access); unreliable ones are marked."""
    metric = METRICS[metric_key]
    since = now - timedelta(days=days)
    bucket = _BUCKET_HOURS.get(days, 12)
    if bucket == 0:
        rows = conn.execute(
            "SELECT measured_at, value, NOT coalesce(flags && %s, false) FROM observations "
            "WHERE patient_id = %s AND metric_id = %s AND measured_at > %s AND measured_at <= %s "
            "ORDER BY measured_at",
            (list(UNRELIABLE_FLAGS), patient_id, metric.id, since, now),
        ).fetchall()
        points = [Point(at=at, value=v, reliable=ok) for at, v, ok in rows]
    else:
        rows = conn.execute(
            "SELECT date_bin(make_interval(hours => %s), measured_at, %s) AS b, "
            "avg(value), min(value), max(value) FROM observations "
            "WHERE patient_id = %s AND metric_id = %s AND measured_at > %s AND measured_at <= %s "
            "AND NOT coalesce(flags && %s, false) GROUP BY b ORDER BY b",
            (bucket, since, patient_id, metric.id, since, now, list(UNRELIABLE_FLAGS)),
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


def charted_metrics(conn: psycopg.Connection, patient_id: int, *, now: datetime) -> list[str]:
    """Metrics worth a chart: measured in the last 90 days or watched by a protocol band."""
    measured = {
        METRICS_BY_ID[r[0]].key
        for r in conn.execute(
            "SELECT DISTINCT metric_id FROM observations WHERE patient_id = %s "
            "AND measured_at > %s",
            (patient_id, now - timedelta(days=90)),
        )
        if r[0] in METRICS_BY_ID
    }
    watched = set(bands_for_patient(conn, patient_id))
    return [key for key in METRICS if key in measured | watched]
