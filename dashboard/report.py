"""The period report: what a patient's monitoring was over a period, for the GP to read, print
and validate. ``build`` gathers it (the caller has checked access), ``body_html`` writes it,
``pdf`` lays the same HTML out as a PDF with WeasyPrint.

Reusable for any period: the discharge's closing report calls ``build`` and ``body_html`` with
the monitoring's whole span.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from markupsafe import Markup
from pydantic import ValidationError

from alerts.protocol import MissingDataRule, PatientOverride, TrendRule, rule_title
from dashboard import charts, clinical, report_stats, restrictions
from dashboard.authz import Principal
from dashboard.bands import bands_for_patient, effective_protocol
from dashboard.i18n import translator
from dashboard.models import Series
from dashboard.web import LOCAL_TZ, TEMPLATES, helpers
from dashboard.wording import language_of, protocol_title
from telemon.flags import UNRELIABLE_FLAGS
from telemon.metrics import METRICS, METRICS_BY_ID
from telemon.reasons import OPS, number

if TYPE_CHECKING:  # dashboard.closing builds on this module
    from dashboard.closing import Closing

STYLESHEET = Path(__file__).parent / "static" / "report.css"
MAX_DAYS = 366


class PeriodError(ValueError):
    """A period the report cannot cover; the message says why, for the reader."""


@dataclass(frozen=True, slots=True)
class Period:
    """Whole local days, ``first`` to ``last`` included (the cooperatives' time, Europe/Rome)."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), LOCAL_TZ).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), LOCAL_TZ).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def parse_period(first: str | None, last: str | None, *, today: date) -> Period:
    """From the query's ``from`` and ``to`` (YYYY-MM-DD); without them, the last 30 days."""
    try:
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=29)
    except ValueError:
        raise PeriodError("from and to must be dates written YYYY-MM-DD") from None
    if len(first or "2000-01-01") != 10 or len(last or "2000-01-01") != 10:
        raise PeriodError("from and to must be dates written YYYY-MM-DD")
    if start > end:
        raise PeriodError("from must not be after to")
    if end > today:
        raise PeriodError("to must not be after today")
    if (end - start).days + 1 > MAX_DAYS:
        raise PeriodError(f"a report covers at most {MAX_DAYS} days")
    return Period(start, end)


@dataclass(frozen=True, slots=True)
class PlanRule:
    title: str
    bands: list[str]
    own: bool  # the patient's own thresholds, not the protocol's
    reason: str


@dataclass(frozen=True, slots=True)
class Scheduled:
    metric: str
    every_hours: float
    adherence: report_stats.Adherence


@dataclass(frozen=True, slots=True)
class PlanProtocol:
    key: str
    title: str
    started_at: datetime
    rules: list[PlanRule]
    schedule: list[Scheduled]


@dataclass(frozen=True, slots=True)
class MetricSummary:
    metric: str
    summary: report_stats.Summary
    flagged: int  # readings kept out of the numbers for a device flag


@dataclass(frozen=True, slots=True)
class Call:
    at: datetime
    kind: str
    outcome: str | None
    note: str | None
    by: str | None


@dataclass(frozen=True, slots=True)
class EpisodeEntry:
    id: int
    severity: int
    state: str
    opened_at: datetime
    resolved_at: datetime | None
    reasons: list[str]
    outcome: str | None
    resolution_note: str | None
    calls: list[Call]


@dataclass(frozen=True, slots=True)
class DeviceEntry:
    kind: str
    manufacturer: str | None
    model: str | None
    serial_number: str | None
    address: str
    gateway: str


@dataclass(frozen=True, slots=True)
class PeriodReport:
    patient_id: int
    code: str
    name: str
    birth_date: date | None
    gp_name: str
    period: Period
    generated_at: datetime
    plan: list[PlanProtocol]
    charts: list[tuple[Series, Markup]]
    summaries: list[MetricSummary]
    home_bp: report_stats.HomeBpMean | None
    glucose: report_stats.GlucoseLevels | None
    episodes: list[EpisodeEntry]
    devices: list[DeviceEntry]
    readings: int


