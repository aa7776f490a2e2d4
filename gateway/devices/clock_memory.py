"""What the gateway remembers of each device's clock between connections and restarts.

A clock that keeps standard time all year can only be recognised in summer, and only when its
current time is read or a reading measured now arrives; a stored reading that comes first on a
later connection (or after the gateway restarted) must still be read as standard time. The
flag is kept in the outbox's state, as a glucometer's sync position is, and changes only when
the device's clock is seen following DST again (or the gateway sets it).
"""

from __future__ import annotations

from gateway.outbox import Outbox


class ClockMemory:
    PREFIX = "clock_ignores_dst:"

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._ignores_dst = {
            key.removeprefix(self.PREFIX): value == "1"
            for key, value in outbox.state(self.PREFIX).items()
        }

    def ignores_dst(self, address: str) -> bool:
        return self._ignores_dst.get(address.upper(), False)

    def remember(self, address: str, ignores_dst: bool) -> None:
        """Keep what was learnt of the clock; written only when it changes (rare: no thread)."""
        key = address.upper()
        if self._ignores_dst.get(key, False) == ignores_dst:
            return
        self._outbox.append((), state={f"{self.PREFIX}{key}": "1" if ignores_dst else "0"})
        self._ignores_dst[key] = ignores_dst
