"""What arrives from the broker, classified once: observations, a gateway status, or unusable.

Decoding is pure and runs on the MQTT network thread, so the writer thread only talks to the
database (see docs/ingest.md, "Threads").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from telemon.payload import PayloadError, RejectReason
from telemon.payload_schema import (
    DecodedMessage,
    GatewayStatusModel,
    decode_observations,
    decode_status,
)
from telemon.topics import Channel, parse_topic


@dataclass(frozen=True, slots=True)
class ObservationMessage:
    topic: str
    payload: bytes
    decoded: DecodedMessage

    @property
    def gateway_code(self) -> str:
        return self.decoded.gateway_id

    @property
    def weight(self) -> int:
        return max(1, len(self.decoded.observations) + len(self.decoded.rejected))

    def item_indices(self) -> Sequence[int]:
        """The position in the message of each valid observation, in order."""
        if not self.decoded.rejected:  # nearly every message
            return range(len(self.decoded.observations))
        rejected = {r.index for r in self.decoded.rejected}
        total = len(self.decoded.observations) + len(rejected)
        return [i for i in range(total) if i not in rejected]


@dataclass(frozen=True, slots=True)
class StatusMessage:
    topic: str
    payload: bytes
    status: GatewayStatusModel
    # A retained status is the broker's memory, not news: it proves nothing about now.
    retained: bool = False

    @property
    def gateway_code(self) -> str:
        return self.status.gateway_id

    weight = 1


@dataclass(frozen=True, slots=True)
class UnusableMessage:
    topic: str
    payload: bytes
    error: PayloadError

    @property
    def gateway_code(self) -> str | None:
        try:
            return parse_topic(self.topic).gateway_id
        except ValueError:
            return None

    weight = 1


@dataclass(frozen=True, slots=True)
class ClearedStatus:
    """An empty retained status: an operator removing a gateway's retained message. Not news."""

    topic: str
    payload: bytes
    gateway_code: str

    weight = 1


Inbound = ObservationMessage | StatusMessage | UnusableMessage | ClearedStatus


def classify(
    topic: str, payload: bytes, *, retained: bool = False, now: datetime | None = None
) -> Inbound:
    try:
        channel = parse_topic(topic).channel
    except ValueError as exc:
        return UnusableMessage(topic, payload, PayloadError(RejectReason.TOPIC_MISMATCH, str(exc)))
    try:
        if channel is Channel.OBS:
            return ObservationMessage(topic, payload, decode_observations(topic, payload, now=now))
        if channel is Channel.STATUS and not payload:
            return ClearedStatus(topic, payload, parse_topic(topic).gateway_id)
        if channel is Channel.STATUS:
            return StatusMessage(topic, payload, decode_status(topic, payload), retained)
    except PayloadError as exc:
        return UnusableMessage(topic, payload, exc)
    return UnusableMessage(
        topic,
        payload,
        PayloadError(RejectReason.TOPIC_MISMATCH, f"ingest does not read {channel.value} topics"),
    )
