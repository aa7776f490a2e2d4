"""Care protocols as data: the rule models, the TOML loader and per-patient overrides.

A protocol is a versioned TOML file under ``alerts/protocols/``. Every rule names the metrics it
reads, how they are summarised (its ``kind``), the severity bands applied to that summary, how
an alert is confirmed, cleared, escalated and snoozed, and where it is routed. Every rule carries
a ``source`` string so that each number can be traced back to a guideline.
"""

from __future__ import annotations

import operator
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from telemon.findings import Op, ScoreChannel
from telemon.metrics import MetricKey

PROTOCOLS_DIR = Path(__file__).with_name("protocols")

LEVELS: Mapping[str, int] = {"amber": 1, "red": 2}
NO_DATA, NONE, AMBER, RED = -1, 0, 1, 2

LOW_OPS: frozenset[str] = frozenset({"<", "<="})
# What each comparison does: on numbers, and element by element on numpy arrays.
COMPARE: Mapping[str, Callable[[Any, Any], Any]] = MappingProxyType(
    {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
)

# "gp_and_centre": clinical alert, SMS to the patient's GP and the service centre's queue.
# "centre": clinical alert the centre's nurses triage first, no SMS.
# "centre_task": "not measuring", a task for the centre only, never an SMS to a GP.
Routing = Literal["gp_and_centre", "centre", "centre_task"]

SCORE_CHANNELS: tuple[ScoreChannel, ...] = ("total", "max_parameter")
NEWS2_PARAMETERS: tuple[MetricKey, ...] = (
    "respiratory_rate",
    "spo2",
    "systolic",
    "pulse_rate",
    "body_temperature",
)

_DURATION_PART = re.compile(r"(\d+)\s*([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> int:
    """Seconds from an int or a string such as ``"90m"``, ``"3d"`` or ``"1d12h"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30m', '2h', '3d'")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION_PART.findall(text)
        if parts and _DURATION_PART.sub("", text).strip() == "":
            return sum(int(n) * _DURATION_UNITS[u] for n, u in parts)
    raise ValueError(
        f"invalid duration {value!r}: use seconds or a string like '30m', '2h', '3d', '1d12h'"
    )


Duration = Annotated[int, BeforeValidator(parse_duration), Field(ge=0)]
PositiveDuration = Annotated[int, BeforeValidator(parse_duration), Field(gt=0)]
_Frozen = ConfigDict(frozen=True, extra="forbid")


class Band(BaseModel):
    """``level`` applies when ``<on> <op> <value>``; ``on`` defaults to the rule's only channel."""

    model_config = _Frozen

    level: Literal["amber", "red"]
    op: Op
    value: float = Field(allow_inf_nan=False)
    on: str | None = None

    @property
    def channel(self) -> str:
        """What the band compares: ``on``, which a rule fills in for each band it holds."""
        if self.on is None:
            raise ValueError("a band has no channel until a rule fills in its 'on'")
        return self.on

    @property
    def severity(self) -> int:
        return LEVELS[self.level]

    @property
    def is_low(self) -> bool:
        return self.op in LOW_OPS


class Confirm(BaseModel):
    """An alert opens after ``count`` consecutive readings in band spanning ``duration``.

    ``timeout``: with ``count`` above 1, a first reading in band that nothing confirms or
    contradicts within this long opens the alert anyway, marked unconfirmed (a red SpO2 reading
    whose second reading never comes must not wait for ever); the next reading then confirms
    it or clears it.
    """

    model_config = _Frozen

    count: int = Field(default=1, ge=1, le=100)
    duration: Duration = 0
    timeout: PositiveDuration = 1800


class _RuleBase(BaseModel):
    model_config = _Frozen

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    title: str = Field(min_length=1)
    # Pages and SMS name a rule in the reader's language; Italian is required, not a fallback.
    title_it: str = Field(min_length=1)
    source: str = Field(min_length=10)
    metrics: tuple[MetricKey, ...] = Field(min_length=1)
    bands: tuple[Band, ...] = Field(min_length=1)
    routing: Routing = "gp_and_centre"
    clear_margin: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    confirm: Confirm = Confirm()
    escalate_after: PositiveDuration = 7200
    snooze_after_ack: Duration = 14400
    enabled: bool = True

    @property
    def channels(self) -> tuple[str, ...]:
        return self.metrics

    @property
    def default_channel(self) -> str | None:
        return self.channels[0] if len(self.channels) == 1 else None

    @field_validator("metrics")
    @classmethod
    def _distinct_metrics(cls, metrics: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(metrics)) != len(metrics):
            raise ValueError("metrics must not repeat")
        return metrics

    @model_validator(mode="after")
    def _check_bands(self) -> _RuleBase:
        channels = self.channels
        bands = []
        for i, band in enumerate(self.bands):
            if band.on is None:
                if self.default_channel is None:
                    raise ValueError(
                        f"bands[{i}]: 'on' is required when the rule has several channels "
                        f"({', '.join(channels)})"
                    )
                band = band.model_copy(update={"on": self.default_channel})
            elif band.on not in channels:
                raise ValueError(
                    f"bands[{i}]: on={band.on!r} is not one of the rule's channels "
                    f"({', '.join(channels)})"
                )
            bands.append(band)
        seen: dict[tuple[str | None, str], int] = {}
        low: dict[str | None, bool] = {}
        for i, band in enumerate(bands):
            if (band.on, band.level) in seen:
                raise ValueError(
                    f"bands[{i}]: a {band.level} band on {band.on!r} is already "
                    f"defined by bands[{seen[band.on, band.level]}]"
                )
            seen[band.on, band.level] = i
            # Hysteresis moves a threshold away from its band; that needs one direction per channel.
            if low.setdefault(band.on, band.is_low) != band.is_low:
                raise ValueError(
                    f"bands[{i}]: bands on {band.on!r} mix low (<, <=) and high (>, >=) "
                    "comparisons; split them into two rules"
                )
        for on in low:
            amber = next((b for b in bands if b.on == on and b.level == "amber"), None)
            red = next((b for b in bands if b.on == on and b.level == "red"), None)
            if (
                amber
                and red
                and (red.value > amber.value if red.is_low else red.value < amber.value)
            ):
                raise ValueError(f"bands on {on!r}: the red band must be beyond the amber band")
        # Filling in ``on`` here keeps every later consumer free of the single-channel default.
        object.__setattr__(self, "bands", tuple(bands))
        if self.routing == "centre_task" and getattr(self, "kind", None) != "missing_data":
            raise ValueError("routing 'centre_task' is reserved for missing_data rules")
        return self


class ThresholdRule(_RuleBase):
    """Bands on the latest reliable reading of each metric within ``lookback``."""

    kind: Literal["threshold"]
    lookback: PositiveDuration = 86400


class TrendRule(_RuleBase):
    """Bands on the change over ``window``: fitted slope × window, or last minus first reading.

    The window ends at the patient's newest reading, which must lie within ``window`` of now,
    and takes in every reading at most ``window`` older than it (a weighing exactly three days
    before today's is compared with it, however late the engine sees today's). ``remeasure``:
    a reading followed within this long by another is taken as re-measured and left out, so a
    wrong reading the patient repeated at once moves no trend.
    """

    kind: Literal["trend"]
    window: PositiveDuration
    method: Literal["ols", "theil_sen", "delta"] = "ols"
    min_points: int = Field(default=3, ge=2)
    min_span: Duration = 0
    max_points: int = Field(default=32, ge=2, le=64)
    remeasure: Duration = 0

    @model_validator(mode="after")
    def _span_within_window(self) -> TrendRule:
        if self.min_span > self.window:
            raise ValueError("min_span must not exceed window")
        if self.remeasure >= self.window:
            raise ValueError("remeasure must be shorter than window")
        return self


class AggregateRule(_RuleBase):
    """Bands on the mean of readings taken in ``sessions`` over the last ``days`` local days."""

    kind: Literal["aggregate"]
    days: int = Field(ge=1, le=60)
    timezone: str = "Europe/Rome"
    sessions: tuple[tuple[int, int], ...] = Field(default=((0, 24),), min_length=1)
    discard_first_day: bool = False
    min_days: int = Field(default=1, ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("sessions")
    @classmethod
    def _valid_sessions(cls, sessions: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        for start, end in sessions:
            if not 0 <= start < end <= 24:
                raise ValueError(f"session [{start}, {end}] must satisfy 0 <= start < end <= 24")
        return sessions

    @model_validator(mode="after")
    def _enough_days(self) -> AggregateRule:
        if self.min_days > self.days - self.discard_first_day:
            raise ValueError("min_days exceeds the days left in the window")
        return self


class ScoreRule(_RuleBase):
    """Partial NEWS2 over the parameters measured within ``lookback``.

    Bands apply to the ``total`` score or to ``max_parameter``, the highest single-parameter score.
    """

    kind: Literal["score"]
    score: Literal["news2"] = "news2"
    metrics: tuple[MetricKey, ...] = NEWS2_PARAMETERS
    lookback: PositiveDuration = 21600
    min_parameters: int = Field(default=3, ge=1, le=len(NEWS2_PARAMETERS))
    spo2_scale: Literal[1, 2] = 1
    supplemental_oxygen: bool = False

    @property
    def channels(self) -> tuple[ScoreChannel, ...]:
        return SCORE_CHANNELS

    @property
    def default_channel(self) -> str | None:
        return "total"

    @field_validator("metrics")
    @classmethod
    def _news2_parameters(cls, metrics: tuple[str, ...]) -> tuple[str, ...]:
        extra = set(metrics) - set(NEWS2_PARAMETERS)
        if extra:
            raise ValueError(f"NEWS2 does not score {sorted(extra)}")
        return metrics


class MissingDataRule(_RuleBase):
    """Bands on the hours since the latest reliable reading of each metric, or since the start
    of the patient's enrolment when that is later (``inf``: neither is known).

    Nothing is due before the first reading was: until ``expected_every`` plus ``grace`` after
    the enrolment started the rule has no value (no data), so a patient enrolled a minute ago
    is not "not measuring".
    """

    kind: Literal["missing_data"]
    routing: Routing = "centre_task"
    # The protocol's measurement interval: how often a reading is expected. The bands count
    # hours since the newest reading; this says what the patient was asked to do, in words.
    expected_every: PositiveDuration | None = None
    # How late the first reading after enrolment may be before the bands apply.
    grace: Duration = 0

    @model_validator(mode="after")
    def _routed_to_centre(self) -> MissingDataRule:
        if self.routing != "centre_task":
            raise ValueError("a missing_data rule must be routed as 'centre_task', not to the GP")
        if any(b.is_low for b in self.bands):
            raise ValueError("missing_data bands compare hours since the last reading with > or >=")
        return self


AnyRule = ThresholdRule | TrendRule | AggregateRule | ScoreRule | MissingDataRule
Rule = Annotated[AnyRule, Field(discriminator="kind")]

RuleKind = TypeVar("RuleKind", bound=AnyRule)


def of_kind(rule: AnyRule, kind: type[RuleKind]) -> RuleKind:
    """``rule`` as the kind it is, for the code of that kind (chosen by ``rule.kind``), which
    reads the kind's own fields: another kind here is a bug."""
    if not isinstance(rule, kind):
        raise TypeError(f"rule {rule.key!r} is a {rule.kind} rule, not a {kind.__name__}")
    return rule


Recipient = Literal["gp", "duty_phone"]

# A GP hears of one episode at most this many times at each alert level (its opening SMS, when
# red, and the escalation steps to "gp"): SMS that repeat are SMS that stop being read.
MAX_GP_SMS_PER_LEVEL = 2


class EscalationStep(BaseModel):
    """Text ``to`` when an episode is still unacknowledged ``after`` the previous step (or the
    moment it reached its level); ``every``: repeat until someone acknowledges, at most
    ``times`` times in all (None: no bound)."""

    model_config = _Frozen

    after: PositiveDuration
    to: Recipient
    every: PositiveDuration | None = None
    times: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _times_repeat(self) -> EscalationStep:
        if self.times is not None and self.every is None:
            raise ValueError("'times' bounds a repeating step: give it 'every' too")
        return self


def _default_chain(level: str) -> tuple[EscalationStep, ...]:
    if level == "red":
        return (
            EscalationStep(after=1800, to="gp"),
            # A day of hourly reminders; then the episode waits in the queue, where it is red.
            EscalationStep(after=1800, to="duty_phone", every=3600, times=24),
        )
    return (EscalationStep(after=14400, to="gp"),)


class Escalation(BaseModel):
    """The finite chain an unacknowledged episode climbs, per alert level.

    Red: the GP and the duty phone hear of it at once (not a step); defaults remind the GP once,
    then the duty phone, staffed around the clock, every hour until someone acknowledges, for a
    day at most. Amber:
    the queue only; the GP once if nobody acknowledged it. An acknowledgement stops the chain; a
    worse level starts that level's chain from its first step.
    """

    model_config = _Frozen

    amber: tuple[EscalationStep, ...] = Field(default_factory=lambda: _default_chain("amber"))
    red: tuple[EscalationStep, ...] = Field(default_factory=lambda: _default_chain("red"))

    @model_validator(mode="after")
    def _finite_for_gps(self) -> Escalation:
        for level in ("amber", "red"):
            steps: tuple[EscalationStep, ...] = getattr(self, level)
            for i, step in enumerate(steps):
                if step.every is not None and i != len(steps) - 1:
                    raise ValueError(f"{level}[{i}]: only the last step may repeat ('every')")
                if step.every is not None and step.to == "gp":
                    raise ValueError(f"{level}[{i}]: a step to the GP must not repeat")
            opening = 1 if level == "red" else 0
            to_gp = opening + sum(step.to == "gp" for step in steps)
            if to_gp > MAX_GP_SMS_PER_LEVEL:
                raise ValueError(
                    f"{level}: the GP would get {to_gp} SMS for one episode "
                    f"(at most {MAX_GP_SMS_PER_LEVEL}, counting a red episode's opening SMS)"
                )
        return self

    def chain(self, level: int) -> tuple[EscalationStep, ...]:
        return self.red if level == RED else self.amber if level == AMBER else ()


class Protocol(BaseModel):
    model_config = _Frozen

    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,47}$")
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    title: str = Field(min_length=1)
    title_it: str = Field(min_length=1)
    description: str = ""
    rules: tuple[Rule, ...] = Field(min_length=1)
    escalation: Escalation = Escalation()

    @field_validator("rules")
    @classmethod
    def _unique_keys(cls, rules: tuple[AnyRule, ...]) -> tuple[AnyRule, ...]:
        keys = [r.key for r in rules]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule keys {duplicates}")
        return rules

    def rule(self, key: str) -> AnyRule:
        for rule in self.rules:
            if rule.key == key:
                return rule
        raise KeyError(f"protocol {self.key!r} has no rule {key!r}")


def rule_title(rule: AnyRule | Protocol, language: str) -> str:
    """A rule's (or a protocol's) title in the reader's language: 'Saturazione bassa'."""
    return rule.title_it if language == "it" else rule.title


class RuleOverride(BaseModel):
    """What a GP may change for one patient; structure (metrics, windows, kind) stays fixed."""

    model_config = _Frozen

    enabled: bool | None = None
    bands: tuple[Band, ...] | None = None
    clear_margin: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    confirm: Confirm | None = None
    escalate_after: PositiveDuration | None = None
    snooze_after_ack: Duration | None = None
    spo2_scale: Literal[1, 2] | None = None
    supplemental_oxygen: bool | None = None
    # A missing_data rule's measurement interval: the patient's own schedule (enrolment form).
    expected_every: PositiveDuration | None = None
    reason: str = ""


class PatientOverride(BaseModel):
    model_config = _Frozen

    rules: dict[str, RuleOverride] = Field(default_factory=dict)


class ProtocolError(ValueError):
    """A protocol or override failed validation; ``errors`` are ``file: rule: field: message``."""

    def __init__(self, origin: str, errors: list[str]) -> None:
        self.origin = origin
        self.errors = errors
        super().__init__(f"{origin}: invalid protocol\n  " + "\n  ".join(errors))


def _describe(origin: str, raw: Mapping[str, Any], error: ErrorDetails) -> str:
    loc = list(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        index = loc[1]
        rules = raw.get("rules")
        key = None
        if isinstance(rules, list) and index < len(rules) and isinstance(rules[index], dict):
            key = rules[index].get("key")
        where = f"rule {key!r} (rules[{index}])" if key else f"rules[{index}]"
        # Drop the discriminator tag pydantic inserts after the index.
        loc = loc[3:] if len(loc) > 2 and loc[2] in _KINDS else loc[2:]
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        loc = [*loc, "kind"]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    message = error["msg"].removeprefix("Value error, ")
    parts = [origin, where, f"field {field}" if field else "", message]
    return ": ".join(p for p in parts if p)


def _echo(error: ErrorDetails, errors: list[ErrorDetails]) -> bool:
    """A tuple whose item failed also fails its min_length; that echo only adds noise."""
    loc = tuple(error["loc"])
    return error["type"] == "too_short" and any(
        len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors
    )


_KINDS = ("threshold", "trend", "aggregate", "score", "missing_data")
_protocol_adapter = TypeAdapter(Protocol)


def parse_protocol(raw: Mapping[str, Any], origin: str = "<protocol>") -> Protocol:
    """Validate a decoded protocol document; errors name the origin, rule and field."""
    try:
        return _protocol_adapter.validate_python(raw)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not _echo(e, exc.errors())]
        raise ProtocolError(origin, [_describe(origin, raw, e) for e in errors]) from None


def load_protocol(path: str | Path) -> Protocol:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(str(path), [f"{path}: TOML syntax: {exc}"]) from None
    protocol = parse_protocol(raw, str(path))
    if protocol.key != path.stem:
        raise ProtocolError(
            str(path), [f"{path}: field key: {protocol.key!r} must match the file name"]
        )
    return protocol


def load_protocols(directory: str | Path = PROTOCOLS_DIR) -> dict[str, Protocol]:
    return {p.stem: load_protocol(p) for p in sorted(Path(directory).glob("*.toml"))}


def apply_override(protocol: Protocol, override: PatientOverride | None) -> Protocol:
    """The protocol as it applies to one patient, validated again as a whole."""
    if override is None or not override.rules:
        return protocol
    unknown = sorted(set(override.rules) - {r.key for r in protocol.rules})
    if unknown:
        raise ProtocolError(
            f"override of {protocol.key}",
            [f"override of {protocol.key}: rule {k!r}: no such rule" for k in unknown],
        )
    raw = protocol.model_dump(mode="python")
    raw["rules"] = list(raw["rules"])
    for index, rule in enumerate(protocol.rules):
        change = override.rules.get(rule.key)
        if change is None:
            continue
        updates = change.model_dump(exclude_none=True, exclude={"reason"})
        score_only = [f for f in ("spo2_scale", "supplemental_oxygen") if f in updates]
        if score_only and rule.kind != "score":
            origin = f"override of {protocol.key}"
            raise ProtocolError(
                origin,
                [f"{origin}: rule {rule.key!r}: field {score_only[0]}: only score rules have it"],
            )
        if "expected_every" in updates and rule.kind != "missing_data":
            origin = f"override of {protocol.key}"
            raise ProtocolError(
                origin,
                [f"{origin}: rule {rule.key!r}: field expected_every: only missing_data rules"],
            )
        raw["rules"][index] = {**raw["rules"][index], **updates}
    return parse_protocol(raw, f"override of {protocol.key}")
