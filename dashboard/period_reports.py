"""The period report as the routes serve it: access check, the frozen copy of a validated
period or a fresh rendering, the readings CSV, validation; the discharge's closing report,
frozen the same way; every read audited."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dashboard import audit, closing, fhir, readings_export, report, restrictions
from dashboard.authz import Principal, ensure_patient
from dashboard.wording import language_of


class AlreadyValidated(Exception):
    """The period was validated before: its report stays as it was."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A report to show: its body HTML, its PDF when asked for, and the validation if any."""

    title: str
    body: str
    pdf: bytes | None
    validation: report.Validation | None
    fhir_bundle: dict[str, Any] | None = None
    period: report.Period | None = None
    # The language the body is written in: a frozen report's is its validator's, whoever reads.
    language: str | None = None


def _audit(
    conn: psycopg.Connection,
    user: Principal,
    action: str,
    patient_id: int,
    period: report.Period,
    **details: object,
) -> None:
    audit.record(
        conn,
        user,
        action,
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
        details={"from": period.first.isoformat(), "to": period.last.isoformat(), **details},
    )


def _frozen(
    conn: psycopg.Connection,
    patient_id: int,
    period: report.Period | None,
    *,
    kind: str = "period",
) -> Rendered | None:
    """The frozen report of that kind and period (a closing report: the patient's one)."""
    row = conn.execute(
        "SELECT r.body_html, r.pdf, r.pdf_sha256, r.fhir_bundle, s.display_name, r.validated_at, "
        "p.code, r.period_from, r.period_to, r.language FROM period_reports r "
        "JOIN staff s ON s.id = r.validated_by JOIN patients p ON p.id = r.patient_id "
        "WHERE r.patient_id = %(p)s AND r.kind = %(kind)s "
        "AND (%(first)s::date IS NULL OR (r.period_from = %(first)s AND r.period_to = %(last)s))",
        {
            "p": patient_id,
            "kind": kind,
            "first": period.first if period else None,
            "last": period.last if period else None,
        },
    ).fetchone()
    if row is None:
        return None
    body, pdf, sha, bundle, by, at, code, first, last, language = row
    return Rendered(
        title=f"{code} {first.isoformat()} {last.isoformat()}",
        body=body,
        pdf=bytes(pdf),
        validation=report.Validation(by=by, at=at, sha256=sha),
        fhir_bundle=bundle,
        period=report.Period(first, last),
        language=language,
    )


def _fresh(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    period: report.Period,
    language: str,
    *,
    pdf: bool,
) -> Rendered:
    content = report.build(conn, user, patient_id, period, language=language)
    title = report.title(content, language)
    body = report.body_html(content, language)
    rendered = report.pdf(body, language, title) if pdf else None
    return Rendered(title, body, rendered, None, language=language)


def view(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    period: report.Period,
    *,
    pdf: bool,
) -> Rendered:
    """The validated report of the period if there is one, else the report as it is now."""
    ensure_patient(conn, user, patient_id)
    # A validated report holds the whole record, as its GP signed it: a reader from whom the
    # patient hid some data gets the report as it is now, without it (restrictions.py).
    frozen = (
        None
        if restrictions.withholds(conn, user, patient_id)
        else _frozen(conn, patient_id, period)
    )
    rendered = frozen or _fresh(conn, user, patient_id, period, language_of(user.language), pdf=pdf)
    _audit(
        conn,
        user,
        "patient.report.pdf" if pdf else "patient.report.read",
        patient_id,
        period,
        validated=rendered.validation is not None,
    )
    return rendered


def validated_bundle(
    conn: psycopg.Connection, user: Principal, patient_id: int, period: report.Period
) -> dict[str, Any] | None:
    ensure_patient(conn, user, patient_id)
    frozen = (
        None
        if restrictions.withholds(conn, user, patient_id)
        else _frozen(conn, patient_id, period)
    )
    _audit(conn, user, "patient.report.fhir", patient_id, period, validated=frozen is not None)
    return frozen.fhir_bundle if frozen else None


def _freeze(
    conn: psycopg.Connection,
    user: Principal,
    content: report.PeriodReport,
    *,
    kind: str,
    language: str,
    public_url: str,
    closing_section: closing.Closing | None = None,
) -> report.Validation | None:
    """Store the report as it is now: its HTML, its PDF and the PDF's SHA-256, its FHIR
    Bundle, who and when (``content.generated_at``). None: that report was frozen before."""
    patient_id, period, now = content.patient_id, content.period, content.generated_at
    title = report.title(content, language, closing=kind == "closing")
    validation = report.Validation(by=user.display_name, at=now, sha256="")
    # The PDF states its own validation; its hash is known only once it is made, so the
    # printed text names the validator and the time, and the hash is stored beside it.
    body = report.body_html(content, language, validation, closing_section)
    pdf = report.pdf(body, language, title)
    sha = hashlib.sha256(pdf).hexdigest()
    gp = conn.execute(
        "SELECT g.id, g.display_name FROM patients p JOIN staff g ON g.id = p.gp_id "
        "WHERE p.id = %s",
        (patient_id,),
    ).fetchone()
    assert gp is not None  # build found the patient
    bundle = fhir.diagnostic_report_bundle(
        patient_id=patient_id,
        code=content.code,
        gp_id=gp[0],
        gp_name=gp[1],
        first=period.first,
        last=period.last,
        start=period.start,
        end=period.end,
        issued=now,
        title=title,
        pdf=pdf,
        observations=fhir.period_observations(conn, patient_id, period.start, period.end),
        base=public_url.rstrip("/") + "/fhir",
        kind=kind,
        language=language,
    )
    inserted = conn.execute(
        "INSERT INTO period_reports (patient_id, kind, period_from, period_to, language, "
        "body_html, pdf, pdf_sha256, fhir_bundle, validated_by, validated_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
        (
            patient_id,
            kind,
            period.first,
            period.last,
            language,
            body,
            pdf,
            sha,
            Jsonb(bundle),
            user.id,
            now,
        ),
    ).fetchone()
    if inserted is None:
        return None
    return report.Validation(by=user.display_name, at=now, sha256=sha)


