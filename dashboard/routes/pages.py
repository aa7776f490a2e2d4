"""The HTML pages of GPs and service-centre nurses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

import psycopg
from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import AfterValidator, ValidationError

from dashboard import (
    charts,
    clinical,
    glance,
    operations,
    period_reports,
    plan,
    reminders,
    restrictions,
    services,
    tags,
)
from dashboard.authz import Principal, current_user, ensure_patient, require
from dashboard.bands import effective_protocol, protocols
from dashboard.databases import Reads, Writes
from dashboard.i18n import translator
from dashboard.models import (
    EpisodeItem,
    RestrictionIn,
    RestrictionRevoke,
    SettingsIn,
    plain_text,
)
from dashboard.routes.list_filters import Page, PatientQuery
from dashboard.web import local, render
from telemon.alert_lifecycle import PersonAction

router = APIRouter(include_in_schema=False)

Id = Annotated[int, Path(ge=1, le=2**62)]
Clinician = Annotated[Principal, Depends(require("clinical.read"))]
Centre = Annotated[Principal, Depends(require("triage.queue"))]
HOME = {"gp": "/patients", "nurse": "/triage", "admin": "/admin", "privacy": "/admin/access-report"}


def safe_next(target: str | None, fallback: str) -> str:
    """A redirect target from a form: a path of ours, never another site."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return fallback


@router.get("/", response_class=HTMLResponse)
def home(user: Annotated[Principal, Depends(current_user)]) -> Response:
    return RedirectResponse(HOME[user.role], status_code=303)


def _triage_context(conn: psycopg.Connection, user: Principal, page: int) -> dict[str, object]:
    queue = services.triage_page(conn, user, page=page)
    return {
        "queue": queue,
        "clinical": queue.clinical,
        "tasks": queue.tasks,
        "query": f"page={queue.page}" if queue.page > 1 else "",
    }


@router.get("/triage", response_class=HTMLResponse)
def triage(request: Request, user: Centre, conn: Reads, page: Page = 1) -> Response:
    context = _triage_context(conn, user, page)
    # Counts only, no patient named: these reads are not audited (the worklist pages are).
    context["offline"] = len(operations.offline_gateways(conn, user))
    context["low_battery"] = len(operations.low_batteries(conn, user))
    context["sms_failed"] = len(operations.notifications(conn, user, "failed"))
    context["sms_outbox"] = len(operations.notifications(conn, user, "outboxed"))
    return render(request, "triage.html", context, user=user)


@router.get("/triage/fragment", response_class=HTMLResponse)
def triage_fragment(request: Request, user: Centre, conn: Reads, page: Page = 1) -> Response:
    return render(request, "_queue.html", _triage_context(conn, user, page), user=user)


def _list_context(
    conn: psycopg.Connection, user: Principal, query: glance.ListQuery
) -> dict[str, object]:
    found = services.patient_list(conn, user, query)
    filters = {"need": query.need, "protocol": query.protocol, "tag": query.tag}
    kept = {k: v for k, v in filters.items() if v}
    if query.per_page != glance.PER_PAGE:
        kept["per_page"] = str(query.per_page)
    return {
        "patients": found.patients,
        "listed": found,
        "filters": filters,
        # The links to the other pages keep the filters (and a chosen page size).
        "page_query": urlencode(kept),
        "query": urlencode(kept | ({"page": str(found.page)} if found.page > 1 else {})),
        "protocol_keys": sorted(protocols()),
        "my_tags": tags.own_tags(conn, user.id) if user.can("patient.tag") else [],
    }


@router.get("/patients", response_class=HTMLResponse)
def patients(request: Request, user: Clinician, conn: Reads, query: PatientQuery) -> Response:
    return render(request, "patients.html", _list_context(conn, user, query), user=user)


@router.get("/patients/fragment", response_class=HTMLResponse)
def patients_fragment(
    request: Request, user: Clinician, conn: Reads, query: PatientQuery
) -> Response:
    return render(request, "_patients.html", _list_context(conn, user, query), user=user)


