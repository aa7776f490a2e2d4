"""MQTT payloads as the server validates them: pydantic-core, strict, one pass per message.

The gateway makes these payloads from plain dataclasses (:mod:`telemon.payload`,
:mod:`telemon.observation`, :mod:`telemon.time_correction`) and imports no pydantic (issue 19);
the models here declare the same wire shapes with the same bounds, taken from those modules, so
that each bound is written once. tests/test_wire_contract.py pins the two sides together: same
fields and defaults, and whatever the gateway encodes validates here and round-trips.

One function, :func:`decode_observations`, turns an ``obs`` message into observations. A message
whose envelope is unusable raises :class:`PayloadError`; inside a usable envelope each observation
stands alone, so one bad reading is rejected with its reason and its neighbours are kept.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    ValidationError,
    create_model,
)

from telemon.device_kinds import DeviceKind
from telemon.identifier import IDENTIFIER_PATTERN
from telemon.metrics import METRICS, Metric, MetricKey
from telemon.observation import (
    CONTEXT_KEY_PATTERN,
    CONTEXT_MAX,
    CONTEXT_VALUE_MAX,
    CONTEXT_VALUE_PATTERN,
    FLAGS_MAX,
    ID_PATTERN,
    SEQ_LIMIT,
    UNIT_MAX,
    iso_z,
    known_flag,
    wire_item,
)
from telemon.payload import (
    DEVICE_DST_MIN,
    DEVICE_STRING_MAX,
    DEVICE_ZONE_MIN,
    EARLIEST_MEASUREMENT,
    FUTURE_TOLERANCE,
    MAX_BATCH,
    MAX_DEVICES,
    MAX_PAYLOAD_BYTES,
    OBS_VERSIONS,
    PAYLOAD_VERSION,
    PayloadError,
    RejectReason,
)
from telemon.system_id import SYSTEM_ID_PATTERN
from telemon.time_correction import (
    DEVICE_TIME_MAX,
    DEVICE_TIME_PATTERN,
    MINUTES_BOUND,
    SECONDS_MAX,
    SECONDS_MIN,
    TIME_OFFSET_MAX,
    TIME_OFFSET_MIN,
    ZONE_MAX,
    ZONE_PATTERN,
    ClockSource,
    LocalTimeIssue,
    TimeBasis,
)
from telemon.topics import Channel, parse_topic

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
SystemId = Annotated[str, Field(pattern=SYSTEM_ID_PATTERN)]
_Minutes = Annotated[int, Field(ge=-MINUTES_BOUND, le=MINUTES_BOUND, strict=True)]
_Seconds = Annotated[int, Field(ge=SECONDS_MIN, le=SECONDS_MAX, strict=True)]


class TimeCorrectionModel(BaseModel):
    """:class:`telemon.time_correction.TimeCorrection` as the server validates it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    basis: TimeBasis
    device_time: Annotated[
        str | None, Field(max_length=DEVICE_TIME_MAX, pattern=DEVICE_TIME_PATTERN)
    ] = None
    device_zone_min: _Minutes | None = None
    device_dst_min: _Minutes | None = None
    device_time_offset_min: (
        Annotated[int, Field(ge=TIME_OFFSET_MIN, le=TIME_OFFSET_MAX, strict=True)] | None
    ) = None
    zone: Annotated[str | None, Field(max_length=ZONE_MAX, pattern=ZONE_PATTERN)] = None
    utc_offset_min: _Minutes | None = None
    dst: bool | None = None
    ignores_dst: bool = False
    local_issue: LocalTimeIssue | None = None
    clock_offset_s: _Seconds | None = None
    clock_source: ClockSource | None = None
    applied_s: _Seconds = 0

    def wire(self) -> dict[str, object]:
        """The record as it travels and is stored: defaults left out."""
        return self.model_dump(mode="json", exclude_defaults=True)


def _known_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    for flag in flags:
        known_flag(flag)
    return flags