def validate(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    period: report.Period,
    *,
    public_url: str,
) -> report.Validation:
    """Freeze the period's report as it is now, in the validator's language (the text they
    read and sign off); ``period_reports.language`` records it. A period is validated once."""
    ensure_patient(conn, user, patient_id)
    language = language_of(user.language)
    content = report.build(conn, None, patient_id, period, language=language, now=datetime.now(UTC))
    with conn.transaction():
        validation = _freeze(
            conn, user, content, kind="period", language=language, public_url=public_url
        )
        if validation is None:
            raise AlreadyValidated
        _audit(
            conn,
            user,
            "patient.report.validate",
            patient_id,
            period,
            sha256=validation.sha256,
            language=language,
        )
    return validation


def close(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    *,
    reason: str,
    discharged_on: date,
    discharged_at: datetime,
    public_url: str,
) -> report.Validation:
    """The closing report, frozen by the discharge (the caller's transaction, after the
    discharge resolved the open episodes): the report over the whole monitoring span with
    its closing section, signed by whoever discharged. It is written for the GP, in the GP's
    language; an admin discharging reads none of it (docs/dashboard.md, "Closing report")."""
    row = conn.execute(
        "SELECT p.enrolled_at, g.language FROM patients p JOIN staff g ON g.id = p.gp_id "
        "WHERE p.id = %s",
        (patient_id,),
    ).fetchone()
    if row is None:
        raise LookupError(patient_id)
    enrolled_at, language = row[0], language_of(row[1])
    period = closing.span(enrolled_at, discharged_on)
    content = report.build(conn, None, patient_id, period, language=language, now=discharged_at)
    section = closing.gather(
        conn, content, reason=reason, enrolled_at=enrolled_at, discharged_at=discharged_at
    )
    validation = _freeze(
        conn,
        user,
        content,
        kind="closing",
        language=language,
        public_url=public_url,
        closing_section=section,
    )
    if validation is None:
        raise AlreadyValidated
    _audit(
        conn,
        user,
        "patient.closing_report.create",
        patient_id,
        period,
        sha256=validation.sha256,
        days=section.days,
    )
    return validation


def _closing(
    conn: psycopg.Connection, user: Principal, patient_id: int, action: str
) -> Rendered | None:
    """The patient's closing report as frozen at discharge (None before any discharge); the
    read is audited either way, as a period never validated is."""
    ensure_patient(conn, user, patient_id)
    # The closing report holds the whole record: not for a reader the patient hid some from.
    frozen = (
        None
        if restrictions.withholds(conn, user, patient_id)
        else _frozen(conn, patient_id, None, kind="closing")
    )
    if frozen is not None and frozen.period is not None:
        _audit(conn, user, action, patient_id, frozen.period, found=True)
    else:
        audit.record(
            conn,
            user,
            action,
            patient_id=patient_id,
            object_type="patient",
            object_id=patient_id,
            details={"found": False},
        )
    return frozen


def closing_view(
    conn: psycopg.Connection, user: Principal, patient_id: int, *, pdf: bool
) -> Rendered | None:
    action = "patient.closing_report.pdf" if pdf else "patient.closing_report.read"
    return _closing(conn, user, patient_id, action)


def closing_bundle(
    conn: psycopg.Connection, user: Principal, patient_id: int
) -> dict[str, Any] | None:
    frozen = _closing(conn, user, patient_id, "patient.closing_report.fhir")
    return frozen.fhir_bundle if frozen else None


@dataclass(frozen=True, slots=True)
class ClosingRecord:
    """That a closing report exists, without its content: for the links and the admin."""

    period: report.Period
    by: str
    at: datetime
    sha256: str


def closing_record(conn: psycopg.Connection, patient_id: int) -> ClosingRecord | None:
    row = conn.execute(
        "SELECT r.period_from, r.period_to, s.display_name, r.validated_at, r.pdf_sha256 "
        "FROM period_reports r JOIN staff s ON s.id = r.validated_by "
        "WHERE r.patient_id = %s AND r.kind = 'closing'",
        (patient_id,),
    ).fetchone()
    if row is None:
        return None
    return ClosingRecord(report.Period(row[0], row[1]), row[2], row[3], row[4])


def readings_csv(
    conn: psycopg.Connection, user: Principal, patient_id: int, period: report.Period
) -> str:
    """One reading a row, every reading of the period (flagged ones with their flags), in the
    columns of every readings export (:mod:`dashboard.readings_export`)."""
    ensure_patient(conn, user, patient_id)
    rows = conn.execute(
        readings_export.query(
            " AND o.measured_at >= %(start)s AND o.measured_at < %(end)s"
            f" AND {restrictions.readings_visible(user)}"
        ),
        {"p": patient_id, "start": period.start, "end": period.end},
    ).fetchall()
    text = "".join(readings_export.lines(rows))
    _audit(conn, user, "patient.readings.csv", patient_id, period, rows=len(rows))
    return text
