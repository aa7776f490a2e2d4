"""The period report: print view, PDF, readings CSV, validation and its FHIR Bundle."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from dashboard import fhir, period_reports, report
from dashboard.authz import Principal, ensure_patient, require
from dashboard.databases import Reads, Writes
from dashboard.web import LOCAL_TZ, render

router = APIRouter(include_in_schema=False)

Id = Annotated[int, Path(ge=1, le=2**62)]
Clinician = Annotated[Principal, Depends(require("clinical.read"))]
Validator = Annotated[Principal, Depends(require("report.validate"))]
# Free text, not a date type: a malformed date is answered with the report's own reason.
First = Annotated[str | None, Query(alias="from", max_length=10)]
Last = Annotated[str | None, Query(alias="to", max_length=10)]
FormFirst = Annotated[str | None, Form(alias="from", max_length=10)]
FormLast = Annotated[str | None, Form(alias="to", max_length=10)]


def _parse(first: str | None, last: str | None) -> report.Period:
    # A report.PeriodError is answered by dashboard.security: 422 with the reason (an
    # OperationOutcome for a .fhir URL), before the route reads or audits anything.
    return report.parse_period(first, last, today=datetime.now(LOCAL_TZ).date())


def _query_period(first: First = None, last: Last = None) -> report.Period:
    """The period of the query's ``from`` and ``to``; without them, the last 30 days."""
    return _parse(first, last)


def _validated_period(
    patient_id: Id, user: Validator, conn: Writes, first: FormFirst = None, last: FormLast = None
) -> report.Period:
    """The period a validation freezes: explicit, both ends. Whose report first: a patient
    out of scope is a 404 whatever the form holds."""
    ensure_patient(conn, user, patient_id)
    if not (first and last):
        raise report.PeriodError("from and to are required: the period validated is explicit")
    return _parse(first, last)


QueryPeriod = Annotated[report.Period, Depends(_query_period)]
ValidatedPeriod = Annotated[report.Period, Depends(_validated_period)]


def _filename(what: str, patient_id: int, period: report.Period, extension: str) -> str:
    return f"{what}-{patient_id}-{period.first.isoformat()}-{period.last.isoformat()}.{extension}"


@router.get("/patients/{patient_id}/report")
def report_view(
    request: Request,
    patient_id: Id,
    user: Clinician,
    conn: Reads,
    period: QueryPeriod,
) -> Response:
    shown = period_reports.view(conn, user, patient_id, period, pdf=False)
    return render(
        request,
        "report.html",
        {
            "title": shown.title,
            "body": Markup(shown.body),
            "validation": shown.validation,
            "report_language": shown.language,
            "patient_id": patient_id,
            "first": period.first.isoformat(),
            "last": period.last.isoformat(),
        },
        user=user,
    )


@router.get("/patients/{patient_id}/report.pdf")
def report_pdf(
    request: Request,
    patient_id: Id,
    user: Clinician,
    conn: Reads,
    period: QueryPeriod,
) -> Response:
    # A sync route: the PDF's layout runs in the thread pool, off the event loop.
    shown = period_reports.view(conn, user, patient_id, period, pdf=True)
    assert shown.pdf is not None
    name = _filename("report", patient_id, period, "pdf")
    return Response(
        shown.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.get("/patients/{patient_id}/readings.csv")
def readings_csv(
    request: Request,
    patient_id: Id,
    user: Clinician,
    conn: Reads,
    period: QueryPeriod,
) -> Response:
    text = period_reports.readings_csv(conn, user, patient_id, period)
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="{_filename("readings", patient_id, period, "csv")}"'
            )
        },
    )


@router.get("/patients/{patient_id}/report.fhir")
def report_fhir(
    request: Request,
    patient_id: Id,
    user: Clinician,
    conn: Reads,
    period: QueryPeriod,
) -> Response:
    bundle = period_reports.validated_bundle(conn, user, patient_id, period)
    if bundle is None:
        return JSONResponse(
            fhir.operation_outcome("not-found", "this period has no validated report"),
            404,
            media_type=fhir.FHIR_JSON,
        )
    return JSONResponse(bundle, media_type=fhir.FHIR_JSON)


@router.post("/patients/{patient_id}/report/validate")
def validate(
    request: Request,
    patient_id: Id,
    user: Validator,
    conn: Writes,
    period: ValidatedPeriod,
) -> Response:
    # Validated before (a second click): the report shown is the one validated then.
    with suppress(period_reports.AlreadyValidated):
        period_reports.validate(
            conn, user, patient_id, period, public_url=request.app.state.public_url
        )
    query = f"from={period.first.isoformat()}&to={period.last.isoformat()}"
    return RedirectResponse(f"/patients/{patient_id}/report?{query}", status_code=303)


# The closing report, frozen at discharge (period_reports.close): read like a validated period.


@router.get("/patients/{patient_id}/closing-report")
def closing_view(request: Request, patient_id: Id, user: Clinician, conn: Reads) -> Response:
    shown = period_reports.closing_view(conn, user, patient_id, pdf=False)
    if shown is None:
        return _no_closing(request, user)
    return render(
        request,
        "closing_report.html",
        {
            "title": shown.title,
            "body": Markup(shown.body),
            "validation": shown.validation,
            "report_language": shown.language,
            "patient_id": patient_id,
        },
        user=user,
    )


@router.get("/patients/{patient_id}/closing-report.pdf")
def closing_pdf(request: Request, patient_id: Id, user: Clinician, conn: Reads) -> Response:
    shown = period_reports.closing_view(conn, user, patient_id, pdf=True)
    if shown is None:
        return _no_closing(request, user)
    assert shown.pdf is not None and shown.period is not None
    name = _filename("closing-report", patient_id, shown.period, "pdf")
    return Response(
        shown.pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


@router.get("/patients/{patient_id}/closing-report.fhir")
def closing_fhir(patient_id: Id, user: Clinician, conn: Reads) -> Response:
    bundle = period_reports.closing_bundle(conn, user, patient_id)
    if bundle is None:
        return JSONResponse(
            fhir.operation_outcome("not-found", "this patient has no closing report"),
            404,
            media_type=fhir.FHIR_JSON,
        )
    return JSONResponse(bundle, media_type=fhir.FHIR_JSON)


def _no_closing(request: Request, user: Principal) -> Response:
    context = {"message_key": "closing.none", "code": 404, "details": []}
    return render(request, "error.html", context, user=user, status_code=404)
