"""Contec CMS50D-BT: the finger oximeter's real-time frames on its vendor BLE service.

Layout from Contec's own Android SDK (as decompiled), the OSCAR Contec BLE protocol and a bleak
driver for this model; URLs in docs/devices/contec_cms50d_bt.md. The device is silent until the
central writes ``9B 00 1B`` then ``9B 01 1C`` to 0xFF01 (the SDK then writes ``9A 1A`` every
4.5 s to keep it streaming); it then notifies frames on 0xFF02, several to a notification and
split across notifications wherever the 20-byte limit falls. A frame is a header byte (bit 7
set), data bytes (bit 7 clear) and a checksum, the sum of the bytes before it & 0x7F:

    EB 00 b2 b3 b4 cs        waveform: b2 bit 6 pulse beep; b3 plethysmogram (0-127);
                             b4 bits 0-3 bar graph, bit 4 finger out           -> no reading
    EB 01 b2 b3 b4 b5 b6 cs  values: b2 bit 0 PI error, bit 1 pulse rate bit 7; b3 pulse rate
                             bits 0-6; b4 SpO2; b5 b6 perfusion index (not read) -> SpO2, pulse
    EB 7F cs                 end of the real-time stream                       -> no reading

SpO2 127 and pulse rate 255 mean "no valid value", as does 0 for either. A notification's
newest values frame is the sample; its newest waveform frame says whether the finger is out.
A frame cut by the notification boundary is kept as a fragment (not an error): the head of a
notification that is the tail of the previous one's last frame, or the end that starts the next.
Decoding stays per notification; :class:`ContecReassembler`, the session's stateful part, joins a
fragment to its other half in the next notification and drops, with a reason, the bytes that
belong to no whole frame (garbage, a frame cut short, a fragment never completed).
Frame 0x84 is the encrypted wrapper of protocol versions above 13, which we cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from gateway.gatt.errors import DecodeError, EncodeError
from gateway.gatt.model import Decoded
from gateway.gatt.quirks.oximetry import Dropped, OximeterSample, Reassembled, sample_readings
from gateway.gatt.uuids import full_uuid

PROTOCOL = "contec_cms50d_bt"
CHARACTERISTIC = "contec_cms50d_bt stream"
# Vendor 16-bit UUIDs on the SIG base (not assigned numbers): service, notify, write.
SERVICE, NOTIFY, CONTROL = 0xFF12, 0xFF02, 0xFF01
SERVICE_UUID, NOTIFY_UUID, CONTROL_UUID = (full_uuid(n) for n in (SERVICE, NOTIFY, CONTROL))
# The names the vendor SDK maps to this model start so ("SpO2080971" and the like).
NAME_PREFIX = "SpO208"


def command(*body: int) -> bytes:
    """A command as the SDK frames it: its bytes, then their sum & 0x7F."""
    return bytes((*body, sum(body) & 0x7F))


# The SDK's real-time start: "9B 00" first, "9B 01" a second later; "9A" keeps it going.
PREPARE_REALTIME = command(0x9B, 0x00)
START_REALTIME = command(0x9B, 0x01)
STOP_REALTIME = command(0x9B, 0x7F)
KEEPALIVE = bytes((0x9A, 0x1A))  # sent as is by the SDK (0x9A & 0x7F)
KEEPALIVE_EVERY = 4.5  # seconds, the SDK's period

HEADER = 0xEB
ENCRYPTED = 0x84
PULSE_INVALID = 255
SPO2_INVALID = 127
_BIT7 = 0x80


class FrameType(IntEnum):
    WAVEFORM = 0x00
    VALUES = 0x01
    END = 0x7F


FRAME_SIZE = {FrameType.WAVEFORM: 6, FrameType.VALUES: 8, FrameType.END: 3}
_SIZE_OF_TYPE: dict[int, int] = {int(kind): size for kind, size in FRAME_SIZE.items()}

# waveform b2 / b4
_PULSE_BEEP = 0x40
_BAR_GRAPH = 0x0F
_FINGER_OUT = 0x10
# values b2
_PI_ERROR = 0x01
_PULSE_HIGH_BIT = 0x02


@dataclass(frozen=True, slots=True)
class WaveformFrame:
    pleth: int = 0  # 0-127
    bar_graph: int = 0  # 0-15
    finger_out: bool = False
    pulse_beep: bool = False
    other_bits: int = 0  # b2 apart from bit 6: no source says what they mean

    type = FrameType.WAVEFORM

    def data(self) -> tuple[int, ...]:
        return (
            self.other_bits | _PULSE_BEEP * self.pulse_beep,
            self.pleth,
            self.bar_graph | _FINGER_OUT * self.finger_out,
        )


@dataclass(frozen=True, slots=True)
class ValuesFrame:
    spo2: int = SPO2_INVALID
    pulse_rate: int = PULSE_INVALID  # 0-255
    pi_error: bool = False
    perfusion: tuple[int, int] = (0, 0)  # b5 b6: encoding depends on the protocol version
    other_bits: int = 0  # b2 bits 2-6 (bit 2 is PI bit 7 on protocol versions 11 and above)

    type = FrameType.VALUES

    def data(self) -> tuple[int, ...]:
        high = _PULSE_HIGH_BIT if self.pulse_rate & _BIT7 else 0
        return (
            self.other_bits | high | _PI_ERROR * self.pi_error,
            self.pulse_rate & 0x7F,
            self.spo2,
            *self.perfusion,
        )

    def sample(self, finger_out: bool) -> OximeterSample:
        return OximeterSample(
            spo2=None if self.spo2 in (SPO2_INVALID, 0) else self.spo2,
            pulse_rate=None if self.pulse_rate in (PULSE_INVALID, 0) else self.pulse_rate,
            finger_out=finger_out,
        )


@dataclass(frozen=True, slots=True)
class EndFrame:
    type = FrameType.END

    def data(self) -> tuple[int, ...]:
        return ()


Frame = WaveformFrame | ValuesFrame | EndFrame


def encode_frame(frame: Frame) -> bytes:
    data = frame.data()
    for value in data:
        if not 0 <= value < _BIT7:
            raise EncodeError(f"Contec data byte {value!r} does not fit 7 bits")
    return command(HEADER, frame.type, *data)


@dataclass(frozen=True, slots=True)
class ContecNotification:
    frames: tuple[Frame, ...]
    head: bytes = b""  # the tail of a frame the previous notification began
    tail: bytes = b""  # the start of a frame the next notification ends

    def encode(self) -> bytes:
        return self.head + b"".join(encode_frame(frame) for frame in self.frames) + self.tail

    def sample(self) -> OximeterSample | None:
        values = [f for f in self.frames if isinstance(f, ValuesFrame)]
        if not values:
            return None
        waves = [f for f in self.frames if isinstance(f, WaveformFrame)]
        return values[-1].sample(finger_out=bool(waves) and waves[-1].finger_out)


def _error(offset: int, reason: str) -> DecodeError:
    return DecodeError(CHARACTERISTIC, offset, reason)


def _frame(raw: bytes, start: int) -> Frame:
    for index, byte in enumerate(raw[1:], start=1):
        if byte & _BIT7:
            raise _error(start + index, f"byte 0x{byte:02x} starts a frame inside one: cut short")
    if sum(raw[:-1]) & 0x7F != raw[-1]:
        expected = sum(raw[:-1]) & 0x7F
        raise _error(start + len(raw) - 1, f"checksum 0x{raw[-1]:02x}, expected 0x{expected:02x}")
    kind = FrameType(raw[1])
    if kind is FrameType.END:
        return EndFrame()
    if kind is FrameType.WAVEFORM:
        return WaveformFrame(
            pleth=raw[3],
            bar_graph=raw[4] & _BAR_GRAPH,
            finger_out=bool(raw[4] & _FINGER_OUT),
            pulse_beep=bool(raw[2] & _PULSE_BEEP),
            other_bits=raw[2] & ~_PULSE_BEEP,
        )
    spo2 = raw[4]
    if spo2 != SPO2_INVALID and spo2 > 100:
        raise _error(start + 4, f"SpO2 {spo2} % is above 100")
    return ValuesFrame(
        spo2=spo2,
        pulse_rate=raw[3] | (_BIT7 if raw[2] & _PULSE_HIGH_BIT else 0),
        pi_error=bool(raw[2] & _PI_ERROR),
        perfusion=(raw[5], raw[6]),
        other_bits=raw[2] & ~(_PI_ERROR | _PULSE_HIGH_BIT),
    )


def _expected_size(chunk: bytes) -> int | None:
    """The size of the frame ``chunk`` begins, if its header and type byte say one."""
    if chunk[0] != HEADER or len(chunk) < 2:
        return None
    return _SIZE_OF_TYPE.get(chunk[1])


def _may_continue(chunk: bytes) -> bool:
    """Whether ``chunk``, the end of a notification, can be completed by the next one."""
    if chunk[0] != HEADER:
        return False
    size = _expected_size(chunk)
    return len(chunk) == 1 or (size is not None and len(chunk) < size)


class ContecReassembler:
    """Frames across notifications: the stateful part of reading one connection's stream.

    A frame begins at a byte with bit 7 set; the bytes after it, up to the next such byte, are
    its data and checksum. The last frame of a notification may be continued by the next one;
    every other chunk must be a whole, valid frame, or it is dropped with the reason.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, payload: bytes) -> Reassembled:
        buffer, completing = self._pending + payload, bool(self._pending)
        self._pending = b""
        starts = [index for index, byte in enumerate(buffer) if byte & _BIT7]
        dropped: list[Dropped] = []
        if not starts or starts[0]:
            head = buffer[: starts[0]] if starts else buffer
            dropped.append(
                Dropped(
                    head, "no frame header before these bytes: the rest of a frame not received"
                )
            )
        chunks = [buffer[a:b] for a, b in zip(starts, [*starts[1:], len(buffer)], strict=True)]
        if chunks and _may_continue(chunks[-1]):
            self._pending = chunks.pop()
        whole: list[bytes] = []
        for chunk in chunks:
            size = _expected_size(chunk)
            if size is not None and len(chunk) > size:
                extra = f"{len(chunk) - size} bytes after a whole frame, before the next header"
                dropped.append(Dropped(chunk[size:], extra))
                chunk = chunk[:size]
            problem = _frame_problem(chunk)
            if problem is None:
                whole.append(chunk)
            else:
                dropped.append(Dropped(chunk, problem))
        payloads: list[bytes] = []
        if completing and whole and buffer.startswith(whole[0]):
            payloads.append(whole.pop(0))
        if whole:
            payloads.append(b"".join(whole))
        return Reassembled(tuple(payloads), tuple(dropped))

    def flush(self) -> Reassembled:
        """The end of the stream (the link closed): a fragment left is never completed."""
        pending, self._pending = self._pending, b""
        if not pending:
            return Reassembled()
        reason = f"frame cut short: {len(pending)} bytes, and the stream ended"
        return Reassembled(dropped=(Dropped(pending, reason),))