class ObservationItem(BaseModel):
    """A reading as an item of an ``obs`` message, as the server validates it: the gateway's
    :class:`telemon.observation.Observation` but for its identity, which the message's envelope
    carries once for all its items."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Strict: a gateway that sends "seq": true, "value": "97" or a bare epoch number is broken,
    # and guessing what it meant would store a wrong reading without anyone noticing.
    seq: Annotated[int, Field(ge=0, lt=SEQ_LIMIT, strict=True)]
    device_id: Identifier
    patient_id: Identifier
    metric: MetricKey
    value: Annotated[float, Field(allow_inf_nan=False, strict=True)]
    unit: Annotated[str, Field(max_length=UNIT_MAX)]
    measured_at: Annotated[AwareDatetime, Field(strict=True)]
    received_at: Annotated[AwareDatetime | None, Field(strict=True)] = None
    flags: Annotated[
        tuple[str, ...], Field(max_length=FLAGS_MAX), AfterValidator(_known_flags)
    ] = ()
    context: Annotated[
        dict[
            Annotated[str, Field(pattern=CONTEXT_KEY_PATTERN)],
            Annotated[str, Field(max_length=CONTEXT_VALUE_MAX, pattern=CONTEXT_VALUE_PATTERN)],
        ],
        Field(max_length=CONTEXT_MAX),
    ] = Field(default_factory=dict)
    time: TimeCorrectionModel | None = None
    identifier: Annotated[str, Field(pattern=IDENTIFIER_PATTERN)] | None = None

    @property
    def time_from_gateway(self) -> bool:
        return "gateway_time" in self.flags

    def wire_item(self) -> dict[str, object]:
        """This observation as an item of an ``obs`` message (the envelope holds gateway_id)."""
        return wire_item(self)


@dataclass(frozen=True, slots=True)
class RejectedItem:
    index: int
    reason: RejectReason
    detail: str
    item: Any  # the raw item as received, for the dead-letter table


@dataclass(slots=True)
class DecodedMessage:
    gateway_id: str
    sent_at: datetime | None
    observations: list[ObservationItem] = field(default_factory=list)
    rejected: list[RejectedItem] = field(default_factory=list)
    # Earliest and latest measured_at of the valid observations: found once here, because
    # comparing the timestamps pydantic makes costs a method call each.
    span: tuple[datetime, datetime] | None = None


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Annotated[int, Field(strict=True)]
    gateway_id: Identifier
    sent_at: Annotated[AwareDatetime | None, Field(strict=True)] = None
    observations: list[Any]


def _one_of(value: str) -> Any:
    """``Literal[value]`` for a value known only at run time: a type to pydantic, which checks
    it, and a plain value to the type checker, which cannot read a type made from data."""
    return Literal[value]


def _checked_item(metric: Metric) -> type[ObservationItem]:
    """An item of ``metric`` whose unit, plausible range and earliest time pydantic-core checks
    itself, so the common message needs no Python call per item (see :func:`_check`)."""
    return create_model(
        f"ObservationItem[{metric.key}]",
        __base__=ObservationItem,
        metric=(_one_of(metric.key), ...),
        unit=(_one_of(metric.unit), ...),
        value=(
            Annotated[float, Field(ge=metric.plausible_min, le=metric.plausible_max, strict=True)],
            ...,
        ),
        measured_at=(Annotated[AwareDatetime, Field(ge=EARLIEST_MEASUREMENT, strict=True)], ...),
    )


if TYPE_CHECKING:
    # Each checked item is an ObservationItem; which subclass, the message's data decides.
    _CheckedItem = ObservationItem
else:
    _CheckedItem = Annotated[
        Union[tuple(_checked_item(m) for m in METRICS.values())],  # noqa: UP007
        Discriminator("metric"),
    ]


class _TypedEnvelope(_Envelope):
    """The same envelope with every item validated in one pass of pydantic-core.

    A well-formed message (nearly all of them) is checked without a Python-level loop; any
    failure falls back to item-by-item validation, which says precisely what was wrong.
    """

    observations: list[_CheckedItem]


def decode_observations(
    topic: str, payload: bytes, *, now: datetime | None = None
) -> DecodedMessage:
    """Validate an ``obs`` message received on ``topic``.

    Raises :class:`PayloadError` when the envelope is unusable; otherwise returns the valid
    observations and, separately, each rejected item with its reason.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            RejectReason.PAYLOAD_TOO_LARGE,
            f"{len(payload)} bytes, at most {MAX_PAYLOAD_BYTES}",
        )
    try:
        parsed_topic = parse_topic(topic)
    except ValueError as exc:
        raise PayloadError(RejectReason.TOPIC_MISMATCH, str(exc)) from None
    if parsed_topic.channel is not Channel.OBS:
        raise PayloadError(RejectReason.TOPIC_MISMATCH, f"{topic!r} is not an obs topic")
    try:
        envelope: _Envelope = _TypedEnvelope.model_validate_json(payload)
    except ValidationError:
        envelope = _parse_loosely(payload)
    if envelope.v not in OBS_VERSIONS:
        raise PayloadError(RejectReason.UNSUPPORTED_VERSION, _unsupported(envelope.v))
    if envelope.gateway_id != parsed_topic.gateway_id:
        raise PayloadError(
            RejectReason.TOPIC_MISMATCH,
            f"payload gateway_id {envelope.gateway_id!r} differs from the topic's "
            f"{parsed_topic.gateway_id!r}",
        )
    if not envelope.observations:
        raise PayloadError(RejectReason.INVALID_SCHEMA, "observations: empty batch")
    if len(envelope.observations) > MAX_BATCH:
        raise PayloadError(
            RejectReason.BATCH_TOO_LARGE,
            f"{len(envelope.observations)} observations, at most {MAX_BATCH}",
        )
    now = now or datetime.now(UTC)
    message = DecodedMessage(envelope.gateway_id, envelope.sent_at)
    legacy = envelope.v == 1
    if isinstance(envelope, _TypedEnvelope):
        # All that is left to check is the future: once for the latest, item by item only if
        # that fails (or if a version 1 message carries what only version 2 has).
        first, last = _span([item.measured_at for item in envelope.observations])
        if last <= now + FUTURE_TOLERANCE and not (
            legacy
            and any(
                item.time is not None or item.identifier is not None
                for item in envelope.observations
            )
        ):
            message.observations = envelope.observations
            message.span = (first, last)
            return message
        for index, item in enumerate(envelope.observations):
            _keep(message, index, item, _check(item, now, legacy=legacy))
    else:
        for index, item in enumerate(envelope.observations):
            _keep(message, index, item, _decode_item(item, now, legacy=legacy))
    if message.observations:
        message.span = _span([item.measured_at for item in message.observations])
    return message


