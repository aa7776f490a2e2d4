"""The JSON API: everything the pages do, for scripts and the pages' own fetch calls."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response

from dashboard import administration, reminders, restrictions, services
from dashboard.authz import Principal, current_user, ensure_patient, require
from dashboard.bands import protocols
from dashboard.databases import Reads, Writes
from dashboard.models import (
    ActionNote,
    AdminRemindersIn,
    EnrolIn,
    Enrolled,
    EpisodeEvent,
    EpisodeItem,
    FindingItem,
    GatewayIn,
    GatewayIssue,
    LowBattery,
    Me,
    MySettings,
    NotificationItem,
    OutcomeIn,
    PatientDetail,
    PatientSummary,
    Registered,
    RemindersIn,
    RemindersOut,
    ResolveIn,
    RestrictionIn,
    RestrictionItem,
    RestrictionRevoke,
    Series,
    SettingsIn,
    StaffIn,
    StaffItem,
    StaffUpdate,
)
from dashboard.routes.list_filters import PatientQuery
from telemon.metrics import MetricKey

router = APIRouter(prefix="/api", tags=["api"])

Id = Annotated[int, Path(ge=1, le=2**62)]
Clinician = Annotated[Principal, Depends(require("clinical.read"))]
Actor = Annotated[Principal, Depends(require("alert.act"))]
Centre = Annotated[Principal, Depends(require("triage.queue"))]


def _invalid(exc: Exception) -> HTTPException:
    return HTTPException(422, str(exc))


@router.get("/me", response_model=Me)
def me(user: Annotated[Principal, Depends(current_user)]) -> Me:
    return Me(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        language=user.language,
        csrf_token=user.csrf_token,
    )


@router.get("/me/settings", response_model=MySettings)
def get_settings(
    user: Annotated[Principal, Depends(require("self.settings"))], conn: Reads
) -> MySettings:
    return services.my_settings(conn, user)


@router.put("/me/settings", response_model=MySettings)
def put_settings(
    user: Annotated[Principal, Depends(require("self.settings"))], conn: Writes, change: SettingsIn
) -> MySettings:
    return services.update_settings(conn, user, change)


@router.get("/triage", response_model=list[EpisodeItem])
def triage(user: Centre, conn: Reads) -> list[EpisodeItem]:
    """One item per open episode (so at most one per patient), its open findings inside."""
    return services.triage_queue(conn, user)


@router.get("/patients", response_model=list[PatientSummary])
def patients(
    response: Response, user: Clinician, conn: Reads, query: PatientQuery
) -> list[PatientSummary]:
    """The list at a glance, the most in need first, one page of it; how many matched in the
    X-Total-Count header (docs/dashboard.md)."""
    found = services.patient_list(conn, user, query)
    response.headers["X-Total-Count"] = str(found.total)
    return found.patients


@router.get("/patients/{patient_id}", response_model=PatientDetail)
def patient(patient_id: Id, user: Clinician, conn: Reads) -> PatientDetail:
    return services.patient_detail(conn, user, patient_id)


@router.put("/patients/{patient_id}/reminders", response_model=RemindersOut)
def patient_reminders(
    patient_id: Id,
    change: RemindersIn,
    user: Annotated[Principal, Depends(require("reminders.manage"))],
    conn: Writes,
) -> RemindersOut:
    """Record (or clear) the opt-out of SMS reminders of a patient of the nurse's centre."""
    return _reminders_out(reminders.set_opt_out(conn, user, patient_id, change.opted_out))


def _reminders_out(status: reminders.ReminderStatus) -> RemindersOut:
    return RemindersOut(
        opted_out=status.opted_out,
        opted_out_at=status.opted_out_at,
        opted_out_by=status.opted_out_by,
        opted_out_via=status.opted_out_via,
    )


