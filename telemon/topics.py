"""MQTT topic names, contract v1 (see docs/mqtt.md)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

ROOT = "telemon/v1"
INGEST_SHARE_GROUP = "ingest"

_GATEWAY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class Channel(StrEnum):
    OBS = "obs"  # gateway -> server: observation batches, QoS 1
    STATUS = "status"  # gateway -> server: retained online/offline (last will) with health
    DEVICES = "devices"  # gateway -> server: retained inventory of paired devices and their health
    CONFIG = "config"  # server -> gateway: retained configuration (pairing table...)


def is_gateway_id(name: str) -> bool:
    # fullmatch: with match, '$' would also accept a trailing newline.
    return _GATEWAY_ID.fullmatch(name) is not None


def topic(gateway_id: str, channel: Channel) -> str:
    if not is_gateway_id(gateway_id):
        raise ValueError(f"invalid gateway id {gateway_id!r}")
    return f"{ROOT}/gw/{gateway_id}/{channel.value}"


def subscription(channel: Channel, *, shared_group: str | None = None) -> str:
    """Wildcard subscription over every gateway; ``shared_group`` spreads it over workers."""
    pattern = f"{ROOT}/gw/+/{channel.value}"
    return f"$share/{shared_group}/{pattern}" if shared_group else pattern


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    gateway_id: str
    channel: Channel


# Ingest parses every message's topic, and a gateway's topics are always the same few: remembered,
# the common message skips the split, the pattern and the enum lookup (ParsedTopic is immutable).
@functools.lru_cache(maxsize=65_536)
def parse_topic(name: str) -> ParsedTopic:
    parts = name.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT or parts[2] != "gw":
        raise ValueError(f"not a telemon v1 gateway topic: {name!r}")
    gateway_id, channel = parts[3], parts[4]
    if not is_gateway_id(gateway_id):
        raise ValueError(f"invalid gateway id in topic: {gateway_id!r}")
    try:
        return ParsedTopic(gateway_id, Channel(channel))
    except ValueError:
        raise ValueError(f"unknown channel {channel!r} in topic {name!r}") from None