def _frame_problem(chunk: bytes) -> str | None:
    """Why ``chunk`` (from a frame header to the next one) is no whole frame; None if it is."""
    size = _expected_size(chunk)
    try:
        decode_contec_notification(chunk)
    except DecodeError as error:
        return str(error)
    if size is not None and len(chunk) < size:
        return f"frame cut short: {len(chunk)} of its {size} bytes before the next frame header"
    return None


def decode_contec_notification(payload: bytes) -> ContecNotification:
    if not payload:
        raise _error(0, "empty notification")
    offset = 0
    while offset < len(payload) and not payload[offset] & _BIT7:
        offset += 1
    head, frames = payload[:offset], list[Frame]()
    while offset < len(payload):
        header = payload[offset]
        if header == ENCRYPTED:
            raise _error(
                offset,
                "frame 0x84 is encrypted (protocol version above 13): the key exchange it "
                "needs is not implemented",
            )
        if header != HEADER:
            raise _error(offset, f"frame 0x{header:02x} is not a real-time frame")
        if offset + 1 == len(payload):
            return ContecNotification(tuple(frames), head, payload[offset:])
        try:
            kind = FrameType(payload[offset + 1])
        except ValueError:
            raise _error(
                offset + 1, f"real-time frame type 0x{payload[offset + 1]:02x} is not one we know"
            ) from None
        end = offset + FRAME_SIZE[kind]
        rest = payload[offset + 1 :]
        if end > len(payload) and not any(byte & _BIT7 for byte in rest):
            return ContecNotification(tuple(frames), head, payload[offset:])
        frames.append(_frame(payload[offset:end], offset))
        offset = end
    return ContecNotification(tuple(frames), head)


def interpret_contec_notification(
    notification: ContecNotification,
) -> Decoded[ContecNotification]:
    return sample_readings(
        CHARACTERISTIC,
        notification,
        notification.sample(),
        protocol=PROTOCOL,
        sentinels=(f"{SPO2_INVALID} or 0", f"{PULSE_INVALID} or 0"),
    )


def decode_contec(payload: bytes) -> Decoded[ContecNotification]:
    return interpret_contec_notification(decode_contec_notification(payload))
