"""The ``Observation``: one measured value of one metric, as it travels and is stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from telemon.flags import FLAGS
from telemon.identifier import ObservationIdentifier
from telemon.metrics import MetricKey
from telemon.time_correction import TimeCorrection

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


def _known_flags(flags: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [f for f in flags if f not in FLAGS]
    if unknown:
        raise ValueError(f"unknown flag(s) {unknown}")
    return flags


class ObservationItem(BaseModel):
    """A reading as an item of an ``obs`` message: an observation but for the gateway's identity,
    which the message's envelope carries once for all its items.

    ``seq`` is the gateway's own monotonically increasing counter: (gateway_id, seq) names an
    observation exactly once, so a redelivered message is recognised and ignored.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Strict: a gateway that sends "seq": true, "value": "97" or a bare epoch number is broken,
    # and guessing what it meant would store a wrong reading without anyone noticing.
    seq: Annotated[int, Field(ge=0, lt=2**63, strict=True)]
    device_id: Identifier
    patient_id: Identifier
    metric: MetricKey
    value: Annotated[float, Field(allow_inf_nan=False, strict=True)]
    unit: Annotated[str, Field(max_length=16)]
    measured_at: Annotated[AwareDatetime, Field(strict=True)]
    received_at: Annotated[AwareDatetime | None, Field(strict=True)] = None
    flags: Annotated[tuple[str, ...], Field(max_length=32), AfterValidator(_known_flags)] = ()
    context: Annotated[
        dict[
            Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")],
            # No control characters: a NUL would make PostgreSQL refuse the whole batch (jsonb).
            Annotated[str, Field(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")],
        ],
        Field(max_length=16),
    ] = Field(default_factory=dict)
    # How measured_at was derived from the device's stamp (contract v2; None from v1 gateways).
    time: TimeCorrection | None = None
    # The record's stable name (telemon.identifier; contract v2, None without a device stamp):
    # the same record uploaded again, by this gateway or a reinstalled one, is stored once.
    identifier: ObservationIdentifier | None = None

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
        if self.time is not None:
            item["time"] = self.time.wire()
        if self.identifier is not None:
            item["identifier"] = self.identifier
        return item


class Observation(ObservationItem):
    """A reading after the gateway has decoded it and attached its identity."""

    gateway_id: Identifier


def iso_z(ts: datetime) -> str:
    """ISO 8601 with a Z suffix for UTC, the form every timestamp takes on the wire."""
    return ts.isoformat().replace("+00:00", "Z")
