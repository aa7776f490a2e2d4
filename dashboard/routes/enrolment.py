"""Admin pages: enrol a patient with a form, edit it with history, discharge; the kit and the
device card. A refused form is the same page again (422) with each message next to its field."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard import administration, audit, enrolment, kit, period_reports
from dashboard.administration import InvalidInput
from dashboard.authz import Principal, ensure_patient, require
from dashboard.bands import protocols
from dashboard.databases import Reads, Writes
from dashboard.enrolment_form import Errors, parse_enrolment, rule_fields
from dashboard.models import text_problem
from dashboard.web import render
from telemon.device_kinds import DeviceKind

router = APIRouter(prefix="/admin/patients", include_in_schema=False)

Enroller = Annotated[Principal, Depends(require("patient.enrol"))]

PatientId = Annotated[int, Path(ge=1, le=2**62)]


async def _form(request: Request) -> dict[str, list[str]]:
    """The submitted fields. Every value here is shown to staff later (names, reasons, serial
    numbers), so one carrying NUL or a bidirectional control is refused as every other form of
    the dashboard refuses it (the 422 page naming the field), before any field is read."""
    form: dict[str, list[str]] = {}
    for key, value in (await request.form()).multi_items():
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                error = {"loc": ("body", key), "msg": f"text {problem}", "type": "value_error"}
                raise RequestValidationError([error])
            form.setdefault(key, []).append(value)
    return form


def _values(form: dict[str, list[str]]) -> dict[str, str]:
    return {k: v[0] for k, v in form.items() if v}


def _rules(chosen: dict[str, Any]) -> dict[str, list[Any]]:
    """Every protocol's editable rules, with the patient's overrides where it follows it."""
    return {
        name: rule_fields(protocol, chosen.get(name, {}))
        for name, protocol in sorted(protocols().items())
    }


def _form_page(
    request: Request,
    user: Principal,
    conn: psycopg.Connection,
    *,
    patient: dict[str, Any] | None,
    values: dict[str, Any],
    chosen: list[str],
    overrides: dict[str, Any],
    errors: Errors | None = None,
    status_code: int = 200,
    extra: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "enrol.html",
        {
            "patient": patient,
            "values": values,
            "chosen": chosen,
            "rules": _rules(overrides),
            "errors": errors or {},
            "gps": administration.gps(conn, user),
            "teams": administration.care_teams(conn, user),
            "device_kinds": [k.value for k in DeviceKind],
        }
        | (extra or {}),
        user=user,
        status_code=status_code,
    )


@router.get("", response_class=HTMLResponse)
def enrolled(request: Request, user: Enroller, conn: Reads) -> Response:
    rows = enrolment.enrolled_patients(conn, user)
    audit.record(conn, user, "enrolments.read", details={"patients": [r["id"] for r in rows]})
    return render(request, "enrolled.html", {"patients": rows}, user=user)


@router.get("/new", response_class=HTMLResponse)
def new_form(request: Request, user: Enroller, conn: Reads) -> Response:
    values = {"language": "it", "consent_date": date.today().isoformat()}
    return _form_page(request, user, conn, patient=None, values=values, chosen=[], overrides={})


def _overrides_of(form: dict[str, list[str]]) -> dict[str, Any]:
    """The values the admin typed, to show again on a refused form."""
    rules: dict[str, Any] = {}
    for name, protocol in protocols().items():
        rules[name] = {"rules": {}}
        for fields in rule_fields(protocol, {}):
            own: dict[str, Any] = {"reason": _values(form).get(fields.reason_name, "")}
            if fields.bands:
                own["bands"] = [{"value": _values(form).get(b.name, b.value)} for b in fields.bands]
            if fields.every_name and _values(form).get(fields.every_name):
                with contextlib.suppress(ValueError):
                    own["expected_every"] = float(_values(form)[fields.every_name]) * 3600
            rules[name]["rules"][fields.key] = own
    return rules


@router.post("")
async def enrol(request: Request, user: Enroller, conn: Writes) -> Response:
    form = await _form(request)
    new, errors = parse_enrolment(form, protocols(), today=date.today())
    if new is not None:
        try:
            patient_id = enrolment.enrol(conn, user, new)
        except InvalidInput as exc:
            errors = {"form": ("enrol.error.detail", {"detail": str(exc)})}
        else:
            return RedirectResponse(f"/admin/patients/{patient_id}", status_code=303)
    return _form_page(
        request,
        user,
        conn,
        patient=None,
        values=_values(form),
        chosen=form.get("protocol", []),
        overrides=_overrides_of(form),
        errors=errors,
        status_code=422,
    )


def _patient_page(
    request: Request,
    user: Principal,
    conn: psycopg.Connection,
    patient_id: int,
    *,
    form: dict[str, list[str]] | None = None,
    errors: Errors | None = None,
    status_code: int = 200,
) -> Response:
    stored = enrolment.snapshot(conn, patient_id)
    if stored is None:
        return Response("no such patient", status_code=404)
    audit.record(
        conn,
        user,
        "enrolment.read",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
    )
    values = {
        k: ("" if v is None else v.isoformat() if isinstance(v, date) else str(v))
        for k, v in stored.items()
        if k != "protocols"
    }
    return _form_page(
        request,
        user,
        conn,
        patient={"id": patient_id, **stored},
        values=_values(form) if form else values,
        chosen=form.get("protocol", []) if form else list(stored["protocols"]),
        overrides=_overrides_of(form) if form else stored["protocols"],
        errors=errors,
        status_code=status_code,
        extra={
            "history": enrolment.history(conn, patient_id),
            "kit": kit.kit(conn, patient_id),
            # That the closing report exists, who froze it, its hash: never its content.
            "closing": period_reports.closing_record(conn, patient_id),
            "today": date.today().isoformat(),
        },
    )


@router.get("/{patient_id}", response_class=HTMLResponse)
def patient_enrolment(
    request: Request, patient_id: PatientId, user: Enroller, conn: Reads
) -> Response:
    # Another organisation's patient is absent (404), as for anyone out of scope.
    ensure_patient(conn, user, patient_id, "patient.enrol")
    return _patient_page(request, user, conn, patient_id)


@router.post("/{patient_id}")
async def edit(request: Request, patient_id: PatientId, user: Enroller, conn: Writes) -> Response:
    # Another organisation's patient is absent (404), as for anyone out of scope.
    ensure_patient(conn, user, patient_id, "patient.enrol")
    form = await _form(request)
    if enrolment.snapshot(conn, patient_id) is None:
        return Response("no such patient", status_code=404)
    new, errors = parse_enrolment(form, protocols(), today=date.today(), editing=True)
    reason = _values(form).get("change_reason", "").strip()
    if not reason:
        errors["change_reason"] = ("enrol.error.reason", {})
    if new is not None and not errors:
        try:
            enrolment.update(conn, user, patient_id, new, reason)
        except InvalidInput as exc:
            errors = {"form": ("enrol.error.detail", {"detail": str(exc)})}
        else:
            return RedirectResponse(f"/admin/patients/{patient_id}", status_code=303)
    return _patient_page(request, user, conn, patient_id, form=form, errors=errors, status_code=422)


@router.post("/{patient_id}/discharge")
async def discharge(
    request: Request, patient_id: PatientId, user: Enroller, conn: Writes
) -> Response:
    # Another organisation's patient is absent (404), as for anyone out of scope.
    ensure_patient(conn, user, patient_id, "patient.enrol")
    form = _values(await _form(request))
    errors: Errors = {}
    reason = form.get("discharge_reason", "").strip()
    if not reason:
        errors["discharge_reason"] = ("enrol.error.reason", {})
    try:
        on = date.fromisoformat(form.get("discharge_date", ""))
    except ValueError:
        on = None
    if on is None or on > date.today():
        errors["discharge_date"] = ("enrol.error.date", {})
    if enrolment.snapshot(conn, patient_id) is None:
        return Response("no such patient", status_code=404)
    if not errors and on is not None:
        try:
            enrolment.discharge(
                conn,
                user,
                patient_id,
                on=on,
                reason=reason,
                now=datetime.now(UTC),
                public_url=request.app.state.public_url,
            )
        except InvalidInput as exc:
            errors = {"discharge_reason": ("enrol.error.detail", {"detail": str(exc)})}
        else:
            return RedirectResponse(f"/admin/patients/{patient_id}", status_code=303)
    return _patient_page(request, user, conn, patient_id, errors=errors, status_code=422)


@router.post("/{patient_id}/kit")
async def kit_change(
    request: Request, patient_id: PatientId, user: Enroller, conn: Writes
) -> Response:
    """One form per kit action: ``action`` is gateway, device, swap, return (a device) or
    return_gateway (the whole kit); ``target`` the gateway's or device's id."""
    # Another organisation's patient is absent (404), as for anyone out of scope.
    ensure_patient(conn, user, patient_id, "patient.enrol")
    form = _values(await _form(request))
    if enrolment.snapshot(conn, patient_id) is None:
        return Response("no such patient", status_code=404)
    action = form.get("action", "")
    now = datetime.now(UTC)
    errors: Errors = {}
    reason = form.get("reason", "").strip()
    target = form.get("target", "")
    target_id = int(target) if target.isdigit() and int(target) <= 2**62 else 0
    try:
        if action == "gateway":
            kit.assign_gateway(conn, user, patient_id, form.get("code", "").strip())
        elif action in ("device", "swap"):
            device, errors = kit.parse_device(form)
            if action == "swap" and not reason:
                errors["reason"] = ("enrol.error.reason", {})
            if device is not None and not errors:
                if action == "device":
                    kit.assign_device(conn, user, patient_id, target_id, device, now)
                else:
                    kit.swap_device(conn, user, patient_id, target_id, device, reason, now)
        elif action in ("return", "return_gateway"):
            if not reason:
                errors["reason"] = ("enrol.error.reason", {})
            elif action == "return":
                kit.return_device(conn, user, patient_id, target_id, reason, now)
            else:
                kit.return_gateway(conn, user, patient_id, target_id, reason, now)
        else:
            errors["action"] = ("enrol.error.required", {})
    except InvalidInput as exc:
        errors = {"kit": ("enrol.error.detail", {"detail": str(exc)})}
    if errors:
        # The kit's messages name the form they belong to (its action and target).
        scoped = {f"kit:{action}:{target}:{k}": v for k, v in errors.items()}
        scoped["kit"] = errors.get("kit", ("kit.error.form", {}))
        return _patient_page(request, user, conn, patient_id, errors=scoped, status_code=422)
    return RedirectResponse(f"/admin/patients/{patient_id}#kit", status_code=303)


@router.get("/{patient_id}/card", response_class=HTMLResponse)
def device_card(request: Request, patient_id: PatientId, user: Enroller, conn: Reads) -> Response:
    # Another organisation's patient is absent (404), as for anyone out of scope.
    ensure_patient(conn, user, patient_id, "patient.enrol")
    card = kit.device_card(conn, patient_id)
    if card is None:
        return Response("no such patient", status_code=404)
    audit.record(
        conn,
        user,
        "device_card.read",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
    )
    # Printed for the patient: in the patient's language, not the admin's.
    return render(request, "device_card.html", {"card": card}, user=user, language=card["language"])
