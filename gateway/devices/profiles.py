"""What a session with each kind of device looks like, as data.

One row per device kind: the service it advertises, the characteristics to subscribe to, whether
it keeps a record store read through RACP, how the connection ends. The session code reads this
table; it has no per-kind branches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from bleak.uuids import normalize_uuid_16

from gateway.gatt import CharacteristicUuid
from telemon.device_kinds import DeviceKind

_C = CharacteristicUuid


class SessionEnd(StrEnum):
    """Who ends the connection once the data is in."""

    # Cuffs, meters, thermometers, scales connect after a measurement, send, and hang up;
    # the gateway only hangs up itself if the device goes quiet and forgets to.
    DEVICE_DISCONNECTS = "device_disconnects"
    # An oximeter streams while worn; the gateway stays until the stream stops.
    STREAM = "stream"


class RecordAccess(StrEnum):
    """How a device's record store is read through the Record Access Control Point."""

    # GLS: numbered records; the ones after the last stored are asked for (glucose_sync.py).
    GLUCOSE = "glucose"
    # PLXS: stored spot checks, when PLX Features says so; all reported, then deleted
    # (plx_sync.py).
    PLX_SPOT_CHECKS = "plx_spot_checks"


@dataclass(frozen=True, slots=True)
class SessionProfile:
    kind: DeviceKind
    service: int  # the 16-bit service UUID the device advertises
    subscribe: tuple[CharacteristicUuid, ...]  # measurement characteristics (notify/indicate)
    # The defaults describe the common device: it measures, connects, sends and hangs up.
    optional: frozenset[CharacteristicUuid] = frozenset()  # subscribed when present
    live: frozenset[CharacteristicUuid] = frozenset()  # measured now, never from memory
    continuous: frozenset[CharacteristicUuid] = frozenset()  # high-rate, evicted first
    record_access: RecordAccess | None = None  # the device keeps a record store (RACP)
    end: SessionEnd = SessionEnd.DEVICE_DISCONNECTS
    idle_timeout: float = 20.0  # seconds without data before the gateway hangs up
    # Whether empty sessions in a row make the manager wait longer before the next (its
    # ``reconnect_waits``). Not for a device worn for continuous measurement: once put on it
    # must be read at once, and many say so in no advertising change.
    idle_backoff: bool = True

    @property
    def service_uuid(self) -> str:
        return normalize_uuid_16(self.service)


PROFILES: MappingProxyType[DeviceKind, SessionProfile] = MappingProxyType(
    {
        DeviceKind.PULSE_OXIMETER: SessionProfile(
            kind=DeviceKind.PULSE_OXIMETER,
            service=0x1822,
            subscribe=(
                _C.PLX_SPOT_CHECK_MEASUREMENT,
                _C.PLX_CONTINUOUS_MEASUREMENT,
                _C.RECORD_ACCESS_CONTROL_POINT,
            ),
            # PLXS requires one of the two; many finger clips have only the continuous one. The
            # RACP is there only on units that store spot checks.
            optional=frozenset(
                {
                    _C.PLX_SPOT_CHECK_MEASUREMENT,
                    _C.PLX_CONTINUOUS_MEASUREMENT,
                    _C.RECORD_ACCESS_CONTROL_POINT,
                }
            ),
            live=frozenset({_C.PLX_SPOT_CHECK_MEASUREMENT, _C.PLX_CONTINUOUS_MEASUREMENT}),
            continuous=frozenset({_C.PLX_CONTINUOUS_MEASUREMENT}),
            record_access=RecordAccess.PLX_SPOT_CHECKS,
            end=SessionEnd.STREAM,
            idle_timeout=30.0,
            idle_backoff=False,
        ),
        DeviceKind.BLOOD_PRESSURE: SessionProfile(
            kind=DeviceKind.BLOOD_PRESSURE,
            service=0x1810,
            subscribe=(_C.BLOOD_PRESSURE_MEASUREMENT,),
        ),
        DeviceKind.GLUCOMETER: SessionProfile(
            kind=DeviceKind.GLUCOMETER,
            service=0x1808,
            subscribe=(
                _C.GLUCOSE_MEASUREMENT,
                _C.GLUCOSE_MEASUREMENT_CONTEXT,
                _C.RECORD_ACCESS_CONTROL_POINT,
            ),
            optional=frozenset({_C.GLUCOSE_MEASUREMENT_CONTEXT}),
            record_access=RecordAccess.GLUCOSE,
        ),
        DeviceKind.THERMOMETER: SessionProfile(
            kind=DeviceKind.THERMOMETER,
            service=0x1809,
            subscribe=(_C.TEMPERATURE_MEASUREMENT,),
        ),
        DeviceKind.WEIGHT_SCALE: SessionProfile(
            kind=DeviceKind.WEIGHT_SCALE,
            service=0x181D,
            subscribe=(_C.WEIGHT_MEASUREMENT,),
        ),
    }
)

BATTERY_LEVEL = _C.BATTERY_LEVEL
DEVICE_INFORMATION = (
    _C.SYSTEM_ID,
    _C.MANUFACTURER_NAME_STRING,
    _C.MODEL_NUMBER_STRING,
    _C.SERIAL_NUMBER_STRING,
    _C.HARDWARE_REVISION_STRING,
    _C.FIRMWARE_REVISION_STRING,
    _C.SOFTWARE_REVISION_STRING,
)
# Current Time Service (0x1805) Current Time: a Date Time followed by day of week, fractions and
# reason. Few health devices expose it; when one does, it is the best clock check there is.
CURRENT_TIME = 0x2A2B
# Date Time as a characteristic of its own: some devices expose their clock so, and only so.
DATE_TIME = 0x2A08
# Current Time Service Local Time Information: the zone and DST offset the device's clock keeps.
LOCAL_TIME_INFORMATION = _C.LOCAL_TIME_INFORMATION
CLOCKS = (CURRENT_TIME, DATE_TIME)  # where to read (and set) a device's clock, best first

_BY_SERVICE = {normalize_uuid_16(p.service): p.kind for p in PROFILES.values()}


def kind_for_services(service_uuids: Iterable[str]) -> DeviceKind | None:
    """The device kind announced by an advertisement's service UUIDs (bleak's 128-bit form)."""
    for uuid in service_uuids:
        kind = _BY_SERVICE.get(uuid.lower())
        if kind is not None:
            return kind
    return None
