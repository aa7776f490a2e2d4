"""The MQTT packets an ingest worker exchanges with its broker, as bytes: pure, no I/O.

Only the subscriber's side, for MQTT 5 and 3.1.1: CONNECT, SUBSCRIBE, PUBACK, PINGREQ and
DISCONNECT out; CONNACK, SUBACK, PUBLISH, PINGRESP and DISCONNECT in. Layouts are the MQTT 5.0
specification's, section 3 (3.1.1 is the same without the properties). :func:`split_packets`
cuts as many whole packets as a buffer holds, so one ``recv`` can carry hundreds of PUBLISHes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

_U16 = struct.Struct(">H")


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    SUBSCRIBE = 8
    SUBACK = 9
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14


class MalformedPacket(ValueError):
    """The broker sent bytes that are not an MQTT packet: the connection must be dropped."""


# MQTT 5 property identifiers used here (specification 2.2.2.2).
_SESSION_EXPIRY_INTERVAL = 0x11
_RECEIVE_MAXIMUM = 0x21

PINGREQ = bytes([PacketType.PINGREQ << 4, 0])
DISCONNECT = bytes([PacketType.DISCONNECT << 4, 0])  # 5: normal disconnection; 3.1.1: the same


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet as received: its first byte split in type and flags, and what follows."""

    type: int
    flags: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Publish:
    topic: str
    payload: bytes
    qos: int
    mid: int  # 0 at QoS 0
    retain: bool


@dataclass(frozen=True, slots=True)
class Connack:
    session_present: bool
    reason_code: int  # 0: accepted (3.1.1's return codes 1-5 are refusals too)


@dataclass(frozen=True, slots=True)
class Suback:
    mid: int
    reason_codes: list[int]  # granted QoS 0-2, or a failure >= 0x80


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


def _binary(raw: bytes) -> bytes:
    return _U16.pack(len(raw)) + raw


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + _varint(len(body)) + body


def _read_varint(data: bytes | bytearray, at: int) -> tuple[int, int] | None:
    """(value, position after it), None if the buffer ends inside it."""
    value = 0
    for shift in (0, 7, 14, 21):
        if at >= len(data):
            return None
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
    raise MalformedPacket("remaining length longer than four bytes")


def connect(
    client_id: str,
    *,
    mqtt5: bool,
    keepalive: int,
    clean_start: bool = False,
    username: str | None = None,
    password: str | None = None,
    session_expiry_s: int = 0,
    receive_maximum: int | None = None,
) -> bytes:
    """CONNECT: a persistent session unless ``clean_start`` (3.1.1: ``clean_session``)."""
    flags = (0x02 if clean_start else 0) | (0x80 if username is not None else 0)
    flags |= 0x40 if password is not None else 0
    header = _string("MQTT") + bytes([5 if mqtt5 else 4, flags]) + _U16.pack(keepalive)
    if mqtt5:
        properties = bytes([_SESSION_EXPIRY_INTERVAL]) + session_expiry_s.to_bytes(4, "big")
        if receive_maximum is not None:
            properties += bytes([_RECEIVE_MAXIMUM]) + _U16.pack(receive_maximum)
        header += _varint(len(properties)) + properties
    payload = _string(client_id)
    if username is not None:
        payload += _string(username)
    if password is not None:
        payload += _binary(password.encode())
    return _packet(PacketType.CONNECT << 4, header + payload)


def subscribe(mid: int, subscriptions: Sequence[tuple[str, int]], *, mqtt5: bool) -> bytes:
    """SUBSCRIBE to (topic filter, maximum QoS) pairs."""
    body = _U16.pack(mid) + (b"\x00" if mqtt5 else b"")
    for topic_filter, qos in subscriptions:
        body += _string(topic_filter) + bytes([qos])
    return _packet(PacketType.SUBSCRIBE << 4 | 0x02, body)


def pubacks(mids: Sequence[int]) -> bytes:
    """The PUBACKs of ``mids`` back to back, for one write (success: no reason code needed)."""
    return b"".join(b"\x40\x02" + _U16.pack(mid) for mid in mids)


def split_packets(buffer: bytes | bytearray) -> tuple[list[Packet], int]:
    """The whole packets at the start of ``buffer`` and how many bytes they took."""
    packets: list[Packet] = []
    at = 0
    end = len(buffer)
    while at + 2 <= end:
        length = _read_varint(buffer, at + 1)
        if length is None:
            break
        size, body_at = length
        if body_at + size > end:
            break
        first = buffer[at]
        packets.append(Packet(first >> 4, first & 0x0F, bytes(buffer[body_at : body_at + size])))
        at = body_at + size
    return packets, at


def _properties_end(body: bytes, at: int, mqtt5: bool) -> int:
    if not mqtt5:
        return at
    length = _read_varint(body, at)
    if length is None:
        raise MalformedPacket("properties cut short")
    size, start = length
    return start + size


def parse_publish(packet: Packet, *, mqtt5: bool) -> Publish:
    body = packet.body
    qos = (packet.flags >> 1) & 0x03
    if qos == 3 or len(body) < 2:
        raise MalformedPacket("PUBLISH with QoS 3 or no topic")
    (topic_length,) = _U16.unpack_from(body, 0)
    at = 2 + topic_length
    try:
        topic = body[2:at].decode()
    except UnicodeDecodeError as exc:
        raise MalformedPacket(f"PUBLISH topic is not UTF-8: {exc}") from exc
    mid = 0
    if qos:
        if len(body) < at + 2:
            raise MalformedPacket("PUBLISH cut short before its packet identifier")
        (mid,) = _U16.unpack_from(body, at)
        at += 2
    at = _properties_end(body, at, mqtt5)
    if at > len(body):
        raise MalformedPacket("PUBLISH cut short")
    return Publish(topic, body[at:], qos, mid, bool(packet.flags & 0x01))


def parse_connack(packet: Packet) -> Connack:
    if len(packet.body) < 2:
        raise MalformedPacket("CONNACK cut short")
    return Connack(bool(packet.body[0] & 0x01), packet.body[1])


def parse_suback(packet: Packet, *, mqtt5: bool) -> Suback:
    if len(packet.body) < 3:
        raise MalformedPacket("SUBACK cut short")
    (mid,) = _U16.unpack_from(packet.body, 0)
    at = _properties_end(packet.body, 2, mqtt5)
    return Suback(mid, list(packet.body[at:]))


def disconnect_reason(packet: Packet) -> int:
    """A broker's DISCONNECT reason (MQTT 5 only; no byte means 0, normal disconnection)."""
    return packet.body[0] if packet.body else 0
