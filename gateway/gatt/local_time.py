"""Local Time Information (0x2A0F, Current Time Service): how a device's local time relates to UTC.

Two fields (GATT Specification Supplement, Time Zone and DST Offset):

    Time Zone   sint8  standard-time offset from UTC in 15-minute steps, -48..+56;
                       -128: not known; anything else reserved
    DST Offset  uint8  0 standard time, 2 half an hour of daylight time, 4 daylight time (+1 h),
                       8 double daylight time (+2 h); 255: not known; anything else reserved

A device that exposes it says which offset its wall clock (its Current Time, and so its zoneless
time stamps) is kept in: local time = UTC + time zone + DST offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any

from gateway.gatt.errors import EncodeError, InvalidField
from gateway.gatt.fields import SINT8, UINT8, Codec, enumeration
from gateway.gatt.model import Decoded
from gateway.gatt.reader import ByteReader
from gateway.gatt.uuids import CharacteristicUuid

CHARACTERISTIC = CharacteristicUuid.LOCAL_TIME_INFORMATION.label
ZONE_STEP_MIN = 15
ZONE_RANGE = range(-48, 57)  # -12:00 .. +14:00
ZONE_UNKNOWN = -128


class DstOffset(IntEnum):
    STANDARD = 0
    HALF_AN_HOUR = 2
    DAYLIGHT = 4
    DOUBLE_DAYLIGHT = 8
    UNKNOWN = 255


# Minutes each DST Offset value adds to the time zone; UNKNOWN adds none it could say.
DST_MINUTES: MappingProxyType[DstOffset, int | None] = MappingProxyType(
    {
        DstOffset.STANDARD: 0,
        DstOffset.HALF_AN_HOUR: 30,
        DstOffset.DAYLIGHT: 60,
        DstOffset.DOUBLE_DAYLIGHT: 120,
        DstOffset.UNKNOWN: None,
    }
)


def _zone(raw: bytes) -> int:
    steps = SINT8.unpack(raw)
    if steps != ZONE_UNKNOWN and steps not in ZONE_RANGE:
        raise InvalidField(f"time zone {steps} (x 15 min) is reserved: outside -48..+56")
    return steps


TIME_ZONE: Codec[int] = Codec(SINT8.type_name, 1, _zone, SINT8.pack)
DST_OFFSET: Codec[DstOffset] = enumeration(DstOffset, UINT8)
# The fields in order, as data: (name, codec).
FIELDS: tuple[tuple[str, Codec[Any]], ...] = (("time_zone", TIME_ZONE), ("dst_offset", DST_OFFSET))


@dataclass(frozen=True, slots=True)
class LocalTimeInformation:
    time_zone: int = ZONE_UNKNOWN  # 15-minute steps
    dst_offset: DstOffset = DstOffset.UNKNOWN

    @classmethod
    def of_minutes(cls, zone_min: int, dst_min: int) -> LocalTimeInformation:
        """The value a device in a zone ``zone_min`` east of UTC sends, ``dst_min`` into DST."""
        offsets = {minutes: offset for offset, minutes in DST_MINUTES.items()}
        if zone_min % ZONE_STEP_MIN or dst_min not in offsets:
            raise EncodeError(f"no Local Time Information says {zone_min} + {dst_min} min")
        return cls(zone_min // ZONE_STEP_MIN, offsets[dst_min])

    @property
    def zone_min(self) -> int | None:
        """Standard-time offset east of UTC in minutes; None: the device does not know it."""
        return None if self.time_zone == ZONE_UNKNOWN else self.time_zone * ZONE_STEP_MIN

    @property
    def dst_min(self) -> int | None:
        return DST_MINUTES[self.dst_offset]

    def encode(self) -> bytes:
        return TIME_ZONE.pack(self.time_zone) + DST_OFFSET.pack(self.dst_offset)


def decode_local_time_information(payload: bytes) -> LocalTimeInformation:
    reader = ByteReader(CHARACTERISTIC, payload)
    values: dict[str, Any] = {}
    for name, codec in FIELDS:
        offset = reader.offset
        try:
            values[name] = codec.unpack(reader.take(codec.size, name))
        except InvalidField as error:
            raise reader.error(f"field {name!r}: {error}", offset=offset) from None
    reader.expect_end()
    return LocalTimeInformation(**values)


def interpret_local_time_information(
    info: LocalTimeInformation,
) -> Decoded[LocalTimeInformation]:
    return Decoded(CHARACTERISTIC, info)
