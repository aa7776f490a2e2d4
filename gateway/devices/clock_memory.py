"""What the gateway remembers of each device's clock between connections and restarts.

A clock that keeps standard time all year can only be recognised in summer, and only when its
current time is read or a reading measured now arrives; a stored reading that comes first on a
later connection (or after the gateway restarted) must still be read as standard time. The
flag is kept in the outbox's state, as a glucometer's sync position is, and changes only when
the device's clock is seen following DST again (or the gateway sets it). Not knowing (no summer
seen yet) is kept apart from knowing it follows DST: the status reports which (issue 19).
"""

from __future__ import annotations

from gateway.outbox import Outbox


class ClockMemory:
    PREFIX = "clock_ignores_dst:"

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._ignores_dst = {
            key.removeprefix(self.PREFIX): _KNOWN.get(value)
            for key, value in outbox.state(self.PREFIX).items()
        }

    def ignores_dst(self, address: str) -> bool | None:
        """True: standard time all year; False: it follows DST; None: not learnt yet."""
        return self._ignores_dst.get(address.upper())

    def remember(self, address: str, ignores_dst: bool | None) -> None:
        """Keep what was learnt of the clock (None: forget it, the clock was set); written only
        when it changes (rare: no thread)."""
        key = address.upper()
        if self._ignores_dst.get(key) == ignores_dst:
            return
        self._outbox.append((), state={f"{self.PREFIX}{key}": _STORED[ignores_dst]})
        self._ignores_dst[key] = ignores_dst


_STORED = {True: "1", False: "0", None: ""}
_KNOWN = {stored: known for known, stored in _STORED.items()}
