"""Pydantic models at the API boundary; the HTML pages render the same objects."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, time
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from telemon.alert_lifecycle import AlertState, FindingState
from telemon.device_kinds import DeviceKind
from telemon.time_correction import TimeCorrection

CallOutcome = Literal["reached", "not_reached", "advised", "sent_to_emergency"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


# PostgreSQL text cannot hold NUL: a pattern for free-text form fields that bypass the models.
NO_NUL = r"^[^\x00]*$"

# Unicode's bidirectional controls: a right-to-left override makes a name or a note read on a
# colleague's screen otherwise than the characters stored ("Trojan Source"). Text in Arabic or
# Hebrew needs none of them: the characters carry their own direction.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def text_problem(value: object, *, shown: bool = True) -> str | None:
    """Why ``value`` (a string, or the strings in a dict or list) cannot be stored, else None.
    ``shown``: it is text people read, so bidirectional controls are refused too."""
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL characters"
        control = next((c for c in value if c in BIDI_CONTROLS), None) if shown else None
        if control is not None:
            return (
                f"must not contain the bidirectional control character U+{ord(control):04X} "
                f"({unicodedata.name(control)})"
            )
        return None
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    return next((p for v in items if (p := text_problem(v, shown=shown)) is not None), None)


def plain_text(value: str) -> str:
    """Validator of a free-text form field staff fill in (a note, a name)."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"text {problem}")
    return value


class _Input(BaseModel):
    """What clients send: refused here (422) rather than by the database (a 500), or shown
    reordered on a colleague's screen."""

    # Compared, never shown: any character but NUL is the person's own choice.
    _never_shown: ClassVar[frozenset[str]] = frozenset({"password"})

    @model_validator(mode="before")
    @classmethod
    def _plain_text(cls, data: Any) -> Any:
        fields = data.items() if isinstance(data, dict) else [("", data)]
        for name, value in fields:
            problem = text_problem(name) or text_problem(value, shown=name not in cls._never_shown)
            if problem is not None:
                raise ValueError(f"{name}: {problem}" if name else f"text {problem}")
        return data


# A row id that fits a bigint: larger numbers are refused, not passed to PostgreSQL.
RowId = Annotated[int, Field(ge=1, le=2**62)]


def _calendar_date(value: str | None) -> str | None:
    if value is not None:
        date.fromisoformat(value)  # "2024-02-31" matches the pattern but is no date
    return value


def _wall_clock(value: time | None) -> time | None:
    # Quiet hours are local wall-clock times: an offset has no meaning (and PostgreSQL's time
    # column would reject some).
    if value is not None and value.tzinfo is not None:
        raise ValueError("quiet hours are local times, without a UTC offset")
    return value


WallClock = Annotated[time | None, AfterValidator(_wall_clock)]


class Me(_Model):
    id: int
    username: str
    display_name: str
    role: Literal["gp", "nurse", "admin", "privacy"]
    language: str
    csrf_token: str


class FindingItem(_Model):
    """One rule's finding (an ``alerts`` row): its readable reason and the structured values."""

    id: int
    episode_id: int | None
    patient_id: int
    protocol: str
    rule: str
    kind: Literal["clinical", "not_measuring"]
    severity: int
    state: FindingState
    reason: str  # in words, in the reader's language
    rule_title: str | None  # the rule's title in the reader's language
    metric: str | None
    value: float | None
    unit: str | None  # UCUM, of the metric
    display_unit: str | None  # as clinicians write it
    evidence: dict[str, Any] | None  # telemon.findings, as stored
    opened_at: datetime
    reading_at: datetime | None
    resolved_at: datetime | None
    resolution_note: str | None
    # How the gateway made the reading's time (issue 19); None from older gateways.
    reading_time: TimeCorrection | None = None


