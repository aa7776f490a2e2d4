"""Contec CMS50D-BT: the finger oximeter's proprietary notifications.

The device is silent until the central writes the start command to its control characteristic;
then it notifies packets, several to a notification. Each packet is a type byte (bit 7 clear),
a byte holding the bit 7s of the data bytes that follow (itself with bit 7 set), and the data
bytes, each with bit 7 set so that a type byte can always be told from data (Contec's framing):

    type 0x01  waveform  data: plethysmogram (0-100), bar graph (0-15)     -> no reading
    type 0x02  values    data: status, pulse rate, SpO2                     -> SpO2, pulse rate

    status bit 0 finger out; bit 1 searching for a pulse; bits 2-7 reserved
    pulse rate 255 and SpO2 127 mean "no valid value"

Bit i of the high-bits byte (i from 0) is bit 7 of data byte i. See docs/devices/contec_cms50d_bt.md
for where this comes from and what is still to be checked on a real unit.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gateway.gatt.errors import DecodeError, EncodeError
from gateway.gatt.model import Decoded
from gateway.gatt.quirks.oximetry import OximeterSample, sample_readings
from gateway.gatt.reader import ByteReader
from gateway.gatt.uuids import full_uuid

PROTOCOL = "contec_cms50d_bt"
CHARACTERISTIC = "contec_cms50d_bt stream"
# Vendor 16-bit UUIDs on the SIG base (not assigned numbers): service, notify, control.
SERVICE, NOTIFY, CONTROL = 0xFF12, 0xFF02, 0xFF01
SERVICE_UUID, NOTIFY_UUID, CONTROL_UUID = (full_uuid(n) for n in (SERVICE, NOTIFY, CONTROL))
# "Send real-time data": command 0x01 (A1 with its framing bit), padded to Contec's fixed size.
START_REALTIME = bytes.fromhex("7D81A1808080808080")
STOP_REALTIME = bytes.fromhex("7D81A2808080808080")

PULSE_INVALID = 255
SPO2_INVALID = 127
FINGER_OUT = 0x01
SEARCHING = 0x02
_STATUS_BITS = FINGER_OUT | SEARCHING
_FRAMING = 0x80


class PacketType(IntEnum):
    WAVEFORM = 0x01
    VALUES = 0x02


DATA_BYTES = {PacketType.WAVEFORM: 2, PacketType.VALUES: 3}


@dataclass(frozen=True, slots=True)
class WaveformPacket:
    pleth: int  # 0-100
    bar_graph: int = 0  # 0-15

    @property
    def data(self) -> tuple[int, ...]:
        return (self.pleth, self.bar_graph)

    type = PacketType.WAVEFORM


@dataclass(frozen=True, slots=True)
class ValuesPacket:
    spo2: int = SPO2_INVALID
    pulse_rate: int = PULSE_INVALID
    finger_out: bool = False
    searching: bool = False

    @property
    def data(self) -> tuple[int, ...]:
        status = FINGER_OUT * self.finger_out | SEARCHING * self.searching
        return (status, self.pulse_rate, self.spo2)

    type = PacketType.VALUES

    def sample(self) -> OximeterSample:
        return OximeterSample(
            spo2=None if self.spo2 == SPO2_INVALID else self.spo2,
            pulse_rate=None if self.pulse_rate == PULSE_INVALID else self.pulse_rate,
            finger_out=self.finger_out,
            searching=self.searching,
        )


Packet = WaveformPacket | ValuesPacket


def encode_packet(packet: Packet) -> bytes:
    high_bits = 0
    body = bytearray()
    for index, value in enumerate(packet.data):
        if not 0 <= value <= 0xFF:
            raise EncodeError(f"{value!r} does not fit a byte")
        high_bits |= (value >> 7) << index
        body.append(_FRAMING | value & 0x7F)
    return bytes((packet.type, _FRAMING | high_bits)) + bytes(body)


@dataclass(frozen=True, slots=True)
class ContecNotification:
    packets: tuple[Packet, ...]

    def encode(self) -> bytes:
        return b"".join(encode_packet(packet) for packet in self.packets)

    def newest_values(self) -> ValuesPacket | None:
        values = [p for p in self.packets if isinstance(p, ValuesPacket)]
        return values[-1] if values else None


def _error(offset: int, reason: str) -> DecodeError:
    return DecodeError(CHARACTERISTIC, offset, reason)


def _packet(reader: ByteReader) -> Packet:
    start = reader.offset
    type_byte = reader.uint(1, "packet type")
    if type_byte & _FRAMING:
        raise _error(start, f"0x{type_byte:02x} is a data byte where a packet type was due")
    try:
        packet_type = PacketType(type_byte)
    except ValueError:
        raise _error(start, f"packet type 0x{type_byte:02x} is not one we know") from None
    size = DATA_BYTES[packet_type]
    raw = reader.take(1 + size, f"{packet_type.name.lower()} packet")
    for index, byte in enumerate(raw):
        if not byte & _FRAMING:
            raise _error(start + 1 + index, f"byte 0x{byte:02x} lacks the framing bit 7")
    high_bits = raw[0] & 0x7F
    if high_bits >> size:
        raise _error(start + 1, f"high bits 0x{high_bits:02x} name data bytes the packet lacks")
    data = [byte & 0x7F | ((high_bits >> index) & 1) << 7 for index, byte in enumerate(raw[1:])]
    if packet_type is PacketType.WAVEFORM:
        return WaveformPacket(pleth=data[0], bar_graph=data[1])
    status, pulse_rate, spo2 = data
    if status & ~_STATUS_BITS:
        raise _error(start + 2, f"status 0x{status:02x} sets reserved bits")
    if spo2 != SPO2_INVALID and spo2 > 100:
        raise _error(start + 4, f"SpO2 {spo2} % is above 100")
    return ValuesPacket(
        spo2=spo2,
        pulse_rate=pulse_rate,
        finger_out=bool(status & FINGER_OUT),
        searching=bool(status & SEARCHING),
    )


def decode_contec_notification(payload: bytes) -> ContecNotification:
    reader = ByteReader(CHARACTERISTIC, payload)
    if not reader.remaining:
        raise reader.error("empty notification")
    packets = []
    while reader.remaining:
        packets.append(_packet(reader))
    return ContecNotification(tuple(packets))


def interpret_contec_notification(
    notification: ContecNotification,
) -> Decoded[ContecNotification]:
    values = notification.newest_values()
    return sample_readings(
        CHARACTERISTIC,
        notification,
        values.sample() if values is not None else None,
        protocol=PROTOCOL,
        sentinels=(SPO2_INVALID, PULSE_INVALID),
    )


def decode_contec(payload: bytes) -> Decoded[ContecNotification]:
    return interpret_contec_notification(decode_contec_notification(payload))