def _span(times: list[datetime]) -> tuple[datetime, datetime]:
    """Earliest and latest of ``times``. Gateways send items in time order, so one pass usually
    confirms the order and gives both ends: comparing the timestamps pydantic makes costs a
    method call each, and min() then max() would take two passes."""
    if all(a <= b for a, b in pairwise(times)):
        return times[0], times[-1]
    return min(times), max(times)


def _keep(
    message: DecodedMessage,
    index: int,
    item: Any,
    outcome: ObservationItem | tuple[RejectReason, str],
) -> None:
    if isinstance(outcome, ObservationItem):
        message.observations.append(outcome)
    else:
        reason, detail = outcome
        message.rejected.append(
            RejectedItem(index, reason, f"observations[{index}]: {detail}", item)
        )


def _parse_loosely(payload: bytes) -> _Envelope:
    """Parse the envelope only, keeping items raw so each can be judged on its own."""
    try:
        raw = json.loads(payload, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(RejectReason.MALFORMED_JSON, _short(str(exc))) from None
    if isinstance(raw, dict) and "v" in raw:
        version = raw["v"]
        # Hashable first: {"v": {...}} must be a reason, not a TypeError from the set lookup.
        if not (isinstance(version, Hashable) and version in OBS_VERSIONS):
            raise PayloadError(RejectReason.UNSUPPORTED_VERSION, _unsupported(version))
    try:
        return _Envelope.model_validate(raw)
    except ValidationError as exc:
        raise PayloadError(RejectReason.INVALID_SCHEMA, describe_validation_error(exc)) from None


def _unsupported(version: object) -> str:
    spoken = ", ".join(str(v) for v in sorted(OBS_VERSIONS))
    return f"payload version {version!r}, this server speaks {spoken}"


def _decode_item(
    item: Any, now: datetime, *, legacy: bool = False
) -> ObservationItem | tuple[RejectReason, str]:
    if not isinstance(item, dict):
        return RejectReason.INVALID_OBSERVATION, f"expected an object, got {type(item).__name__}"
    if "gateway_id" in item:
        return RejectReason.INVALID_OBSERVATION, "gateway_id belongs to the envelope, not the item"
    key = item.get("metric")
    metric = METRICS.get(key) if isinstance(key, str) else None
    if metric is None:
        return RejectReason.UNKNOWN_METRIC, f"unknown metric {_short(repr(item.get('metric')))}"
    try:
        # Back to JSON, so the item is judged by the same (strict, JSON) rules as the fast path.
        obs = ObservationItem.model_validate_json(json.dumps(item))
    except ValidationError as exc:
        return RejectReason.INVALID_OBSERVATION, describe_validation_error(exc)
    return _check(obs, now, legacy=legacy)


def _check(
    obs: ObservationItem, now: datetime, *, legacy: bool = False
) -> ObservationItem | tuple[RejectReason, str]:
    """The rules a well-typed observation must still meet: unit, plausibility, time."""
    if legacy and obs.time is not None:
        return RejectReason.INVALID_OBSERVATION, "time: a version 2 field in a version 1 message"
    if legacy and obs.identifier is not None:
        return (
            RejectReason.INVALID_OBSERVATION,
            "identifier: a version 2 field in a version 1 message",
        )
    metric = METRICS[obs.metric]
    if obs.unit != metric.unit:
        return (
            RejectReason.WRONG_UNIT,
            f"{metric.key} must be sent in {metric.unit!r}, got {obs.unit!r}",
        )
    if not metric.is_plausible(obs.value):
        return (
            RejectReason.OUT_OF_RANGE,
            f"{metric.key} {obs.value:g} {metric.unit} outside "
            f"[{metric.plausible_min:g}, {metric.plausible_max:g}]",
        )
    if obs.measured_at > now + FUTURE_TOLERANCE:
        return (
            RejectReason.FUTURE_TIMESTAMP,
            f"measured_at {iso_z(obs.measured_at)} is more than "
            f"{int(FUTURE_TOLERANCE.total_seconds() // 60)} min ahead of {iso_z(now)}",
        )
    if obs.measured_at < EARLIEST_MEASUREMENT:
        return (
            RejectReason.IMPLAUSIBLE_TIMESTAMP,
            f"measured_at {iso_z(obs.measured_at)} is before {EARLIEST_MEASUREMENT.date()}: "
            "device clock not set",
        )
    return obs


def describe_validation_error(exc: ValidationError, *, limit: int = 3) -> str:
    """A short, precise account of what was wrong and where."""
    parts = []
    for err in exc.errors()[:limit]:
        location = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{location}: {err['msg']}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- gateway presence --------------------------------------------------------------------------


DeviceString = Annotated[str, Field(min_length=1, max_length=DEVICE_STRING_MAX)]


def _dst_minutes(value: int) -> int:
    if value not in DEVICE_DST_MIN:
        raise ValueError(f"{value} is not one of {', '.join(map(str, DEVICE_DST_MIN))}")
    return value


DeviceDstMinutes = Annotated[int, Field(strict=True), AfterValidator(_dst_minutes)]


class DeviceHealthModel(BaseModel):
    """:class:`telemon.payload.DeviceHealth` as the server validates it."""

    model_config = ConfigDict(extra="forbid")

    device_id: Identifier
    kind: DeviceKind
    battery_pct: int | None = Field(default=None, ge=0, le=100)
    last_seen_at: AwareDatetime | None = None
    last_reading_at: AwareDatetime | None = None
    rssi: int | None = None
    connected: bool = False
    clock_skew_s: int | None = None
    clock_set_at: AwareDatetime | None = None
    clock_set_from_s: int | None = None
    clock_ignores_dst: StrictBool | None = None
    clock_zone_min: (
        Annotated[int, Field(ge=DEVICE_ZONE_MIN[0], le=DEVICE_ZONE_MIN[1], strict=True)] | None
    ) = None
    clock_dst_min: DeviceDstMinutes | None = None
    system_id: SystemId | None = None
    manufacturer_name: DeviceString | None = None
    model_number: DeviceString | None = None
    serial_number: DeviceString | None = None
    firmware_revision: DeviceString | None = None


class GatewayStatusModel(BaseModel):
    """:class:`telemon.payload.GatewayStatus` as the server validates it."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = PAYLOAD_VERSION
    gateway_id: Identifier
    state: Literal["online", "offline"]
    system_id: SystemId | None = None
    version: str | None = None
    started_at: AwareDatetime | None = None
    uptime_s: float | None = Field(default=None, ge=0)
    outbox_depth: int | None = Field(default=None, ge=0)
    outbox_oldest_at: AwareDatetime | None = None
    recoveries: dict[str, int] = Field(default_factory=dict)
    devices: list[DeviceHealthModel] = Field(default_factory=list, max_length=MAX_DEVICES)


def decode_status(topic: str, payload: bytes) -> GatewayStatusModel:
    try:
        parsed_topic = parse_topic(topic)
    except ValueError as exc:
        raise PayloadError(RejectReason.TOPIC_MISMATCH, str(exc)) from None
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(RejectReason.PAYLOAD_TOO_LARGE, f"{len(payload)} bytes")
    try:
        status = GatewayStatusModel.model_validate_json(payload)
    except ValidationError as exc:
        reason = (
            RejectReason.MALFORMED_JSON
            if any(e["type"] == "json_invalid" for e in exc.errors())
            else RejectReason.INVALID_SCHEMA
        )
        raise PayloadError(reason, describe_validation_error(exc)) from None
    if status.gateway_id != parsed_topic.gateway_id:
        raise PayloadError(
            RejectReason.TOPIC_MISMATCH,
            f"payload gateway_id {status.gateway_id!r} differs from the topic's "
            f"{parsed_topic.gateway_id!r}",
        )
    return status
