"""Admin pages: users and roles, patient enrolment, gateway registration, and the patients'
requests to hide data (oscuramento) an admin records on their word."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from dashboard import administration, audit, enrolment, restrictions
from dashboard.authz import Principal, ensure_patient, patient_scope, require
from dashboard.bands import protocols
from dashboard.databases import Reads, Writes
from dashboard.models import DeviceIn, GatewayIn, StaffIn, StaffUpdate
from dashboard.web import render

router = APIRouter(prefix="/admin", include_in_schema=False)

Admin = Annotated[Principal, Depends(require("staff.manage"))]
Enroller = Annotated[Principal, Depends(require("patient.enrol"))]
Restricter = Annotated[Principal, Depends(require("record.restrict"))]
PatientId = Annotated[int, Path(ge=1, le=2**62)]


def _messages(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


def _page(
    request: Request,
    user: Principal,
    conn: psycopg.Connection,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
    form: dict[str, str] | None = None,
) -> Response:
    return render(
        request,
        "admin.html",
        {
            "staff": administration.list_staff(conn, user),
            "teams": administration.care_teams(conn, user),
            "gps": administration.gps(conn, user),
            "protocol_names": sorted(protocols()),
            "error": error,
            "notice": notice,
            "form": form or {},
        },
        user=user,
        status_code=status_code,
    )


@router.get("", response_class=HTMLResponse)
def admin_home(request: Request, user: Admin, conn: Reads) -> Response:
    return _page(request, user, conn)


@router.post("/staff")
def create_staff(
    request: Request,
    user: Admin,
    conn: Writes,
    username: Annotated[str, Form(max_length=64)],
    display_name: Annotated[str, Form(max_length=200)],
    role: Annotated[str, Form()],
    password: Annotated[str, Form(max_length=200)],
    phone: Annotated[str, Form(max_length=20)] = "",
    language: Annotated[str, Form()] = "it",
    care_team_id: Annotated[str, Form()] = "",
) -> Response:
    try:
        new = StaffIn(
            username=username.strip().lower(),
            display_name=display_name,
            role=role,
            password=password,
            phone=phone.strip() or None,
            language=language,
            care_team_id=int(care_team_id) if care_team_id.strip() else None,
        )
        administration.create_staff(conn, user, new)
    except ValidationError as exc:
        return _page(request, user, conn, error=_messages(exc), status_code=422)
    except (administration.InvalidInput, ValueError) as exc:  # ValueError: int() of the team
        return _page(request, user, conn, error=str(exc), status_code=422)
    return RedirectResponse("/admin", status_code=303)


@router.post("/staff/{staff_id}")
def update_staff(
    request: Request,
    staff_id: int,
    user: Admin,
    conn: Writes,
    role: Annotated[str, Form()] = "",
    active: Annotated[str, Form()] = "",
    password: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        change = StaffUpdate(
            role=role or None,
            active={"true": True, "false": False}.get(active),
            password=password or None,
        )
        administration.update_staff(conn, user, staff_id, change)
    except ValidationError as exc:
        return _page(request, user, conn, error=_messages(exc), status_code=422)
    except administration.InvalidInput as exc:
        return _page(request, user, conn, error=str(exc), status_code=422)
    except LookupError:
        return _page(request, user, conn, error="no such staff member", status_code=404)
    return RedirectResponse("/admin", status_code=303)


@router.post("/gateways")
async def register_gateway(request: Request, user: Enroller, conn: Writes) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        devices = []
        for line in (form.get("devices") or "").splitlines():
            if line.strip():
                kind, _, address = line.strip().partition(" ")
                devices.append(DeviceIn(kind=kind, address=address.strip()))
        new = GatewayIn(
            code=form.get("code", "").strip(),
            patient_id=int(form["patient_id"]) if form.get("patient_id") else None,
            devices=devices,
        )
        registered = administration.register_gateway(conn, user, new)
    except ValidationError as exc:
        return _page(request, user, conn, error=_messages(exc), status_code=422, form=form)
    except (administration.InvalidInput, ValueError) as exc:
        return _page(request, user, conn, error=str(exc), status_code=422, form=form)
    return _page(request, user, conn, notice=f"{registered.code}: {registered.devices}")


@router.get("/restrictions", response_class=HTMLResponse)
def restrictions_finder(
    request: Request,
    user: Restricter,
    conn: Reads,
    code: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Find the patient whose request to hide data is to be recorded, by their code."""
    if code:
        # Another organisation's patient is as unknown as a code nobody has.
        scope, params = patient_scope(user, permission="record.restrict")
        row = conn.execute(
            f"SELECT p.id FROM patients p WHERE p.code = %(code)s AND {scope}",
            {**params, "code": code.strip()},
        ).fetchone()
        if row is not None:
            return RedirectResponse(f"/admin/patients/{row[0]}/restrictions", status_code=303)
    return render(
        request,
        "admin_restrictions.html",
        {"code": code or "", "error": "access.unknown_code" if code else None, "patient": None},
        user=user,
        status_code=404 if code else 200,
    )


@router.get("/patients/{patient_id}/restrictions", response_class=HTMLResponse)
def patient_restrictions(
    request: Request, patient_id: PatientId, user: Restricter, conn: Reads
) -> Response:
    """The patient's requests to hide data, and the form to record one or its withdrawal (it
    posts to /patients/{id}/restrictions, as the GP's form does, and returns here)."""
    ensure_patient(conn, user, patient_id, "record.restrict")
    stored = enrolment.snapshot(conn, patient_id)
    assert stored is not None  # in scope, so it exists
    # What a patient hid is their data too: the access report names who read the list.
    audit.record(
        conn,
        user,
        "patient.restrictions.read",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
    )
    return render(
        request,
        "admin_restrictions.html",
        {"code": stored["code"], "error": None, "patient": stored}
        | restrictions.form_context(conn, patient_id, list(stored["protocols"]), "admin"),
        user=user,
    )
