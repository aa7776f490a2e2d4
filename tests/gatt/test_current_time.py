"""Current Time (0x2A2B), the clock characteristic the gateway reads and sets (issue 19)."""

from datetime import datetime

import pytest

from gateway.gatt import CurrentTime, GattDateTime
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