@router.get("/patients/{patient_id}/episodes", response_model=list[EpisodeItem])
def patient_episodes(patient_id: Id, user: Clinician, conn: Reads) -> list[EpisodeItem]:
    return services.patient_episodes(conn, user, patient_id)


@router.get("/patients/{patient_id}/series/{metric}", response_model=Series)
def patient_series(
    patient_id: Id,
    metric: MetricKey,
    user: Clinician,
    conn: Reads,
    days: Annotated[int, Query(description="7, 30 or 90")] = 7,
) -> Series:
    try:
        return services.patient_series(conn, user, patient_id, metric, days)
    except services.InvalidPeriod:
        raise HTTPException(422, "days must be 7, 30 or 90") from None


@router.get("/episodes/{episode_id}", response_model=EpisodeItem)
def episode(episode_id: Id, user: Clinician, conn: Reads) -> EpisodeItem:
    return services.episode(conn, user, episode_id)


@router.get("/episodes/{episode_id}/events", response_model=list[EpisodeEvent])
def episode_events(episode_id: Id, user: Clinician, conn: Reads) -> list[EpisodeEvent]:
    """The episode's events and its findings', in time order."""
    return services.episode_events(conn, user, episode_id)


@router.post("/episodes/{episode_id}/claim", response_model=EpisodeItem)
def claim(
    episode_id: Id, user: Actor, conn: Writes, force: Annotated[bool, Query()] = False
) -> EpisodeItem:
    return services.act(conn, user, episode_id, "claim", force=force)


@router.post("/episodes/{episode_id}/outcome", response_model=EpisodeItem)
def outcome(episode_id: Id, user: Actor, conn: Writes, body: OutcomeIn) -> EpisodeItem:
    return services.act(conn, user, episode_id, "outcome", outcome=body.outcome, note=body.note)


@router.post("/episodes/{episode_id}/acknowledge", response_model=EpisodeItem)
def acknowledge(
    episode_id: Id, user: Actor, conn: Writes, body: Annotated[ActionNote | None, Body()] = None
) -> EpisodeItem:
    return services.act(conn, user, episode_id, "acknowledge", note=body.note if body else "")


@router.post("/episodes/{episode_id}/resolve", response_model=EpisodeItem)
def resolve(
    episode_id: Id, user: Actor, conn: Writes, body: Annotated[ResolveIn | None, Body()] = None
) -> EpisodeItem:
    body = body or ResolveIn()
    return services.act(conn, user, episode_id, "resolve", note=body.note, outcome=body.outcome)


@router.post("/episodes/{episode_id}/escalate", response_model=EpisodeItem)
def escalate(
    request: Request,
    episode_id: Id,
    user: Centre,
    conn: Writes,
    body: Annotated[ActionNote | None, Body()] = None,
) -> EpisodeItem:
    return services.act(
        conn,
        user,
        episode_id,
        "escalate",
        note=body.note if body else "",
        notify=request.app.state.notify_settings,
    )


@router.get("/alerts/{alert_id}", response_model=FindingItem)
def finding(alert_id: Id, user: Clinician, conn: Reads) -> FindingItem:
    """One finding, with the episode it belongs to."""
    return services.finding(conn, user, alert_id)


@router.post("/alerts/{alert_id}/resolve", response_model=FindingItem)
def resolve_finding(
    request: Request,
    alert_id: Id,
    user: Actor,
    conn: Writes,
    body: Annotated[ActionNote | None, Body()] = None,
) -> FindingItem:
    """Resolve one finding; its episode resolves with its last open one."""
    return services.resolve_finding(
        conn,
        user,
        alert_id,
        note=body.note if body else "",
        settings=request.app.state.notify_settings,
    )


@router.get("/gateways/offline", response_model=list[GatewayIssue])
def gateways_offline(
    user: Annotated[Principal, Depends(require("devices.read"))], conn: Reads
) -> list[GatewayIssue]:
    return services.offline_gateways(conn, user)


