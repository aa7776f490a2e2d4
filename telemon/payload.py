"""MQTT payloads: encode on the gateway, validate on the server.

``obs`` messages are at version 2 (each reading may carry its time correction, see
:mod:`telemon.time_correction`, and its stable identifier, see :mod:`telemon.identifier`); the
server still accepts version 1 from older gateways, whose items carry neither. ``status`` and
``config`` are at version 1; ``status`` has since gained optional fields (the gateway's and
each device's identity, issue 19), so an older gateway's status is still a valid one.

One function, :func:`decode_observations`, turns an ``obs`` message into observations. A message
whose envelope is unusable raises :class:`PayloadError`; inside a usable envelope each observation
stands alone, so one bad reading is rejected with its reason and its neighbours are kept.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from itertools import pairwise
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ValidationError,
    create_model,
)

from telemon.device_kinds import DeviceKind
from telemon.metrics import METRICS, Metric
from telemon.observation import Identifier, Observation, ObservationItem, iso_z
from telemon.system_id import SystemId
from telemon.topics import Channel, parse_topic

PAYLOAD_VERSION: Final = 1  # status and config
OBS_VERSION: Final = 2  # what this gateway sends
# What this server reads: version 1 is a version 2 message without time corrections.
OBS_VERSIONS: Final = frozenset({1, 2})
MAX_PAYLOAD_BYTES = 512 * 1024
MAX_BATCH = 1000
FUTURE_TOLERANCE = timedelta(minutes=10)
# Devices with an unset clock report dates around 1970 or 2000; such a reading has no usable time.
EARLIEST_MEASUREMENT = datetime(2010, 1, 1, tzinfo=UTC)


class RejectReason(StrEnum):
    PAYLOAD_TOO_LARGE = "payload_too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_SCHEMA = "invalid_schema"
    UNSUPPORTED_VERSION = "unsupported_version"
    TOPIC_MISMATCH = "topic_mismatch"
    BATCH_TOO_LARGE = "batch_too_large"
    INVALID_OBSERVATION = "invalid_observation"
    UNKNOWN_METRIC = "unknown_metric"
    WRONG_UNIT = "wrong_unit"
    OUT_OF_RANGE = "out_of_range"
    FUTURE_TIMESTAMP = "future_timestamp"
    IMPLAUSIBLE_TIMESTAMP = "implausible_timestamp"
    # Decided by ingest against the store, listed here so that every reason has one name.
    UNKNOWN_GATEWAY = "unknown_gateway"
    PATIENT_NOT_PAIRED = "patient_not_paired"
    DEVICE_NOT_PAIRED = "device_not_paired"


class PayloadError(ValueError):
    """The whole message is unusable."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


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


def encode_observations(
    gateway_id: str, observations: Sequence[Observation], *, sent_at: datetime | None = None
) -> bytes:
    if not observations:
        raise ValueError("an obs message carries at least one observation")
    if len(observations) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} observations per message")
    for obs in observations:
        if obs.gateway_id != gateway_id:
            raise ValueError(f"observation of gateway {obs.gateway_id!r} in {gateway_id!r}'s batch")
    envelope: dict[str, Any] = {"v": OBS_VERSION, "gateway_id": gateway_id}
    if sent_at is not None:
        envelope["sent_at"] = iso_z(sent_at)
    envelope["observations"] = [o.wire_item() for o in observations]
    return json.dumps(envelope, separators=(",", ":"), allow_nan=False).encode()


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


# What Device Information says a device is (issue 19), under the names the gateway reads them
# by (gateway.gatt.device_info). A string longer than this is no identity but a broken device.
DEVICE_STRING_MAX: Final = 128
DeviceString = Annotated[str, Field(min_length=1, max_length=DEVICE_STRING_MAX)]
DEVICE_IDENTITY_FIELDS: Final = (
    "system_id",
    "manufacturer_name",
    "model_number",
    "serial_number",
    "firmware_revision",
)


class DeviceHealth(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: Identifier
    kind: DeviceKind
    battery_pct: int | None = Field(default=None, ge=0, le=100)
    last_seen_at: AwareDatetime | None = None
    last_reading_at: AwareDatetime | None = None
    rssi: int | None = None
    connected: bool = False
    # How far the device's clock is ahead (+) or behind (-) the gateway's, when measured.
    clock_skew_s: int | None = None
    # When the gateway last set the device's clock, and how far off it was before (issue 19).
    clock_set_at: AwareDatetime | None = None
    clock_set_from_s: int | None = None
    # Device Information (DEVICE_IDENTITY_FIELDS); absent: not read, or not exposed.
    system_id: SystemId | None = None
    manufacturer_name: DeviceString | None = None
    model_number: DeviceString | None = None
    serial_number: DeviceString | None = None
    firmware_revision: DeviceString | None = None


class GatewayStatus(BaseModel):
    """The retained ``status`` message; its 'offline' form is the gateway's MQTT last will."""

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = PAYLOAD_VERSION
    gateway_id: Identifier
    state: Literal["online", "offline"]
    # The gateway's EUI-64 (its PHG identity, issue 19); gateways before it sent none.
    system_id: SystemId | None = None
    version: str | None = None
    started_at: AwareDatetime | None = None
    uptime_s: float | None = Field(default=None, ge=0)
    outbox_depth: int | None = Field(default=None, ge=0)
    outbox_oldest_at: AwareDatetime | None = None
    recoveries: dict[str, int] = Field(default_factory=dict)
    devices: list[DeviceHealth] = Field(default_factory=list, max_length=32)

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def offline_will(gateway_id: str) -> bytes:
    return GatewayStatus(gateway_id=gateway_id, state="offline").encode()


def decode_status(topic: str, payload: bytes) -> GatewayStatus:
    try:
        parsed_topic = parse_topic(topic)
    except ValueError as exc:
        raise PayloadError(RejectReason.TOPIC_MISMATCH, str(exc)) from None
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError(RejectReason.PAYLOAD_TOO_LARGE, f"{len(payload)} bytes")
    try:
        status = GatewayStatus.model_validate_json(payload)
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


# --- server to gateway ---------------------------------------------------------------------------


class PairedDevice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: Identifier
    kind: DeviceKind
    patient_id: Identifier
    name: str | None = Field(default=None, max_length=64)


class GatewayConfig(BaseModel):
    """The retained ``config`` message: what the gateway should be paired with.

    ``revision`` only grows; a gateway ignores a config older than the one it applied.
    """

    model_config = ConfigDict(extra="forbid")

    v: Literal[1] = PAYLOAD_VERSION
    gateway_id: Identifier
    revision: int = Field(ge=0)
    devices: list[PairedDevice] = Field(default_factory=list, max_length=32)

    def encode(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()