class EpisodeItem(_Model):
    """A patient's findings open at the same time, and what people did about them."""

    id: int
    patient_id: int
    patient_code: str
    patient_name: str
    gp_name: str
    severity: int
    state: AlertState
    reason: str  # the worst finding's
    task: bool  # every open finding is a not-measuring one: a call task, not a clinical alert
    opened_at: datetime
    updated_at: datetime
    waiting_since: datetime  # the oldest finding nobody acknowledged yet, or the opening
    claimed_by: str | None
    claimed_at: datetime | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    snoozed_until: datetime | None
    escalated_at: datetime | None
    outcome: str | None
    resolution_note: str | None
    resolved_at: datetime | None
    findings: list[FindingItem]
    # Findings the patient asked to hide from the reader (oscuramento, dashboard/restrictions.py):
    # counted, never shown; the reader calls the GP.
    withheld: int = 0


class LatestValue(_Model):
    metric: str
    value: float
    unit: str  # UCUM, for programs
    display_unit: str  # as a clinician writes it, in the reader's language
    measured_at: datetime
    # Against the mean of the week before this reading (hourly rollup); None: no such week.
    trend: Literal["up", "down", "steady"] | None = None


class Adherence(_Model):
    """Days with readings of the protocol's scheduled metric, against the days its schedule
    asked for (since enrolment, if that is later than the window's start). A schedule sparser
    than daily counts its stretches (a weekly series: weeks with a reading, 1 in 7 days, 4 in
    30). An expected count of 0: not yet due (dashboard.report_stats.adherence)."""

    protocol: str
    metric: str
    every_hours: float
    days_7: int
    expected_7: int
    days_30: int
    expected_30: int


class PatientSummary(_Model):
    id: int
    code: str
    name: str
    gp_name: str
    protocols: list[str]
    episode_id: int | None  # the open episode, if any: one badge per patient
    severity: int | None
    episode_opened_at: datetime | None
    task: bool = False  # the open episode is only missing readings (a task, not a clinical one)
    not_measuring: bool = False  # an open "not measuring" finding, whatever the episode
    latest: list[LatestValue]
    last_reading_at: datetime | None = None
    adherence: list[Adherence] = []
    tags: list[str] = []  # the reading GP's own tags only


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
    unit: str  # UCUM, for programs
    display_unit: str  # as a clinician writes it, in the reader's language
    days: int
    aggregated: bool
    points: list[Point]
    bands: list[BandOut]


class EpisodeEvent(_Model):
    """An event of the episode, or of one of its findings (``alert_id`` and ``rule`` set)."""

    at: datetime
    kind: str
    actor: str | None
    from_state: str | None
    to_state: str | None
    note: str | None
    alert_id: int | None
    rule: str | None


class ActionNote(_Input):
    note: str = Field(default="", max_length=2000)


class OutcomeIn(_Input):
    outcome: CallOutcome
    note: str = Field(default="", max_length=2000)


class ResolveIn(_Input):
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


class DeviceClock(_Model):
    """A device whose clock needs a look (issue 19): far off and not settable, or set lately."""

    device_id: int
    kind: str
    gateway_code: str
    patient_id: int | None
    patient_name: str | None
    clock_skew_s: int | None  # as last measured
    clock_set_at: datetime | None  # when the gateway last set it right
    clock_set_from_s: int | None  # and how far off it was then
    set_lately: bool  # within operations.CLOCK_SET_RECENTLY_DAYS
    # What the gateway knows of the clock (migration 0027): it keeps standard time all year, or
    # the zone and DST offset it declares (minutes); None from older gateways.
    clock_ignores_dst: bool | None = None
    clock_zone_min: int | None = None
    clock_dst_min: int | None = None

    @property
    def still_off(self) -> bool:
        return self.clock_skew_s is not None and abs(self.clock_skew_s) > CLOCK_OFF_S


class SerialMismatch(_Model):
    """A device in the home that says it is another unit than the kit records (issue 19): the
    serial its Device Information reports is not the one an admin entered."""

    device_id: int
    kind: str
    address: str
    gateway_code: str
    patient_id: int | None
    patient_name: str | None
    kit_serial: str
    reported_serial: str
    system_id: str | None
    reported_at: datetime | None


# Beyond this the gateway sets a clock where it can (gateway.clock_check, 15 min).
CLOCK_OFF_S = 15 * 60


