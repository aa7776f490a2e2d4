"""What a finding rests on: the structured values behind an alert, one model per rule kind.

The alerts engine builds one of these for each finding it opens or worsens and keeps it in
``alerts.details['evidence']``; the readable reason (``telemon.reasons``), the dashboard's pages,
the SMS and the JSON API all start from it, so a finding reads the same everywhere. Values are in
the metric's canonical unit (``telemon.metrics``); times are UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

Op = Literal["<", "<=", ">", ">="]
Level = Literal[1, 2]  # 1 amber, 2 red
ScoreChannel = Literal["total", "max_parameter"]  # the whole score, or its worst parameter

_Frozen = ConfigDict(frozen=True, extra="forbid")


class _Evidence(BaseModel):
    model_config = _Frozen

    rule: str  # the protocol's rule key
    protocol: str
    level: Level  # the level the finding stands at
    at: datetime | None  # the newest reading behind the values; the evaluation time for "missing"


class Threshold(_Evidence):
    """The newest reading crossed a band: 'SpO2 88 % (≤ 92 %), confermata da 2 misure in 20 min'."""

    kind: Literal["threshold"] = "threshold"
    metric: str  # the channel whose band set the level
    value: float
    # Every channel's newest value, for rules reading several (blood pressure: both pressures).
    values: dict[str, float] = {}
    op: Op
    threshold: float  # the patient's own threshold for the band that matched
    confirmed_by: int = 1  # consecutive readings in band behind the finding
    confirm_span_s: int = 0  # seconds from the first to the last of them
    # Opened on one reading because no second one came within the confirm timeout.
    unconfirmed: bool = False
    confirm_timeout_s: int | None = None


class Trend(_Evidence):
    """A change over a window: 'SpO2 scesa di 3,8 punti in 24 h', 'Peso +2,3 kg in 3 giorni'."""

    kind: Literal["trend"] = "trend"
    metric: str
    change: float  # signed, in the metric's unit, over ``window_s``
    window_s: int
    method: Literal["ols", "theil_sen", "delta"]
    points: int  # readings the change was computed from
    span_s: int  # seconds between the oldest and the newest of them
    op: Op
    threshold: float
    first_value: float | None = None  # method 'delta': the two readings compared
    last_value: float | None = None


class Mean(_Evidence):
    """A windowed mean: 'Media domiciliare 7 giorni 142/88 mmHg (≥ 135/85)'."""

    kind: Literal["aggregate"] = "aggregate"
    metric: str  # the channel whose band set the level
    means: dict[str, float]  # every channel's mean, e.g. systolic and diastolic
    op: Op
    thresholds: dict[str, float]  # per channel, the threshold at the finding's level
    days: int  # the window in days
    days_measured: int  # days with readings counted in the mean


class Parameter(BaseModel):
    model_config = _Frozen

    metric: str
    value: float
    points: int
    age_s: int  # seconds between the reading and the evaluation


class Score(_Evidence):
    """A partial early-warning score: 'NEWS2 parziale 6: SpO2 3, FC 2, T 1 (3 parametri su 5)'."""

    kind: Literal["score"] = "score"
    score: Literal["news2"] = "news2"
    total: int
    on: ScoreChannel  # which band matched
    op: Op
    threshold: float
    parameters: tuple[Parameter, ...]  # those present, in the protocol's order
    of: int  # parameters the protocol's score reads
    min_parameters: int
    spo2_scale: Literal[1, 2] = 1
    supplemental_oxygen: bool = False


class Missing(_Evidence):
    """No reading for too long: 'Nessuna misura di SpO2 da 14 h (attesa ogni 8 h)'."""

    kind: Literal["missing_data"] = "missing_data"
    metric: str
    hours: float | None  # since the newest reliable reading; None: never measured
    op: Op
    threshold: float  # hours
    expected_every_s: int | None = None  # the protocol's measurement interval


Evidence = Annotated[
    Threshold | Trend | Mean | Score | Missing,
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[Evidence] = TypeAdapter(Evidence)


def parse_evidence(data: Any) -> Evidence:
    """The evidence kept as JSON (a dict, or its text), validated into its model."""
    if isinstance(data, str | bytes):
        return _ADAPTER.validate_json(data)
    return _ADAPTER.validate_python(data)


def evidence_json(evidence: Evidence) -> dict[str, Any]:
    return evidence.model_dump(mode="json")


def evidence_in(details: Any) -> Evidence | None:
    """The evidence kept in a finding's ``details``, or None (absent, or of an older shape:
    the reader then falls back to the rule's title rather than failing)."""
    raw = details.get("evidence") if isinstance(details, dict) else None
    if raw is None:
        return None
    try:
        return parse_evidence(raw)
    except ValidationError:
        return None