def _band_text(
    metric: str | None, op: str, value: float, level: str, language: str, *, trend: bool = False
) -> str:
    t = translator(language)
    known = METRICS.get(metric or "")
    # A score's channels (alerts.protocol.SCORE_CHANNELS) in words, never their keys.
    label = known.short_label(language_of(language)) if known else t(f"report.channel.{metric}")
    if trend:
        label = t("report.change_of", label=label)
    amount = number(value, language_of(language), signed=trend)
    return f"{t(level)}: {label} {OPS[op]} {amount}"


def _plan(
    conn: psycopg.Connection,
    patient_id: int,
    period: Period,
    reading_days: dict[str, set[date]],
    language: str,
    today: date,
    *,
    shown: str,
    hidden: set[str],
) -> list[PlanProtocol]:
    """The protocols followed in the period, their limits and schedules with adherence;
    none of what the patient hid from the reader: a hidden protocol (``shown``, an SQL
    predicate over ``patient_protocols``), a hidden metric's rules, limits and schedule
    (``hidden``), as the patient page's plan (dashboard/plan.py)."""
    out = []
    for name, overrides, started_at in conn.execute(
        "SELECT protocol, overrides, started_at FROM patient_protocols "
        "WHERE patient_id = %s AND started_at < %s AND (ended_at IS NULL OR ended_at >= %s) "
        f"AND {shown} ORDER BY protocol",
        (patient_id, period.end, period.start),
    ):
        protocol = effective_protocol(name, overrides)
        if protocol is None:
            continue
        try:
            own = PatientOverride.model_validate(overrides).rules
        except ValidationError:
            own = {}
        rules, schedule = [], []
        # Nothing is expected before the patient started the protocol, nor after today.
        first = max(period.first, started_at.astimezone(LOCAL_TZ).date())
        last = min(period.last, today)
        for rule in protocol.rules:
            if hidden and set(rule.metrics) <= hidden:
                continue
            if isinstance(rule, MissingDataRule):
                if rule.expected_every is not None and first <= last:
                    metric = rule.metrics[0]
                    hours = rule.expected_every / 3600
                    schedule.append(
                        Scheduled(
                            metric,
                            hours,
                            report_stats.adherence(
                                reading_days.get(metric, set()),
                                first=first,
                                last=last,
                                every_hours=hours,
                            ),
                        )
                    )
                continue
            if not rule.enabled:
                continue
            # A trend's bands compare a change over its window, not a reading.
            trend = isinstance(rule, TrendRule)
            rules.append(
                PlanRule(
                    title=rule_title(rule, language),
                    bands=[
                        _band_text(b.on, b.op, b.value, b.level, language, trend=trend)
                        for b in rule.bands
                        if b.on not in hidden
                    ],
                    own=rule.key in own,
                    reason=own[rule.key].reason if rule.key in own else "",
                )
            )
        out.append(PlanProtocol(name, protocol_title(name, language), started_at, rules, schedule))
    return out


