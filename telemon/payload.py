"""MQTT payloads as the gateway makes them: their versions, bounds and encoding.

``obs`` messages are at version 2 (each reading may carry its time correction, see
:mod:`telemon.time_correction`, and its stable identifier, see :mod:`telemon.identifier`); the
server still accepts version 1 from older gateways, whose items carry neither. ``status`` and
``config`` are at version 1; ``status`` has since gained optional fields (the gateway's and
each device's identity, issue 19), so an older gateway's status is still a valid one.

Nothing here imports pydantic: the home gateway runs without it (issue 19). The values it sends
and reads are frozen dataclasses checked when made (:mod:`telemon.checks`); the server validates
what arrives with pydantic-core in :mod:`telemon.payload_schema`, against the same bounds, which
are declared here once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any, Final, Literal

from telemon.checks import (
    InvalidValue,
    Rule,
    aware_datetime,
    boolean,
    check_fields,
    from_json,
    instance_of,
    integer,
    mapping_of,
    member,
    number,
    one_of,
    optional,
    text,
    tuple_of,
)
from telemon.device_kinds import DeviceKind
from telemon.observation import ID_PATTERN, Observation, iso_z
from telemon.system_id import SYSTEM_ID_PATTERN

PAYLOAD_VERSION: Final = 1  # status and config
OBS_VERSION: Final = 2  # what this gateway sends
# What this server reads: version 1 is a version 2 message without time corrections.
OBS_VERSIONS: Final = frozenset({1, 2})
MAX_PAYLOAD_BYTES = 512 * 1024
MAX_BATCH = 1000
FUTURE_TOLERANCE = timedelta(minutes=10)
# Devices with an unset clock report dates around 1970 or 2000; such a reading has no usable time.
EARLIEST_MEASUREMENT = datetime(2010, 1, 1, tzinfo=UTC)
# Devices in one status or one config message.
MAX_DEVICES: Final = 32
DEVICE_NAME_MAX: Final = 64


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


def wire_form(value: Any) -> Any:
    """A payload's dataclass as JSON values, its None fields left out (they are the defaults)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: wire_form(v) for f in fields(value) if (v := getattr(value, f.name)) is not None
        }
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [wire_form(v) for v in value]
    if isinstance(value, Mapping):
        return {k: wire_form(v) for k, v in value.items()}
    return value


def _encode(value: Any) -> bytes:
    return json.dumps(wire_form(value), separators=(",", ":"), allow_nan=False).encode()


# --- gateway presence --------------------------------------------------------------------------


# What Device Information says a device is (issue 19), under the names the gateway reads them
# by (gateway.gatt.device_info). A string longer than this is no identity but a broken device.
DEVICE_STRING_MAX: Final = 128
DEVICE_IDENTITY_FIELDS: Final = (
    "system_id",
    "manufacturer_name",
    "model_number",
    "serial_number",
    "firmware_revision",
)
# A device's own zone and DST offset, as its Local Time Information (0x2A0F) can declare them:
# a zone of -12:00..+14:00 in 15-minute steps, and standard, +1/2 h, +1 h or +2 h of DST.
DEVICE_ZONE_MIN: Final = (-12 * 60, 14 * 60)
DEVICE_DST_MIN: Final = (0, 30, 60, 120)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceHealth:
    device_id: str
    kind: DeviceKind
    battery_pct: int | None = None
    last_seen_at: datetime | None = None
    last_reading_at: datetime | None = None
    rssi: int | None = None
    connected: bool = False
    # How far the device's clock is ahead (+) or behind (-) the gateway's, when measured.
    clock_skew_s: int | None = None
    # When the gateway last set the device's clock, and how far off it was before (issue 19).
    clock_set_at: datetime | None = None
    clock_set_from_s: int | None = None
    # The clock keeps standard time all year (True, learnt in summer) or follows DST (False);
    # None: not known yet, or the device declares its offsets instead (issue 19).
    clock_ignores_dst: bool | None = None
    # The zone and DST offset the device declares (Local Time Information), in minutes;
    # None: it declares none (its clock is read in the patient's zone) or was not read yet.
    clock_zone_min: int | None = None
    clock_dst_min: int | None = None
    # Device Information (DEVICE_IDENTITY_FIELDS); absent: not read, or not exposed.
    system_id: str | None = None
    manufacturer_name: str | None = None
    model_number: str | None = None
    serial_number: str | None = None
    firmware_revision: str | None = None

    def __post_init__(self) -> None:
        check_fields(self, _DEVICE_HEALTH)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayStatus:
    """The retained ``status`` message; its 'offline' form is the gateway's MQTT last will."""

    v: Literal[1] = PAYLOAD_VERSION
    gateway_id: str
    state: Literal["online", "offline"]
    # The gateway's EUI-64 (its PHG identity, issue 19); gateways before it sent none.
    system_id: str | None = None
    version: str | None = None
    started_at: datetime | None = None
    uptime_s: float | None = None
    outbox_depth: int | None = None
    outbox_oldest_at: datetime | None = None
    recoveries: Mapping[str, int] = field(default_factory=dict)
    devices: tuple[DeviceHealth, ...] = ()

    def __post_init__(self) -> None:
        check_fields(self, _GATEWAY_STATUS)

    def encode(self) -> bytes:
        return _encode(self)


