"""The ``Observation``: one measured value of one metric, as the gateway builds and sends it.

A plain frozen dataclass whose fields are checked when it is made (telemon.checks): the gateway
imports no pydantic (issue 19). The server validates the same item with pydantic-core in one pass
per message (telemon.payload_schema.ObservationItem); tests/test_wire_contract.py keeps the two
in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from telemon.checks import (
    Rule,
    aware_datetime,
    check_fields,
    from_json,
    instance_of,
    integer,
    json_datetime,
    mapping_of,
    number,
    one_of,
    optional,
    text,
    tuple_of,
)
from telemon.flags import FLAGS
from telemon.identifier import IDENTIFIER_PATTERN
from telemon.metrics import METRICS, MetricKey
from telemon.time_correction import TimeCorrection

# A gateway's, device's or patient's code as it travels.
ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
# (gateway_id, seq) names an observation once; seq fits PostgreSQL's bigint.
SEQ_LIMIT: Final = 2**63
UNIT_MAX: Final = 16
FLAGS_MAX: Final = 32
CONTEXT_MAX: Final = 16
CONTEXT_KEY_PATTERN: Final = r"^[a-z][a-z0-9_]{0,31}$"
CONTEXT_VALUE_MAX: Final = 64
# No control characters: a NUL would make PostgreSQL refuse the whole batch (jsonb).
CONTEXT_VALUE_PATTERN: Final = r"^[^\x00-\x1f\x7f]*$"


def known_flag(flag: Any) -> str:
    if flag not in FLAGS:
        raise ValueError(f"unknown flag {flag!r}")
    return str(flag)


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """A reading after the gateway has decoded it and attached its identity.

    ``seq`` is the gateway's own monotonically increasing counter: (gateway_id, seq) names an
    observation exactly once, so a redelivered message is recognised and ignored.
    """

    gateway_id: str
    seq: int
    device_id: str
    patient_id: str
    metric: MetricKey
    value: float
    unit: str
    measured_at: datetime
    received_at: datetime | None = None
    flags: tuple[str, ...] = ()
    context: Mapping[str, str] = field(default_factory=dict)
    # How measured_at was derived from the device's stamp (contract v2).
    time: TimeCorrection | None = None
    # The record's stable name (telemon.identifier; contract v2, None without a device stamp):
    # the same record uploaded again, by this gateway or a reinstalled one, is stored once.
    identifier: str | None = None

    def __post_init__(self) -> None:
        check_fields(self, _RULES)

    @property
    def time_from_gateway(self) -> bool:
        return "gateway_time" in self.flags

    def wire_item(self) -> dict[str, object]:
        """This observation as an item of an ``obs`` message (the envelope holds gateway_id)."""
        return wire_item(self)

    @classmethod
    def from_wire_item(cls, item: object, gateway_id: str) -> Observation:
        """An item of an ``obs`` message back into its observation (the outbox keeps items)."""
        if not isinstance(item, dict):
            return from_json(cls, item)  # says what is wrong with it
        return from_json(cls, {**item, "gateway_id": gateway_id}, _DECODERS)


_identifier = text(pattern=ID_PATTERN)
_RULES: dict[str, Rule] = {
    "gateway_id": _identifier,
    "seq": integer(ge=0, lt=SEQ_LIMIT),
    "device_id": _identifier,
    "patient_id": _identifier,
    "metric": one_of(*METRICS),
    "value": number(),
    "unit": text(max_length=UNIT_MAX),
    "measured_at": aware_datetime,
    "received_at": optional(aware_datetime),
    "flags": tuple_of(known_flag, max_length=FLAGS_MAX),
    "context": mapping_of(
        text(pattern=CONTEXT_KEY_PATTERN),
        text(max_length=CONTEXT_VALUE_MAX, pattern=CONTEXT_VALUE_PATTERN),
        max_length=CONTEXT_MAX,
    ),
    "time": optional(instance_of(TimeCorrection)),
    "identifier": optional(text(pattern=IDENTIFIER_PATTERN)),
}
_DECODERS: dict[str, Rule] = {
    "measured_at": json_datetime,
    "received_at": json_datetime,
    "time": lambda data: None if data is None else TimeCorrection.from_wire(data),
}


class WireItem(Protocol):
    """What an ``obs`` item is made of: the gateway's Observation, the server's ObservationItem."""

    @property
    def seq(self) -> int: ...
    @property
    def device_id(self) -> str: ...
    @property
    def patient_id(self) -> str: ...
    @property
    def metric(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def unit(self) -> str: ...
    @property
    def measured_at(self) -> datetime: ...
    @property
    def received_at(self) -> datetime | None: ...
    @property
    def flags(self) -> tuple[str, ...]: ...
    @property
    def context(self) -> Mapping[str, str]: ...
    @property
    def identifier(self) -> str | None: ...
    @property
    def time(self) -> Any: ...  # a record with .wire(): TimeCorrection or the server's model


def wire_item(obs: WireItem) -> dict[str, object]:
    """An observation as an item of an ``obs`` message: defaults left out."""
    item: dict[str, object] = {
        "seq": obs.seq,
        "device_id": obs.device_id,
        "patient_id": obs.patient_id,
        "metric": obs.metric,
        "value": obs.value,
        "unit": obs.unit,
        "measured_at": iso_z(obs.measured_at),
    }
    if obs.received_at is not None:
        item["received_at"] = iso_z(obs.received_at)
    if obs.flags:
        item["flags"] = list(obs.flags)
    if obs.context:
        item["context"] = dict(obs.context)
    if obs.time is not None:
        item["time"] = obs.time.wire()
    if obs.identifier is not None:
        item["identifier"] = obs.identifier
    return item


def iso_z(ts: datetime) -> str:
    """ISO 8601 with a Z suffix for UTC, the form every timestamp takes on the wire."""
    return ts.isoformat().replace("+00:00", "Z")
