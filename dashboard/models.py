"""Pydantic models at the API boundary; the HTML pages render the same objects."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CallOutcome = Literal["reached", "not_reached", "advised", "sent_to_emergency"]
AlertState = Literal["open", "acknowledged", "escalated", "resolved"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Me(_Model):
    id: int
    username: str
    display_name: str
    role: Literal["gp", "nurse", "admin"]
    language: str
    csrf_token: str


class AlertItem(_Model):
    id: int
    patient_id: int
    patient_code: str
    patient_name: str
    gp_name: str
    protocol: str
    rule: str
    kind: Literal["clinical", "not_measuring"]
    severity: int
    state: AlertState
    opened_at: datetime
    updated_at: datetime
    metric: str | None
    trigger_value: float | None
    reason: str | None
    claimed_by: str | None
    claimed_at: datetime | None
    outcome: str | None
    resolution_note: str | None
    resolved_at: datetime | None


class LatestValue(_Model):
    metric: str
    value: float
    unit: str
    measured_at: datetime


class PatientSummary(_Model):
    id: int
    code: str
    name: str
    gp_name: str
    protocols: list[str]
    open_alerts: int
    max_severity: int | None
    oldest_alert_at: datetime | None
    latest: list[LatestValue]


class Device(_Model):
    id: int
    kind: str
    manufacturer: str | None
    model: str | None
    battery_pct: int | None
    last_seen_at: datetime | None


class Gateway(_Model):
    id: int
    code: str
    online: bool
    last_seen_at: datetime | None
    offline_since: datetime | None
    outbox_depth: int | None
    devices: list[Device]


class ProtocolAssignment(_Model):
    protocol: str
    overrides: dict[str, object]
    started_at: datetime


class PatientDetail(_Model):
    id: int
    code: str
    given_name: str
    family_name: str
    birth_date: str | None
    sex: str | None
    phone: str | None
    gp_name: str
    enrolled_at: datetime
    protocols: list[ProtocolAssignment]
    gateways: list[Gateway]


class Point(_Model):
    at: datetime
    value: float
    low: float | None = None  # bucket min, on aggregated series
    high: float | None = None  # bucket max
    reliable: bool = True


class BandOut(_Model):
    level: Literal["amber", "red"]
    op: Literal["<", "<=", ">", ">="]
    value: float
    rule: str


class Series(_Model):
    metric: str
    label: str
    unit: str
    days: int
    aggregated: bool
    points: list[Point]
    bands: list[BandOut]


class AlertEvent(_Model):
    at: datetime
    kind: str
    actor: str | None
    from_state: str | None
    to_state: str | None
    note: str | None


class ActionNote(BaseModel):
    note: str = Field(default="", max_length=2000)


class OutcomeIn(BaseModel):
    outcome: CallOutcome
    note: str = Field(default="", max_length=2000)


class ResolveIn(BaseModel):
    note: str = Field(default="", max_length=2000)
    outcome: CallOutcome | None = None


class GatewayIssue(_Model):
    id: int
    code: str
    patient_id: int | None
    patient_name: str | None
    online: bool
    last_seen_at: datetime | None
    offline_since: datetime | None
    outbox_depth: int | None


class LowBattery(_Model):
    device_id: int
    kind: str
    battery_pct: int
    gateway_code: str
    patient_id: int | None
    patient_name: str | None
    last_seen_at: datetime | None


class NotificationItem(_Model):
    id: int
    alert_id: int | None
    patient_id: int | None
    recipient_kind: str
    to_address: str
    body: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime


class SettingsIn(BaseModel):
    language: Literal["it", "en"] | None = None
    phone: str | None = Field(default=None, pattern=r"^(\+[1-9][0-9]{6,14})?$")
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None


class MySettings(_Model):
    language: str
    phone: str | None
    quiet_hours_start: time | None
    quiet_hours_end: time | None


class StaffItem(_Model):
    id: int
    username: str
    display_name: str
    role: str
    phone: str | None
    language: str
    active: bool
    locked: bool


class StaffIn(BaseModel):
    username: str = Field(pattern=r"^[a-z0-9._-]{2,64}$")
    display_name: str = Field(min_length=1, max_length=200)
    role: Literal["gp", "nurse", "admin"]
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    language: Literal["it", "en"] = "it"
    password: str = Field(min_length=10, max_length=200)
    care_team_id: int | None = None


class StaffUpdate(BaseModel):
    role: Literal["gp", "nurse", "admin"] | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=200)


class EnrolIn(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    given_name: str = Field(min_length=1, max_length=200)
    family_name: str = Field(min_length=1, max_length=200)
    birth_date: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")
    sex: Literal["female", "male", "other", "unknown"] | None = None
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    gp_id: int
    care_team_id: int | None = None
    protocol: str
    overrides: dict[str, object] = Field(default_factory=dict)


class Enrolled(_Model):
    id: int
    code: str


class DeviceIn(BaseModel):
    address: str = Field(min_length=1, max_length=64)
    kind: Literal["pulse_oximeter", "blood_pressure", "glucometer", "thermometer", "weight_scale"]
    manufacturer: str | None = None
    model: str | None = None


class GatewayIn(BaseModel):
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    patient_id: int | None = None
    devices: list[DeviceIn] = Field(default_factory=list)


class Registered(_Model):
    id: int
    code: str
    devices: int
