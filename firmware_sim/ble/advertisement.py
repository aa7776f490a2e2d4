"""Translate bumble advertising reports into bleak's `AdvertisementData`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from bleak.backends.scanner import AdvertisementData
from bleak.uuids import normalize_uuid_str
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement

__all__ = ["advertisement_data", "bleak_uuid"]

_Type = AdvertisingData.Type

_SERVICE_UUID_LISTS: Final = (
    _Type.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    _Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    _Type.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    _Type.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
    _Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    _Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
)
_SERVICE_DATA: Final = (
    _Type.SERVICE_DATA_16_BIT_UUID,
    _Type.SERVICE_DATA_32_BIT_UUID,
    _Type.SERVICE_DATA_128_BIT_UUID,
)
# bleak reports RSSI as a plain int; controllers use 127 for "not available".
_RSSI_UNKNOWN = -127


def bleak_uuid(uuid: UUID) -> str:
    """bleak's spelling of a UUID: 128-bit, lower case, dashed."""
    return normalize_uuid_str(uuid.to_hex_str("-"))


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What one advertising payload says, whatever the report's RSSI."""

    local_name: str | None
    manufacturer_data: dict[int, bytes]
    service_data: dict[str, bytes]
    service_uuids: list[str]
    tx_power: int | None


# A device repeats the same payload every advertising interval (20 ms for the simulated ones):
# parsed once, not every time (bumble's UUID parsing searches its registry at each UUID).
@lru_cache(maxsize=256)
def _parse(structures: tuple[tuple[int, bytes], ...]) -> _Parsed:
    data = AdvertisingData(structures)

    # A scan response repeats structures of the advertisement it answers; keep each once.
    service_uuids: list[str] = []
    for ad_type in _SERVICE_UUID_LISTS:
        for uuids in data.get_all(ad_type):
            for uuid in uuids:
                if (text := bleak_uuid(uuid)) not in service_uuids:
                    service_uuids.append(text)

    service_data: dict[str, bytes] = {}
    for data_type in _SERVICE_DATA:
        for service, payload in data.get_all(data_type):
            service_data[bleak_uuid(service)] = bytes(payload)

    manufacturer_data = {
        company: bytes(payload)
        for company, payload in data.get_all(_Type.MANUFACTURER_SPECIFIC_DATA)
    }

    local_name = data.get(_Type.COMPLETE_LOCAL_NAME) or data.get(_Type.SHORTENED_LOCAL_NAME)

    # TX Power Level is a signed octet; bumble's decoder reads it unsigned.
    raw_tx_power = data.get(_Type.TX_POWER_LEVEL, raw=True)
    tx_power = int.from_bytes(raw_tx_power[:1], "little", signed=True) if raw_tx_power else None
    return _Parsed(
        local_name if isinstance(local_name, str) else None,
        manufacturer_data,
        service_data,
        service_uuids,
        tx_power,
    )


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """The bleak view of one report (advertising PDU merged with its scan response)."""
    parsed = _parse(
        tuple((int(kind), bytes(value)) for kind, value in advertisement.data.ad_structures)
    )

    rssi = advertisement.rssi
    if rssi == Advertisement.RSSI_NOT_AVAILABLE:
        rssi = _RSSI_UNKNOWN

    # Copies: the parse is shared by every report with the same payload.
    return AdvertisementData(
        local_name=parsed.local_name,
        manufacturer_data=dict(parsed.manufacturer_data),
        service_data=dict(parsed.service_data),
        service_uuids=list(parsed.service_uuids),
        tx_power=parsed.tx_power,
        rssi=rssi,
        platform_data=(advertisement,),
    )
