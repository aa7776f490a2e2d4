"""Real devices' quirks: per model, how it deviates from its standard profile and how to read it.

One table, like ``gateway.gatt.registry``: each row says which devices it applies to (advertised
name, manufacturer data, Device Information), where the device sends its values, what to write
to make it start, and the pure decoder that turns a value into the same readings
``gateway.gatt.decode`` gives. The device manager uses a row when its match applies and the
standard profile otherwise (``gateway.devices.quirk_session``). See docs/devices/.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from gateway.gatt import CharacteristicUuid, Decoded, DecodeError, Reading
from gateway.gatt.quirks import berrymed, beurer, contec
from gateway.gatt.quirks.oximetry import Reassembled
from telemon.device_kinds import DeviceKind


@dataclass(frozen=True, slots=True)
class Seen:
    """What the gateway knows of a device before talking to it."""

    name: str | None = None  # advertised local name
    manufacturer_data: Mapping[int, bytes] = field(default_factory=dict)  # company id -> bytes
    information: Mapping[str, str] = field(default_factory=dict)  # Device Information, if read


@dataclass(frozen=True, slots=True)
class Match:
    """One way to recognise a model; every criterion given must hold."""

    name_prefix: str | None = None
    company_id: int | None = None  # Bluetooth SIG company identifier in manufacturer data
    manufacturer_data_prefix: bytes = b""
    model_number_prefix: str | None = None  # Device Information Model Number String

    def applies(self, seen: Seen) -> bool:
        if self.name_prefix is not None and not (seen.name or "").startswith(self.name_prefix):
            return False
        if self.company_id is not None:
            data = seen.manufacturer_data.get(self.company_id)
            if data is None or not data.startswith(self.manufacturer_data_prefix):
                return False
        if self.model_number_prefix is not None:
            model = seen.information.get("model_number", "")
            if not model.startswith(self.model_number_prefix):
                return False
        return any(
            criterion is not None
            for criterion in (self.name_prefix, self.company_id, self.model_number_prefix)
        )


@dataclass(frozen=True, slots=True)
class Enable:
    """A write the device needs: to start sending, or to keep sending."""

    characteristic: str  # 128-bit UUID
    value: bytes
    with_response: bool = True
    pause: float = 0.0  # seconds to wait after it, before the next write


class Reassembler(Protocol):
    """The stateful part of reading a stream whose frames straddle notifications: one per
    connection, fed each notification in order; its payloads go to the row's pure decoder."""

    def feed(self, payload: bytes) -> Reassembled: ...

    def flush(self) -> Reassembled: ...


@dataclass(frozen=True, slots=True)
class Quirk:
    model: str
    kind: DeviceKind
    matches: tuple[Match, ...]  # any one suffices
    service: str  # 128-bit UUID of the service that carries the values
    characteristic: str  # 128-bit UUID the device notifies or indicates on
    decoder: Callable[[bytes], Decoded[Any]]
    deviation: str  # one line for logs and docs: how it departs from the standard
    enable: tuple[Enable, ...] = ()  # written in order once subscribed
    keepalive: Enable | None = None  # written every keepalive_every seconds while connected
    keepalive_every: float | None = None
    # Measured now (a stream), never from the device's memory: never "delivered late".
    live: bool = False
    # A stream: stored as continuous samples (evicted first), at most one per this many seconds.
    sample_every: float | None = None
    # Frames cut by the notification boundary: joined across notifications before decoding.
    reassembler: Callable[[], Reassembler] | None = None

    def applies(self, seen: Seen) -> bool:
        return any(match.applies(seen) for match in self.matches)

    @property
    def continuous(self) -> bool:
        return self.sample_every is not None


# The standard PLX Continuous Measurement is one frame a second; streams are kept at that rate.
_ONE_HZ = 1.0