def _episode_marks(episodes: list[EpisodeItem], t: Callable[..., str]) -> list[charts.EpisodeMark]:
    return [
        charts.EpisodeMark(
            e.opened_at,
            e.resolved_at,
            e.severity,
            f"{t('red') if e.severity == 2 else t('amber')}: {e.reason} ({local(e.opened_at)} – "
            f"{local(e.resolved_at) if e.resolved_at else t('glance.still_open')})",
        )
        for e in episodes
    ]


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient(
    request: Request,
    patient_id: Id,
    user: Clinician,
    conn: Reads,
    days: Annotated[int, Query(description="7, 30 or 90")] = 7,
) -> Response:
    if days not in services.PERIODS:
        raise HTTPException(422, "days must be 7, 30 or 90")
    detail = services.patient_detail(conn, user, patient_id)
    now = datetime.now(UTC)
    t = translator(user.language)
    episodes = services.patient_episodes(conn, user, patient_id)
    marks = _episode_marks(episodes, t)
    chart_list = []
    for key in clinical.charted_metrics(conn, user, patient_id, now=now):
        series = clinical.series(conn, user, patient_id, key, days, now=now, language=user.language)
        svg = charts.render(
            series, now=now, empty_text=t("no_data"), language=user.language, episodes=marks
        )
        chart_list.append((series, svg))
    earlier = clinical.findings_without_episode(conn, user, patient_id)
    metrics = glance.protocol_metrics(
        p for p in (effective_protocol(a.protocol, a.overrides) for a in detail.protocols) if p
    )
    hidden = restrictions.hidden_metrics(conn, user, patient_id)
    latest, _ = glance.latest(
        conn,
        [(patient_id, m) for m in metrics if m not in hidden],
        reader=user,
        now=now,
        language=user.language,
    )
    return render(
        request,
        "patient.html",
        {
            "patient": detail,
            "charts": chart_list,
            "episodes": episodes,
            "earlier": earlier,
            "days": days,
            "latest": latest.get(patient_id, []),
            "plan": plan.plan(detail.protocols, user.language, hidden),
            "tags": tags.own_tags(conn, user.id, patient_id) if user.can("patient.tag") else [],
            "reminders": reminders.status(conn, patient_id),
            "closing": period_reports.closing_record(conn, patient_id),
        }
        | (
            restrictions.form_context(
                conn, patient_id, [a.protocol for a in detail.protocols], "patient"
            )
            if user.can("record.restrict")
            else {}
        ),
        user=user,
    )