def _episodes(
    conn: psycopg.Connection, patient_id: int, period: Period, language: str, findings: str
) -> list[EpisodeEntry]:
    rows = conn.execute(
        "SELECT id, severity, state, opened_at, resolved_at, outcome, resolution_note "
        "FROM episodes WHERE patient_id = %s AND opened_at < %s "
        "AND (resolved_at IS NULL OR resolved_at >= %s) ORDER BY opened_at, id",
        (patient_id, period.end, period.start),
    ).fetchall()
    ids = [r[0] for r in rows]
    reasons: dict[int, list[str]] = {}
    for episode_id, protocol, rule, details, metric_id, value in conn.execute(
        "SELECT episode_id, protocol, rule, details, metric_id, trigger_value FROM alerts a "
        f"WHERE episode_id = ANY(%s) AND {findings} ORDER BY severity DESC, opened_at, id",
        (ids,),
    ):
        metric = METRICS_BY_ID.get(metric_id)
        text = clinical.finding_reason(
            protocol, rule, details or {}, language, metric.key if metric else None, value
        )
        if text not in reasons.setdefault(episode_id, []):
            reasons[episode_id].append(text)
    calls: dict[int, list[Call]] = {}
    for episode_id, at, kind, outcome, note, by in conn.execute(
        "SELECT ev.episode_id, ev.at, ev.kind, ev.details->>'outcome', ev.note, s.display_name "
        "FROM episode_events ev LEFT JOIN staff s ON s.id = ev.actor_id "
        "WHERE ev.episode_id = ANY(%s) AND ev.kind IN ('outcome', 'resolve', 'escalate') "
        "ORDER BY ev.at, ev.id",
        (ids,),
    ):
        calls.setdefault(episode_id, []).append(Call(at, kind, outcome, note, by))
    return [
        EpisodeEntry(
            id=r[0],
            severity=r[1],
            state=r[2],
            opened_at=r[3],
            resolved_at=r[4],
            reasons=reasons.get(r[0], []),
            outcome=r[5],
            resolution_note=r[6],
            calls=calls.get(r[0], []),
        )
        for r in rows
    ]


def _devices(conn: psycopg.Connection, patient_id: int, period: Period) -> list[DeviceEntry]:
    """Devices paired with the patient's gateways during the period, and any that sent one of
    the period's readings (a device since moved elsewhere still made them)."""
    rows = conn.execute(
        """
        SELECT DISTINCT d.kind, d.manufacturer, d.model, d.serial_number, d.address, g.code
        FROM devices d JOIN gateways g ON g.id = d.gateway_id
        WHERE (g.patient_id = %(p)s AND d.paired_at < %(end)s
               AND (d.unpaired_at IS NULL OR d.unpaired_at >= %(start)s))
           OR d.id IN (SELECT device_id FROM observations WHERE patient_id = %(p)s
                       AND measured_at >= %(start)s AND measured_at < %(end)s
                       AND device_id IS NOT NULL)
        ORDER BY d.kind, d.address
        """,
        {"p": patient_id, "start": period.start, "end": period.end},
    ).fetchall()
    return [DeviceEntry(*r) for r in rows]


def _by_metric(
    rows: Iterable[tuple[int, datetime, float, bool]],
) -> tuple[dict[str, list[tuple[datetime, float]]], dict[str, int]]:
    reliable: dict[str, list[tuple[datetime, float]]] = {}
    flagged: dict[str, int] = {}
    for metric_id, at, value, ok in rows:
        metric = METRICS_BY_ID.get(metric_id)
        if metric is None:
            continue
        if ok:
            reliable.setdefault(metric.key, []).append((at, value))
        else:
            flagged[metric.key] = flagged.get(metric.key, 0) + 1
    return reliable, flagged


