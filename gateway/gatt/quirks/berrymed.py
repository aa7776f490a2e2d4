"""BerryMed BCI protocol: the byte stream of BerryMed's BLE finger oximeters (BM1000 series).

Notified on the transparent UART service of the Microchip/ISSC module the device is built on;
nothing needs enabling. Each packet is five bytes, the first with bit 7 set (sync) and the others
with bit 7 clear:

    byte 0  bit 7 sync (1); bits 0-3 signal strength; bit 4 no signal; bit 5 probe unplugged;
            bit 6 pulse beep
    byte 1  bits 0-6 plethysmogram
    byte 2  bits 0-3 bar graph; bit 4 no finger; bit 5 searching for a pulse;
            bit 6 pulse rate bit 7
    byte 3  bits 0-6 pulse rate bits 0-6
    byte 4  bits 0-6 SpO2

Pulse rate 255 and SpO2 127 mean "no valid value". A notification carries whole packets; the
newest is the sample (see :mod:`gateway.gatt.quirks.oximetry`). See docs/devices/berrymed_bci.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.gatt.errors import DecodeError, EncodeError
from gateway.gatt.model import Decoded
from gateway.gatt.quirks.oximetry import OximeterSample, sample_readings
from gateway.gatt.reader import ByteReader

PROTOCOL = "berrymed_bci"
CHARACTERISTIC = "berrymed_bci stream"
# The ISSC/Microchip "transparent UART" service, and its characteristic the device notifies on.
SERVICE_UUID = "49535343-fe7d-4ae5-8fa9-9fafd205e455"
NOTIFY_UUID = "49535343-1e4d-4bd9-ba61-23c647249616"
WRITE_UUID = "49535343-8841-43f4-a8d4-ecbe34729bb3"

PACKET_SIZE = 5
SYNC = 0x80
PULSE_INVALID = 255
SPO2_INVALID = 127

# byte 0
_SIGNAL_STRENGTH = 0x0F
_NO_SIGNAL = 0x10
_PROBE_UNPLUGGED = 0x20
_PULSE_BEEP = 0x40
# byte 2
_BAR_GRAPH = 0x0F
_NO_FINGER = 0x10
_SEARCHING = 0x20
_PULSE_HIGH_BIT = 0x40


@dataclass(frozen=True, slots=True)
class BciPacket:
    signal_strength: int = 0  # 0-15
    no_signal: bool = False
    probe_unplugged: bool = False
    pulse_beep: bool = False
    pleth: int = 0  # 0-127
    bar_graph: int = 0  # 0-15
    no_finger: bool = False
    searching: bool = False
    pulse_rate: int = PULSE_INVALID  # 0-255, 255 invalid
    spo2: int = SPO2_INVALID  # 0-127, 127 invalid

    def encode(self) -> bytes:
        for name, value, top in (
            ("signal_strength", self.signal_strength, 15),
            ("pleth", self.pleth, 127),
            ("bar_graph", self.bar_graph, 15),
            ("pulse_rate", self.pulse_rate, 255),
            ("spo2", self.spo2, 127),
        ):
            if not 0 <= value <= top:
                raise EncodeError(f"BCI {name} {value} is outside 0-{top}")
        return bytes(
            (
                SYNC
                | self.signal_strength
                | _NO_SIGNAL * self.no_signal
                | _PROBE_UNPLUGGED * self.probe_unplugged
                | _PULSE_BEEP * self.pulse_beep,
                self.pleth,
                self.bar_graph
                | _NO_FINGER * self.no_finger
                | _SEARCHING * self.searching
                | (_PULSE_HIGH_BIT if self.pulse_rate & 0x80 else 0),
                self.pulse_rate & 0x7F,
                self.spo2,
            )
        )

    def sample(self) -> OximeterSample:
        return OximeterSample(
            spo2=None if self.spo2 == SPO2_INVALID else self.spo2,
            pulse_rate=None if self.pulse_rate == PULSE_INVALID else self.pulse_rate,
            finger_out=self.no_finger or self.probe_unplugged,
            searching=self.searching,
        )


@dataclass(frozen=True, slots=True)
class BciNotification:
    packets: tuple[BciPacket, ...]

    def encode(self) -> bytes:
        return b"".join(packet.encode() for packet in self.packets)


def _packet(reader: ByteReader) -> BciPacket:
    start = reader.offset
    raw = reader.take(PACKET_SIZE, "packet")
    if not raw[0] & SYNC:
        raise DecodeError(CHARACTERISTIC, start, f"byte 0x{raw[0]:02x} lacks the sync bit")
    for index, byte in enumerate(raw[1:], start=1):
        if byte & SYNC:
            raise DecodeError(
                CHARACTERISTIC,
                start + index,
                f"byte 0x{byte:02x} has the sync bit inside a packet: the stream is out of step",
            )
    spo2 = raw[4]
    if spo2 != SPO2_INVALID and spo2 > 100:
        raise DecodeError(CHARACTERISTIC, start + 4, f"SpO2 {spo2} % is above 100")
    return BciPacket(
        signal_strength=raw[0] & _SIGNAL_STRENGTH,
        no_signal=bool(raw[0] & _NO_SIGNAL),
        probe_unplugged=bool(raw[0] & _PROBE_UNPLUGGED),
        pulse_beep=bool(raw[0] & _PULSE_BEEP),
        pleth=raw[1],
        bar_graph=raw[2] & _BAR_GRAPH,
        no_finger=bool(raw[2] & _NO_FINGER),
        searching=bool(raw[2] & _SEARCHING),
        pulse_rate=raw[3] | (0x80 if raw[2] & _PULSE_HIGH_BIT else 0),
        spo2=spo2,
    )


def decode_bci_notification(payload: bytes) -> BciNotification:
    reader = ByteReader(CHARACTERISTIC, payload)
    if not reader.remaining:
        raise reader.error("empty notification")
    if reader.remaining % PACKET_SIZE:
        raise reader.error(
            f"{reader.remaining} bytes are not whole {PACKET_SIZE}-byte packets",
            offset=reader.remaining - reader.remaining % PACKET_SIZE,
        )
    packets = []
    while reader.remaining:
        packets.append(_packet(reader))
    return BciNotification(tuple(packets))


def interpret_bci_notification(notification: BciNotification) -> Decoded[BciNotification]:
    return sample_readings(
        CHARACTERISTIC,
        notification,
        notification.packets[-1].sample(),
        protocol=PROTOCOL,
        sentinels=(str(SPO2_INVALID), str(PULSE_INVALID)),
    )


def decode_bci(payload: bytes) -> Decoded[BciNotification]:
    return interpret_bci_notification(decode_bci_notification(payload))
