"""Current Time (0x2A2B), the clock characteristic the gateway reads and sets (issue 19)."""

from datetime import datetime

import pytest

from gateway.gatt import CurrentTime, DecodeError, GattDateTime, LocalTimeInformation, decode_all
from gateway.gatt.current_time import EXTERNAL_REFERENCE
from gateway.gatt.errors import InvalidField


def test_the_value_that_sets_a_clock_round_trips() -> None:
    value = CurrentTime.at(datetime(2026, 3, 29, 3, 0, 5, 500_000))
    raw = value.pack()
    # Date Time, then Sunday (7), half a second in 1/256, "external reference time update".
    assert raw == bytes([0xEA, 0x07, 3, 29, 3, 0, 5, 7, 128, EXTERNAL_REFERENCE])
    assert CurrentTime.unpack(raw) == value
    assert value.date_time == GattDateTime(2026, 3, 29, 3, 0, 5)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (bytes([0xEA, 0x07, 3, 29, 3, 0, 5, 8, 0, 0]), "day of week 8"),
        (bytes([0xEA, 0x07, 3, 29, 3, 0, 5, 7, 0]), "10 bytes"),
        (bytes([0xEA, 0x07, 2, 30, 3, 0, 5, 1, 0, 0]), "does not exist"),
    ],
)
def test_a_reserved_or_short_value_is_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidField, match=fragment):
        CurrentTime.unpack(raw)


# -- Local Time Information (0x2A0F): Time Zone (sint8, 15-minute steps, -48..+56, -128 unknown),
# DST Offset (uint8: 0 standard, 2 +0.5 h, 4 +1 h, 8 +2 h, 255 unknown), per the GATT
# Specification Supplement's Time Zone and DST Offset characteristics.


@pytest.mark.parametrize(
    ("raw", "zone_min", "dst_min"),
    [
        (bytes([0x04, 0x04]), 60, 60),  # Rome in summer: UTC+1, daylight time
        (bytes([0x04, 0x00]), 60, 0),  # Rome in winter
        (bytes([0x00, 0x04]), 0, 60),  # London in summer
        (bytes([0xEC, 0x04]), -300, 60),  # New York in summer: -20 x 15 min
        (bytes([0x16, 0x00]), 330, 0),  # India, UTC+5:30: 22 x 15 min
        (bytes([0x23, 0x00]), 525, 0),  # Chatham Islands standard time, +8:45
        (bytes([0xD0, 0x00]), -720, 0),  # -48: the westmost zone
        (bytes([0x38, 0x00]), 840, 0),  # +56: the eastmost
        (bytes([0x28, 0x02]), 600, 30),  # Lord Howe Island in summer: +10:00, half an hour
        (bytes([0x04, 0x08]), 60, 120),  # double daylight time
        (bytes([0x80, 0x04]), None, 60),  # time zone not known
        (bytes([0x04, 0xFF]), 60, None),  # DST offset not known
    ],
)
def test_local_time_information_vectors(raw: bytes, zone_min, dst_min) -> None:
    decoded = decode_all("2a0f", raw)
    assert decoded.readings == ()
    info = decoded.record
    assert (info.zone_min, info.dst_min) == (zone_min, dst_min)
    assert info.encode() == raw
    if zone_min is not None and dst_min is not None:
        assert LocalTimeInformation.of_minutes(zone_min, dst_min) == info


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (bytes([0x39, 0x00]), "time zone 57"),
        (bytes([0xCF, 0x00]), "time zone -49"),
        (bytes([0x04, 0x01]), "DstOffset value 1 is reserved"),
        (bytes([0x04, 0x06]), "DstOffset value 6 is reserved"),
        (bytes([0x04]), "truncated"),
        (bytes([0x04, 0x00, 0x00]), "trailing"),
    ],
)
def test_local_time_information_reserved_or_malformed_is_refused(raw: bytes, fragment) -> None:
    with pytest.raises(DecodeError, match=fragment) as info:
        decode_all("2a0f", raw)
    assert info.value.characteristic == "local_time_information"