def offline_will(gateway_id: str) -> bytes:
    return GatewayStatus(gateway_id=gateway_id, state="offline").encode()


_identifier = text(pattern=ID_PATTERN)
_system_id = optional(text(pattern=SYSTEM_ID_PATTERN))
_device_string = optional(text(min_length=1, max_length=DEVICE_STRING_MAX))
_DEVICE_HEALTH: dict[str, Rule] = {
    "device_id": _identifier,
    "kind": member(DeviceKind),
    "battery_pct": optional(integer(ge=0, le=100)),
    "last_seen_at": optional(aware_datetime),
    "last_reading_at": optional(aware_datetime),
    "rssi": optional(integer()),
    "connected": boolean,
    "clock_skew_s": optional(integer()),
    "clock_set_at": optional(aware_datetime),
    "clock_set_from_s": optional(integer()),
    "clock_ignores_dst": optional(boolean),
    "clock_zone_min": optional(integer(ge=DEVICE_ZONE_MIN[0], le=DEVICE_ZONE_MIN[1])),
    "clock_dst_min": optional(one_of(*DEVICE_DST_MIN)),
    "system_id": _system_id,
    **{name: _device_string for name in DEVICE_IDENTITY_FIELDS if name != "system_id"},
}
_GATEWAY_STATUS: dict[str, Rule] = {
    "v": one_of(PAYLOAD_VERSION),
    "gateway_id": _identifier,
    "state": one_of("online", "offline"),
    "system_id": _system_id,
    "version": optional(text()),
    "started_at": optional(aware_datetime),
    "uptime_s": optional(number(ge=0)),
    "outbox_depth": optional(integer(ge=0)),
    "outbox_oldest_at": optional(aware_datetime),
    "recoveries": mapping_of(text(), integer(), max_length=None),
    "devices": tuple_of(instance_of(DeviceHealth), max_length=MAX_DEVICES),
}


# --- server to gateway ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PairedDevice:
    address: str
    kind: DeviceKind
    patient_id: str
    name: str | None = None

    def __post_init__(self) -> None:
        check_fields(self, _PAIRED_DEVICE)

    def wire(self) -> dict[str, object]:
        return wire_form(self)  # type: ignore[no-any-return]

    @classmethod
    def from_wire(cls, data: object) -> PairedDevice:
        return from_json(cls, data)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """The retained ``config`` message: what the gateway should be paired with.

    ``revision`` only grows; a gateway ignores a config older than the one it applied.
    """

    v: Literal[1] = PAYLOAD_VERSION
    gateway_id: str
    revision: int
    devices: tuple[PairedDevice, ...] = ()

    def __post_init__(self) -> None:
        check_fields(self, _GATEWAY_CONFIG)

    def encode(self) -> bytes:
        return _encode(self)

    @classmethod
    def decode(cls, payload: bytes | bytearray) -> GatewayConfig:
        """The config in a message, or :class:`telemon.checks.InvalidValue` saying what is wrong."""
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError) as error:
            raise InvalidValue(cls.__name__, [("(root)", f"not JSON: {error}")]) from None
        return from_json(cls, data, _CONFIG_DECODERS)


_PAIRED_DEVICE: dict[str, Rule] = {
    "address": _identifier,
    "kind": member(DeviceKind),
    "patient_id": _identifier,
    "name": optional(text(max_length=DEVICE_NAME_MAX)),
}
_GATEWAY_CONFIG: dict[str, Rule] = {
    "v": one_of(PAYLOAD_VERSION),
    "gateway_id": _identifier,
    "revision": integer(ge=0),
    "devices": tuple_of(instance_of(PairedDevice), max_length=MAX_DEVICES),
}
_CONFIG_DECODERS: dict[str, Rule] = {
    "devices": tuple_of(PairedDevice.from_wire, max_length=MAX_DEVICES),
}