class NotificationItem(_Model):
    id: int
    episode_id: int | None
    alert_id: int | None
    patient_id: int | None
    recipient_kind: str
    to_address: str
    body: str
    status: str
    attempts: int
    last_error: str | None
    cancel_reason: str | None = None  # why a 'cancelled' one never left
    created_at: datetime
    # Its text names a finding the patient hid from the reader: ``body`` says so instead.
    withheld: bool = False


class InboundItem(_Model):
    """An SMS sent to our number (inbound_sms), and what was made of it."""

    id: int
    received_at: datetime
    from_address: str
    body: str
    patient_id: int | None
    outcome: Literal["opt_out", "opt_in", "unrecognised", "unknown_number"]


class SettingsIn(_Input):
    language: Literal["it", "en"] | None = None
    phone: str | None = Field(default=None, pattern=r"^(\+[1-9][0-9]{6,14})?$")
    quiet_hours_start: WallClock = None
    quiet_hours_end: WallClock = None
    # A GP's daily digest of open amber episodes, instead of an SMS per amber escalation.
    amber_digest_at: WallClock = None


class MySettings(_Model):
    language: str
    phone: str | None
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    amber_digest_at: time | None = None


class StaffItem(_Model):
    id: int
    username: str
    display_name: str
    role: str
    phone: str | None
    language: str
    active: bool
    locked: bool


class StaffIn(_Input):
    username: str = Field(pattern=r"^[a-z0-9._-]{2,64}$")
    display_name: str = Field(min_length=1, max_length=200)
    role: Literal["gp", "nurse", "admin", "privacy"]
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    language: Literal["it", "en"] = "it"
    password: str = Field(min_length=10, max_length=200)
    care_team_id: RowId | None = None


class StaffUpdate(_Input):
    role: Literal["gp", "nurse", "admin", "privacy"] | None = None
    active: bool | None = None
    password: str | None = Field(default=None, min_length=10, max_length=200)


class EnrolIn(_Input):
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    given_name: str = Field(min_length=1, max_length=200)
    family_name: str = Field(min_length=1, max_length=200)
    birth_date: Annotated[
        str | None,
        Field(default=None, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
        AfterValidator(_calendar_date),
    ] = None
    sex: Literal["female", "male", "other", "unknown"] | None = None
    phone: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    gp_id: RowId
    care_team_id: RowId | None = None
    protocol: str
    overrides: dict[str, object] = Field(default_factory=dict)


class Enrolled(_Model):
    id: int
    code: str


class DeviceIn(_Input):
    address: str = Field(min_length=1, max_length=64)
    kind: DeviceKind
    manufacturer: str | None = None
    model: str | None = None


class GatewayIn(_Input):
    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
    patient_id: RowId | None = None
    devices: list[DeviceIn] = Field(default_factory=list)


class Registered(_Model):
    id: int
    code: str
    devices: int


# Patient reminders: the opt-out a nurse or an admin records (dashboard/reminders.py).
class RemindersIn(_Input):
    opted_out: bool


class AdminRemindersIn(RemindersIn):
    patient_id: RowId


class RemindersOut(_Model):
    opted_out: bool
    opted_out_at: datetime | None
    opted_out_by: str | None
    opted_out_via: Literal["staff", "sms"] | None = None


class RestrictionIn(_Input):
    """A patient's request to hide some of their data from everyone but their GP."""

    kind: Literal["protocol", "metric_category", "period"]
    protocol: str | None = Field(default=None, max_length=48)
    category: str | None = Field(default=None, max_length=48)
    first: date | None = None
    last: date | None = None
    requested_on: date
    reason: str | None = Field(default=None, max_length=500)

    # What the kind needs (the protocol, the category, the days) is checked after the patient's
    # scope (dashboard/restrictions.py): a request about a patient out of reach is a 404.


class RestrictionRevoke(_Input):
    restriction: RowId


class RestrictionItem(_Model):
    id: int
    kind: str
    protocol: str | None
    category: str | None
    period_from: datetime | None
    period_to: datetime | None
    requested_on: date
    reason: str | None
    recorded_at: datetime
    recorded_by: str
    revoked_at: datetime | None
    revoked_by: str | None