# Each row's layout and its sources: docs/devices/<model>.md.
_ROWS = (
    # Layout checked against four values recorded from a real BM85 in blood-pressure-monitor-fl
    # (app/test/features/bluetooth/logic/characteristics/ble_measurement_data_test.dart, PRs
    # #735, #737), which matches the model by "BM85" in its advertised name.
    Quirk(
        model="beurer_bm85",
        kind=DeviceKind.BLOOD_PRESSURE,
        matches=(Match(name_prefix="BM85"), Match(model_number_prefix="BM85")),
        service="00001810-0000-1000-8000-00805f9b34fb",
        characteristic=CharacteristicUuid.BLOOD_PRESSURE_MEASUREMENT.full,
        decoder=beurer.decode_bm85,
        deviation=(
            "Blood Pressure Measurement with big-endian pulse rate and status, a user id byte "
            "whatever the flag, reserved flag bit 6 set and mean arterial pressure 0"
        ),
    ),
    # Name, UUIDs, commands and frames from Contec's SDK (decompiled: ContecSdk name table,
    # tools/b.java, b/a.java), OSCAR's contec_ble_protocol.{h,cpp} and nringelstein/CMS50D-BT.
    Quirk(
        model="contec_cms50d_bt",
        kind=DeviceKind.PULSE_OXIMETER,
        matches=(Match(name_prefix=contec.NAME_PREFIX),),
        service=contec.SERVICE_UUID,
        characteristic=contec.NOTIFY_UUID,
        decoder=contec.decode_contec,
        deviation="no Pulse Oximeter Service: checksummed 0xEB frames after a start command",
        enable=(
            Enable(contec.CONTROL_UUID, contec.PREPARE_REALTIME, with_response=False, pause=1.0),
            Enable(contec.CONTROL_UUID, contec.START_REALTIME, with_response=False),
        ),
        keepalive=Enable(contec.CONTROL_UUID, contec.KEEPALIVE, with_response=False),
        keepalive_every=contec.KEEPALIVE_EVERY,
        live=True,
        sample_every=_ONE_HZ,
        reassembler=contec.ContecReassembler,
    ),
    # Packet layout as Adafruit's CircuitPython BerryMed driver reads it (adafruit_ble_berrymed_
    # pulse_oximeter/__init__.py), service from its adafruit_ble_transparent_uart.py.
    Quirk(
        model="berrymed_bci",
        kind=DeviceKind.PULSE_OXIMETER,
        matches=(Match(name_prefix="BerryMed"),),
        service=berrymed.SERVICE_UUID,
        characteristic=berrymed.NOTIFY_UUID,
        decoder=berrymed.decode_bci,
        deviation="no Pulse Oximeter Service: the BCI 5-byte packet stream on a serial service",
        live=True,
        sample_every=_ONE_HZ,
    ),
)

QUIRKS: MappingProxyType[str, Quirk] = MappingProxyType({row.model: row for row in _ROWS})


def lookup(model: str) -> Quirk:
    try:
        return QUIRKS[model]
    except KeyError:
        raise DecodeError(repr(model), 0, "not a device model with a quirk entry") from None


def decode_all(model: str, payload: bytes) -> Decoded[Any]:
    """Everything ``model``'s value says: readings, skipped fields and the decoded record."""
    return lookup(model).decoder(payload)


def decode(model: str, payload: bytes) -> list[Reading]:
    """The readings of one value from ``model``, as ``gateway.gatt.decode`` gives them."""
    return list(decode_all(model, payload).readings)


def find(
    seen: Seen, kind: DeviceKind | None = None, table: Mapping[str, Quirk] = QUIRKS
) -> Quirk | None:
    """The row for the device ``seen`` (of ``kind``, if known); None: the standard profile."""
    for row in table.values():
        if (kind is None or row.kind is kind) and row.applies(seen):
            return row
    return None


__all__ = [
    "QUIRKS",
    "Enable",
    "Match",
    "Quirk",
    "Reassembler",
    "Seen",
    "decode",
    "decode_all",
    "find",
    "lookup",
]
