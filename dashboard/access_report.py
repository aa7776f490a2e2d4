"""Who accessed a patient's data: the privacy officer's answer to a patient's request.

The Garante's guidelines on health dossiers (4 Jun 2015) and EHDS art. 9 give a patient the
right to know who accessed their data (organisation, role, date and time); the answer is due
in 15 days. Every access is an audit row (dashboard.audit) naming the patient (patient_id) or,
for a list that showed them, listing them (details.patients). Accesses are staff's: rows
without a staff actor (a patient's own SMS, the services) are not accesses to report.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from dashboard import audit
from dashboard.authz import NotFound, Principal
from dashboard.i18n import TEXTS, translator
from dashboard.report import PeriodError, pdf
from dashboard.web import LOCAL_TZ, TEMPLATES

# The audit log is kept 24 months (telemon.store.audit_chain): a request may cover all of it.
MAX_DAYS = 2 * 366
DEFAULT_DAYS = 2 * 365

CSV_COLUMNS = (
    "time",
    "staff_username",
    "staff_name",
    "role",
    "care_team",
    "what",
    "action",
    "object",
    "from_address",
)


@dataclass(frozen=True, slots=True)
class Period:
    """Whole local days, ``first`` to ``last`` included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, datetime.min.time(), LOCAL_TZ)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), datetime.min.time(), LOCAL_TZ)


@dataclass(frozen=True, slots=True)
class Access:
    at: datetime
    username: str
    name: str
    role: str
    relation: str | None  # 'own_gp' or 'care_team'; None: a role that reads no clinical data
    care_team: str | None
    action: str
    object: str
    address: str | None


@dataclass(frozen=True, slots=True)
class AccessReport:
    patient_id: int
    code: str
    name: str
    period: Period
    accesses: list[Access]


def parse_period(first: str | None, last: str | None, *, today: date) -> Period:
    """``from`` and ``to`` (YYYY-MM-DD); without them, the two years the audit log keeps."""
    try:
        end = date.fromisoformat(last) if last else today
        start = date.fromisoformat(first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    except ValueError:
        raise PeriodError("from and to must be dates written YYYY-MM-DD") from None
    if start > end:
        raise PeriodError("from must not be after to")
    if (end - start).days + 1 > MAX_DAYS:
        raise PeriodError(f"an access report covers at most {MAX_DAYS} days")
    return Period(start, end)


# A list row names no relation: the list's own scope is the relation (a GP's list holds their
# own patients, a nurse's her care teams'), and the care team is the patient's.
_ACCESSES = """
SELECT a.at, a.actor_username, coalesce(a.actor_name, s.display_name, ''), a.actor_role,
       CASE WHEN a.patient_id IS NOT NULL THEN a.relation
            WHEN a.actor_role = 'gp' THEN 'own_gp'
            WHEN a.actor_role = 'nurse' THEN 'care_team' END,
       CASE WHEN a.patient_id IS NOT NULL THEN a.care_team
            WHEN a.actor_role = 'nurse' THEN t.name END,
       a.action, coalesce(a.object_type || ' ' || a.object_id, ''), host(a.client_address)
FROM audit_log a
LEFT JOIN staff s ON s.id = a.actor_id
JOIN patients p ON p.id = %(patient)s
LEFT JOIN care_teams t ON t.id = p.care_team_id
WHERE a.actor_id IS NOT NULL AND a.at >= %(start)s AND a.at < %(end)s
  AND (a.patient_id = %(patient)s
       OR (a.patient_id IS NULL
           AND (a.details -> 'patients') @> jsonb_build_array(%(patient)s::bigint)))
ORDER BY a.seq
"""


def build(conn: psycopg.Connection, patient_id: int, period: Period) -> AccessReport:
    """Every staff access to the patient's data in the period, oldest first."""
    patient = conn.execute(
        "SELECT code, given_name || ' ' || family_name FROM patients WHERE id = %s",
        (patient_id,),
    ).fetchone()
    if patient is None:
        raise NotFound
    rows = conn.execute(
        _ACCESSES, {"patient": patient_id, "start": period.start, "end": period.end}
    ).fetchall()
    return AccessReport(patient_id, patient[0], patient[1], period, [Access(*r) for r in rows])


def record_read(conn: psycopg.Connection, user: Principal, report: AccessReport, what: str) -> None:
    """The privacy officer's reading is an access too: the next report names it."""
    audit.record(
        conn,
        user,
        f"patient.access_report.{what}",
        patient_id=report.patient_id,
        object_type="patient",
        object_id=report.patient_id,
        details={
            "from": report.period.first.isoformat(),
            "to": report.period.last.isoformat(),
            "accesses": len(report.accesses),
        },
    )


def what_label(action: str, language: str) -> str:
    """The access in words; an action with no words yet reads as its code."""
    key = f"access.what.{action}"
    return translator(language)(key) if key in TEXTS else action


def relation_label(access: Access, language: str) -> str:
    t = translator(language)
    if access.relation == "own_gp":
        return t("access.via.own_gp")
    if access.relation == "care_team":
        return t("access.via.care_team", team=access.care_team or "?")
    return t("access.via.role", role=t(f"role.{access.role}"))


def local_time(at: datetime) -> str:
    return at.astimezone(LOCAL_TZ).isoformat(timespec="seconds")


def to_csv(report: AccessReport, language: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for a in report.accesses:
        writer.writerow(
            [
                local_time(a.at),
                a.username,
                a.name,
                a.role,
                relation_label(a, language),
                what_label(a.action, language),
                a.action,
                a.object,
                a.address or "",
            ]
        )
    return out.getvalue()


def title(report: AccessReport, language: str) -> str:
    return translator(language)(
        "access.title",
        code=report.code,
        first=report.period.first.strftime("%d/%m/%Y"),
        last=report.period.last.strftime("%d/%m/%Y"),
    )


def body_html(report: AccessReport, language: str, *, generated: datetime) -> str:
    context: dict[str, Any] = {
        "t": translator(language),
        "report": report,
        "title": title(report, language),
        "generated": local_time(generated),
        "rows": [
            (local_time(a.at), a, relation_label(a, language), what_label(a.action, language))
            for a in report.accesses
        ],
    }
    return TEMPLATES.env.get_template("_access_report.html").render(context)


def to_pdf(report: AccessReport, language: str, *, generated: datetime) -> bytes:
    return pdf(body_html(report, language, generated=generated), language, title(report, language))
