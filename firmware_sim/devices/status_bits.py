"""Turn a measurement's telemon flags back into a profile's status bits.

The gateway's codecs map status bits to flag names (``gateway.gatt``'s tables); a device does
the reverse, from the same tables, so the two cannot drift apart. Flags a profile has no bit for
(``battery_low`` on a cuff, whose battery level says it anyway) are not sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntFlag
from typing import TypeVar

F = TypeVar("F", bound=IntFlag)


def status_bits(flags: Iterable[str], table: Mapping[int, str], status_type: type[F]) -> F:
    bit_of = {name: bit for bit, name in table.items()}
    bits = 0
    for flag in flags:
        bits |= bit_of.get(flag, 0)
    return status_type(bits)
