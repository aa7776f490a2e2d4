"""The ``Observation``: one measured value of one metric, as it travels and is stored."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

from telemon.flags import FLAGS
from telemon.metrics import METRICS

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


def _known_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise ValueError(f"unknown flag(s) {unknown}")
    return flags


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("value must be a finite number")
    return value


def _known_metric(key: str) -> str:
    if key not in METRICS:
        raise ValueError(f"unknown metric {key!r}")
    return key


class Observation(BaseModel):
    """A reading after the gateway has decoded it and attached its identity.

    ``seq`` is the gateway's own monotonically increasing counter: (gateway_id, seq) names an
    observation exactly once, so a redelivered message is recognised and ignored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    gateway_id: Identifier
    seq: Annotated[int, Field(ge=0, lt=2**63)]
    device_id: Identifier
    patient_id: Identifier
    metric: Annotated[str, AfterValidator(_known_metric)]
    value: Annotated[float, AfterValidator(_finite)]
    unit: Annotated[str, Field(max_length=16)]
    measured_at: AwareDatetime
    received_at: AwareDatetime | None = None
    flags: Annotated[tuple[str, ...], Field(max_length=32), AfterValidator(_known_flags)] = ()
    context: Annotated[
        dict[
            Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")],
            Annotated[str, Field(max_length=64)],
        ],
        Field(max_length=16),
    ] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _gateway_from_envelope(cls, data: Any, info: ValidationInfo) -> Any:
        """Items of an ``obs`` message take the gateway id of their envelope.

        The decoder passes it as validation context (``envelope_gateway_id``), so a whole
        message validates in one pass; an item must not carry a gateway id of its own.
        """
        gateway_id = (info.context or {}).get("envelope_gateway_id")
        if gateway_id is None or not isinstance(data, dict):
            return data
        if "gateway_id" in data:
            raise ValueError("gateway_id belongs to the envelope, not the item")
        return {**data, "gateway_id": gateway_id}

    @property
    def time_from_gateway(self) -> bool:
        return "gateway_time" in self.flags

    def wire_item(self) -> dict[str, object]:
        """This observation as an item of an ``obs`` message (the envelope holds gateway_id)."""
        item: dict[str, object] = {
            "seq": self.seq,
            "device_id": self.device_id,
            "patient_id": self.patient_id,
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "measured_at": iso_z(self.measured_at),
        }
        if self.received_at is not None:
            item["received_at"] = iso_z(self.received_at)
        if self.flags:
            item["flags"] = list(self.flags)
        if self.context:
            item["context"] = dict(self.context)
        return item


def iso_z(ts: datetime) -> str:
    """ISO 8601 with a Z suffix for UTC, the form every timestamp takes on the wire."""
    return ts.isoformat().replace("+00:00", "Z")