def build(
    conn: psycopg.Connection,
    reader: Principal | None,
    patient_id: int,
    period: Period,
    *,
    language: str,
    now: datetime | None = None,
) -> PeriodReport:
    """The report's content for a patient in the caller's scope (not checked here), as
    ``reader`` may see it (without what the patient hid from them); None: the whole record,
    for the documents the GP freezes."""
    now = now or datetime.now(UTC)
    lang = language_of(language)
    head = conn.execute(
        "SELECT p.code, p.given_name || ' ' || p.family_name, p.birth_date, g.display_name "
        "FROM patients p JOIN staff g ON g.id = p.gp_id WHERE p.id = %s",
        (patient_id,),
    ).fetchone()
    if head is None:
        raise LookupError(patient_id)
    rows = conn.execute(
        "SELECT metric_id, measured_at, value, NOT coalesce(flags && %s, false) "
        "FROM observations o WHERE patient_id = %s AND measured_at >= %s AND measured_at < %s "
        f"AND {restrictions.readings_visible(reader)} ORDER BY measured_at",
        (list(UNRELIABLE_FLAGS), patient_id, period.start, period.end),
    ).fetchall()
    reliable, flagged = _by_metric(rows)
    bands = bands_for_patient(conn, patient_id, lang)
    reading_days = {
        key: {at.astimezone(LOCAL_TZ).date() for at, _ in readings}
        for key, readings in reliable.items()
    }
    measured = set(reliable) | set(flagged)
    hidden = restrictions.hidden_metrics(conn, reader, patient_id)
    keys = [k for k in METRICS if k in measured or (k in bands and k not in hidden)]
    summaries = [
        MetricSummary(
            key,
            report_stats.summarise(
                [v for _, v in reliable.get(key, [])],
                [(b.op, b.value) for b in bands.get(key, [])],
            ),
            flagged.get(key, 0),
        )
        for key in keys
    ]
    empty = translator(lang)("no_data")
    chart_list = []
    for key in keys:
        series = clinical.series(
            conn, reader, patient_id, key, period.days, now=period.end, language=lang
        )
        chart_list.append(
            (series, charts.render(series, now=period.end, empty_text=empty, language=lang))
        )
    home_bp = (
        report_stats.esh_home_mean(
            reliable.get("systolic", []),
            reliable.get("diastolic", []),
            last_day=period.last,
            tz=LOCAL_TZ,
        )
        if "systolic" in reliable
        else None
    )
    glucose = report_stats.glucose_levels([v for _, v in reliable.get("glucose", [])])
    return PeriodReport(
        patient_id=patient_id,
        code=head[0],
        name=head[1],
        birth_date=head[2],
        gp_name=head[3],
        period=period,
        generated_at=now,
        plan=_plan(
            conn,
            patient_id,
            period,
            reading_days,
            lang,
            now.astimezone(LOCAL_TZ).date(),
            shown=restrictions.visible(reader, patient="patient_id", protocol="protocol"),
            hidden=hidden,
        ),
        charts=chart_list,
        summaries=summaries,
        home_bp=home_bp,
        glucose=glucose,
        episodes=_episodes(conn, patient_id, period, lang, restrictions.finding_visible(reader)),
        devices=_devices(conn, patient_id, period),
        readings=len(rows),
    )


@dataclass(frozen=True, slots=True)
class Validation:
    by: str
    at: datetime
    sha256: str


def body_html(
    report: PeriodReport,
    language: str,
    validation: Validation | None = None,
    closing: Closing | None = None,
) -> str:
    """The report's HTML body: what the print view shows and the PDF lays out. With
    ``closing``, the discharge's closing report: its own section first (dashboard/closing.py)."""
    context = helpers(language, report.generated_at) | {
        "r": report,
        "validation": validation,
        "closing": closing,
        "pct": lambda x: "–" if x is None else number(x, language_of(language), decimals=0),
    }
    return TEMPLATES.env.get_template("_report.html").render(context)


def document_html(body: str, language: str, title: str) -> str:
    """A whole document around the body, for the PDF (no navigation, no scripts)."""
    return TEMPLATES.env.get_template("report_document.html").render(
        {"lang": language, "title": title, "body": Markup(body)}
    )


def pdf(body: str, language: str, title: str) -> bytes:
    """The PDF of the report's HTML, laid out by WeasyPrint with the print stylesheet."""
    # Imported here: WeasyPrint loads Pango when imported, and only this function needs it.
    from weasyprint import CSS, HTML

    document = HTML(string=document_html(body, language, title), base_url=str(STYLESHEET.parent))
    out = document.write_pdf(stylesheets=[CSS(filename=str(STYLESHEET))])
    assert out is not None
    return bytes(out)


def title(report: PeriodReport, language: str, *, closing: bool = False) -> str:
    t = translator(language)
    return t(
        "closing.title_of" if closing else "report.title_of",
        code=report.code,
        first=report.period.first.strftime("%d/%m/%Y"),
        last=report.period.last.strftime("%d/%m/%Y"),
    )