@router.get("/devices/low-battery", response_model=list[LowBattery])
def low_battery(
    user: Annotated[Principal, Depends(require("devices.read"))], conn: Reads
) -> list[LowBattery]:
    return services.low_batteries(conn, user)


@router.get("/notifications/{status}", response_model=list[NotificationItem])
def notifications(
    status: Literal["failed", "outboxed", "cancelled"],
    user: Annotated[Principal, Depends(require("sms.read"))],
    conn: Reads,
) -> list[NotificationItem]:
    return services.notifications(conn, user, status)


Admin = Annotated[Principal, Depends(require("staff.manage"))]
Enroller = Annotated[Principal, Depends(require("patient.enrol"))]


@router.get("/admin/staff", response_model=list[StaffItem])
def staff(user: Admin, conn: Reads) -> list[StaffItem]:
    return administration.list_staff(conn, user)


@router.post("/admin/staff", response_model=StaffItem, status_code=201)
def create_staff(user: Admin, conn: Writes, body: StaffIn) -> StaffItem:
    try:
        return administration.create_staff(conn, user, body)
    except administration.InvalidInput as exc:
        raise _invalid(exc) from None


@router.patch("/admin/staff/{staff_id}", response_model=StaffItem)
def update_staff(staff_id: Id, user: Admin, conn: Writes, body: StaffUpdate) -> StaffItem:
    try:
        return administration.update_staff(conn, user, staff_id, body)
    except administration.InvalidInput as exc:
        raise _invalid(exc) from None
    except LookupError:
        raise HTTPException(404, "no such staff member") from None


@router.get("/admin/protocols", response_model=list[str])
def protocol_names(user: Enroller) -> list[str]:
    return sorted(protocols())


@router.post("/admin/patients", response_model=Enrolled, status_code=201)
def enrol(user: Enroller, conn: Writes, body: EnrolIn) -> Enrolled:
    try:
        return administration.enrol_patient(conn, user, body)
    except administration.InvalidInput as exc:
        raise _invalid(exc) from None


@router.post("/admin/gateways", response_model=Registered, status_code=201)
def register_gateway(user: Enroller, conn: Writes, body: GatewayIn) -> Registered:
    try:
        return administration.register_gateway(conn, user, body)
    except administration.InvalidInput as exc:
        raise _invalid(exc) from None


@router.put("/admin/reminders", response_model=RemindersOut)
def admin_reminders(change: AdminRemindersIn, user: Enroller, conn: Writes) -> RemindersOut:
    """An admin records (or clears) any patient's opt-out of SMS reminders."""
    return _reminders_out(reminders.set_opt_out(conn, user, change.patient_id, change.opted_out))


Restricter = Annotated[Principal, Depends(require("record.restrict"))]


@router.post(
    "/patients/{patient_id}/restrictions", response_model=list[RestrictionItem], status_code=201
)
def record_restriction(
    patient_id: Id, user: Restricter, conn: Writes, body: RestrictionIn
) -> list[RestrictionItem]:
    """Record the patient's request to hide data from everyone but their GP (the GP, or an
    admin of the patient's organisation); the patient's restrictions after it."""
    ensure_patient(conn, user, patient_id, "record.restrict")
    try:
        restrictions.record(conn, user, patient_id, body)
    except restrictions.InvalidRestriction as exc:
        raise _invalid(exc) from None
    return restrictions.list_for(conn, patient_id)


@router.post("/patients/{patient_id}/restrictions/revoke", response_model=list[RestrictionItem])
def revoke_restriction(
    patient_id: Id, user: Restricter, conn: Writes, body: RestrictionRevoke
) -> list[RestrictionItem]:
    """The patient withdrew a request: the data shows again."""
    ensure_patient(conn, user, patient_id, "record.restrict")
    try:
        restrictions.revoke(conn, user, patient_id, body.restriction)
    except LookupError:
        raise HTTPException(404, "no such restriction of this patient") from None
    return restrictions.list_for(conn, patient_id)
