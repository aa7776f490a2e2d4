"""The privacy officer's pages: who accessed a patient's data (dashboard/access_report.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from dashboard import access_report
from dashboard.access_report import AccessReport
from dashboard.authz import Principal, ensure_patient, patient_scope, require
from dashboard.databases import Reads
from dashboard.web import LOCAL_TZ, render

router = APIRouter(prefix="/admin", include_in_schema=False)

Id = Annotated[int, Path(ge=1, le=2**62)]
Officer = Annotated[Principal, Depends(require("audit.read"))]
First = Annotated[str | None, Query(alias="from", max_length=10)]
Last = Annotated[str | None, Query(alias="to", max_length=10)]


def _period(first: First = None, last: Last = None) -> access_report.Period:
    # A PeriodError is answered by dashboard.security (422, with the reason).
    return access_report.parse_period(first, last, today=datetime.now(LOCAL_TZ).date())


Period = Annotated[access_report.Period, Depends(_period)]


def _filename(report: AccessReport, extension: str) -> str:
    p = report.period
    return f"access-{report.code}-{p.first.isoformat()}-{p.last.isoformat()}.{extension}"


@router.get("/access-report")
def access_report_form(
    request: Request,
    user: Officer,
    conn: Reads,
    code: Annotated[str | None, Query(max_length=64)] = None,
    first: First = None,
    last: Last = None,
    kind: Annotated[Literal["csv", "pdf"], Query(alias="format")] = "csv",
) -> Response:
    """The request form; with a patient's code, on to that patient's report."""
    context = {"code": code or "", "first": first or "", "last": last or "", "error": None}
    if code:
        # Another organisation's patient is as unknown as a code nobody has.
        scope, params = patient_scope(user, permission="audit.read")
        row = conn.execute(
            f"SELECT p.id FROM patients p WHERE p.code = %(code)s AND {scope}",
            {**params, "code": code.strip()},
        ).fetchone()
        if row is not None:
            query = urlencode([(k, v) for k, v in (("from", first), ("to", last)) if v])
            target = f"/admin/patients/{row[0]}/access-report.{kind}"
            return RedirectResponse(f"{target}?{query}" if query else target, status_code=303)
        context["error"] = "access.unknown_code"
    return render(
        request, "access_report.html", context, user=user, status_code=404 if code else 200
    )


@router.get("/patients/{patient_id}/access-report.csv")
def access_report_csv(patient_id: Id, user: Officer, conn: Reads, period: Period) -> Response:
    ensure_patient(conn, user, patient_id, "audit.read")
    report = access_report.build(conn, patient_id, period)
    access_report.record_read(conn, user, report, "csv")
    return Response(
        access_report.to_csv(report, user.language),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(report, "csv")}"'},
    )


@router.get("/patients/{patient_id}/access-report.pdf")
def access_report_pdf(patient_id: Id, user: Officer, conn: Reads, period: Period) -> Response:
    ensure_patient(conn, user, patient_id, "audit.read")
    # A sync route: WeasyPrint's layout runs in the thread pool, off the event loop.
    report = access_report.build(conn, patient_id, period)
    document = access_report.to_pdf(report, user.language, generated=datetime.now(UTC))
    access_report.record_read(conn, user, report, "pdf")
    return Response(
        document,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{_filename(report, "pdf")}"'},
    )