@router.post("/patients/{patient_id}/restrictions")
def patient_restrictions(
    patient_id: Id,
    user: Annotated[Principal, Depends(require("record.restrict"))],
    conn: Writes,
    kind: Annotated[str, Form(max_length=20)] = "",
    protocol: Annotated[str, Form(max_length=48)] = "",
    category: Annotated[str, Form(max_length=48)] = "",
    first: Annotated[str, Form(max_length=10)] = "",
    last: Annotated[str, Form(max_length=10)] = "",
    requested_on: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[str, Form(max_length=500)] = "",
    revoke: Annotated[str, Form(max_length=20)] = "",
    back: Annotated[restrictions.Back, Form()] = "patient",
) -> Response:
    """The form on the GP's patient page and the admin's restrictions page
    (templates/_restrictions.html): record a request to hide data, or its withdrawal."""
    ensure_patient(conn, user, patient_id, "record.restrict")
    try:
        if revoke:
            target = RestrictionRevoke.model_validate({"restriction": revoke}).restriction
            restrictions.revoke(conn, user, patient_id, target)
        else:
            new = RestrictionIn.model_validate(
                {
                    "kind": kind,
                    "protocol": protocol or None,
                    "category": category or None,
                    "first": first or None,
                    "last": last or None,
                    "requested_on": requested_on,
                    "reason": reason.strip() or None,
                }
            )
            restrictions.record(conn, user, patient_id, new)
    # Refused: the form's page of reasons (dashboard.security), each naming its field.
    except ValidationError as exc:
        raise RequestValidationError(
            [{"loc": ("body", *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        ) from None
    except restrictions.InvalidRestriction as exc:
        raise RequestValidationError(
            [{"loc": ("body", "kind"), "msg": str(exc), "type": "value_error"}]
        ) from None
    except LookupError:
        raise RequestValidationError(
            [{"loc": ("body", "revoke"), "msg": "no such request in force", "type": "value_error"}]
        ) from None
    return RedirectResponse(
        restrictions.RETURN_TO[back].format(patient_id=patient_id), status_code=303
    )


TagText = Annotated[str, Form(max_length=200)]


@router.post("/patients/{patient_id}/tags")
def patient_tag(
    patient_id: Id,
    user: Annotated[Principal, Depends(require("patient.tag"))],
    conn: Writes,
    tag: TagText = "",
    action: Annotated[tags.TagAction, Form()] = "add",
    next: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    try:
        services.change_tag(conn, user, patient_id, tag, action)
    except tags.InvalidTag as exc:
        raise HTTPException(422, f"tag: {exc}") from exc
    return RedirectResponse(safe_next(next, f"/patients/{patient_id}"), status_code=303)


@router.get("/episodes/{episode_id}", response_class=HTMLResponse)
def episode(request: Request, episode_id: Id, user: Clinician, conn: Reads) -> Response:
    item = services.episode(conn, user, episode_id)
    events = services.episode_events(conn, user, episode_id)
    reasons = {f.id: f.reason for f in item.findings}
    return render(
        request,
        "episode.html",
        {"episode": item, "events": events, "reasons_by_id": reasons},
        user=user,
    )


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert(request: Request, alert_id: Id, user: Clinician, conn: Reads) -> Response:
    """A finding: its episode's page (where links in SMS sent before episodes lead), or, for
    a finding from before episodes that none adopted, the finding alone."""
    item = services.finding(conn, user, alert_id)
    if item.episode_id is not None:
        return RedirectResponse(f"/episodes/{item.episode_id}", status_code=303)
    events = services.finding_events(conn, user, alert_id)
    return render(
        request,
        "finding.html",
        {"finding": item, "events": events, "reasons_by_id": {item.id: item.reason}},
        user=user,
    )


Note = Annotated[str, Form(max_length=2000), AfterValidator(plain_text)]
Next = Annotated[str, Form(max_length=300)]


@router.post("/episodes/{episode_id}/{action}")
def episode_action(
    request: Request,
    episode_id: Id,
    action: PersonAction,
    user: Annotated[Principal, Depends(require("alert.act"))],
    conn: Writes,
    note: Note = "",
    outcome: Annotated[
        Literal["", "reached", "not_reached", "advised", "sent_to_emergency"], Form()
    ] = "",
    next: Next = "",
) -> Response:
    services.act(
        conn,
        user,
        episode_id,
        action,
        note=note,
        outcome=outcome or None,
        notify=request.app.state.notify_settings,
    )
    return RedirectResponse(safe_next(next, f"/episodes/{episode_id}"), status_code=303)


@router.post("/patients/{patient_id}/reminders")
def patient_reminders(
    patient_id: Id,
    user: Annotated[Principal, Depends(require("reminders.manage"))],
    conn: Writes,
    opted_out: Annotated[Literal["yes", "no", ""], Form()] = "",
) -> Response:
    if not opted_out:
        reminders.ensure_in_scope(conn, user, patient_id)  # another centre's patient: 404
        raise HTTPException(422, "opted_out must be yes or no")
    reminders.set_opt_out(conn, user, patient_id, opted_out == "yes")
    return RedirectResponse(f"/patients/{patient_id}", status_code=303)


@router.post("/alerts/{alert_id}/resolve")
def resolve_finding(
    request: Request,
    alert_id: Id,
    user: Annotated[Principal, Depends(require("alert.act"))],
    conn: Writes,
    note: Note = "",
    next: Next = "",
) -> Response:
    item = services.resolve_finding(
        conn, user, alert_id, note=note, settings=request.app.state.notify_settings
    )
    fallback = f"/episodes/{item.episode_id}" if item.episode_id else f"/alerts/{alert_id}"
    return RedirectResponse(safe_next(next, fallback), status_code=303)


@router.get("/equipment", response_class=HTMLResponse)
def equipment(
    request: Request, user: Annotated[Principal, Depends(require("devices.read"))], conn: Reads
) -> Response:
    return render(
        request,
        "equipment.html",
        {
            "gateways": services.offline_gateways(conn, user),
            "batteries": services.low_batteries(conn, user),
            "clocks": services.device_clocks(conn, user),
            "mismatches": services.serial_mismatches(conn, user),
        },
        user=user,
    )


@router.get("/sms", response_class=HTMLResponse)
def sms(
    request: Request, user: Annotated[Principal, Depends(require("sms.read"))], conn: Reads
) -> Response:
    return render(
        request,
        "sms.html",
        {
            "failed": services.notifications(conn, user, "failed"),
            "outbox": services.notifications(conn, user, "outboxed"),
            "cancelled": services.notifications(conn, user, "cancelled"),
            "inbound": services.inbound_messages(conn, user),
        },
        user=user,
    )


Self = Annotated[Principal, Depends(require("self.settings"))]


@router.get("/settings", response_class=HTMLResponse)
def settings_page(request: Request, user: Self, conn: Reads) -> Response:
    return render(
        request,
        "settings.html",
        {"settings": services.my_settings(conn, user), "error": None, "saved": False},
        user=user,
    )


@router.post("/settings", response_class=HTMLResponse)
def save_settings(
    request: Request,
    user: Self,
    conn: Writes,
    language: Annotated[str, Form()] = "",
    phone: Annotated[str, Form(max_length=20)] = "",
    quiet_hours_start: Annotated[str, Form(max_length=8)] = "",
    quiet_hours_end: Annotated[str, Form(max_length=8)] = "",
    amber_digest_at: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    try:
        change = SettingsIn(
            language=language or None,
            phone=phone.strip() or None,
            quiet_hours_start=quiet_hours_start or None,
            quiet_hours_end=quiet_hours_end or None,
            amber_digest_at=amber_digest_at or None,
        )
    except ValidationError as exc:
        error = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        return render(
            request,
            "settings.html",
            {"settings": services.my_settings(conn, user), "error": error, "saved": False},
            user=user,
            status_code=422,
        )
    saved = services.update_settings(conn, user, change)
    fresh = replace(user, language=saved.language)
    return render(
        request, "settings.html", {"settings": saved, "error": None, "saved": True}, user=fresh
    )
