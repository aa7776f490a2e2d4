"""What the gateway knows about each paired device, for its sessions and its status report."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bleak.backends.device import BLEDevice

from gateway.clock_check import DeviceOffset
from telemon.payload import DEVICE_IDENTITY_FIELDS, DEVICE_STRING_MAX, DeviceHealth, PairedDevice
from telemon.system_id import is_known
from telemon.time_correction import ClockSource

# A GATT clock counts whole seconds: a stamp made just after the gateway set it may read a
# fraction earlier than the setting.
CLOCK_GRAIN = timedelta(seconds=1)
# Advertising unheard this long, then heard again: the device went away (asleep, out of range)
# and came back.
ABSENT_AFTER = 60.0


@dataclass(slots=True)
class DeviceState:
    paired: PairedDevice
    battery_pct: int | None = None
    last_seen_at: datetime | None = None
    last_reading_at: datetime | None = None
    rssi: int | None = None
    connected: bool = False
    clock_skew: timedelta | None = None  # device minus gateway; None = not known
    clock_source: ClockSource | None = None  # how clock_skew was measured
    # The clock keeps standard time all year (True, learnt in summer) or follows DST (False);
    # None: not learnt yet.
    ignores_dst: bool | None = None
    # The zone and DST offset the device declares (Local Time Information), read each
    # connection; None: it declares none, and its stamps are read in the patient's zone.
    local_time: DeviceOffset | None = None
    # When the gateway last set the device's clock, and how far off it was then.
    clock_set_at: datetime | None = None
    clock_set_from: timedelta | None = None
    clock_set_source: ClockSource | None = None
    information: dict[str, str] = field(default_factory=dict)
    advertised_name: str | None = None
    manufacturer_data: dict[int, bytes] = field(default_factory=dict)
    needs_pairing: bool = False  # learnt when the device refused an unencrypted link
    bonds_lost: int = 0  # times the device refused the bond's key and was paired again
    keeps_records: bool = False  # refused to delete its stored records (RACP op code 0x02)
    sessions: int = 0
    readings: int = 0
    decode_errors: int = 0
    ble_device: BLEDevice | None = None
    last_advert_monotonic: float = 0.0
    # What the advertising carries besides the name (manufacturer and service data): a device
    # that flags new data there changes it. None: nothing heard since the last session.
    advertised_data: tuple[object, ...] | None = None
    _advertised: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when the device may have something new: its advertising data changed, or it came back
    # after being gone (the manager's wait after an empty session ends at once).
    _news: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def address(self) -> str:
        return self.paired.address

    def advertised(
        self,
        ble_device: BLEDevice,
        rssi: int | None,
        at: datetime,
        *,
        name: str | None = None,
        manufacturer_data: Mapping[int, bytes] | None = None,
        service_data: Mapping[str, bytes] | None = None,
        absent_after: float = ABSENT_AFTER,
    ) -> None:
        self.ble_device = ble_device
        # A report may lack the name (an advertisement without its scan response): keep the last.
        self.advertised_name = name or self.advertised_name
        if manufacturer_data:
            self.manufacturer_data = dict(manufacturer_data)
        if manufacturer_data or service_data:
            data = (
                tuple(sorted((manufacturer_data or {}).items())),
                tuple(sorted((service_data or {}).items())),
            )
            if self.advertised_data is not None and data != self.advertised_data:
                self._news.set()
            self.advertised_data = data
        now = time.monotonic()
        if now - self.last_advert_monotonic > absent_after:
            self._news.set()  # gone a while and back: it may have measured meanwhile
        self.rssi = rssi
        self.last_seen_at = at
        self.last_advert_monotonic = now
        self._advertised.set()

    def session_ended(self) -> None:
        """The link is down: the device is as good as just heard, and its advertising data
        from now on is compared with what it advertises next, not with what came before."""
        self.last_advert_monotonic = time.monotonic()
        self.advertised_data = None
        self._news.clear()

    async def news_within(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the device shows it may have something new (True)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._news.wait()
                return True
        return False

    async def next_advertisement(self) -> BLEDevice:
        """Wait for an advertisement heard after this call (the device is there now)."""
        self._advertised.clear()
        await self._advertised.wait()
        assert self.ble_device is not None
        return self.ble_device

    def clock_was_set(self, at: datetime) -> None:
        """The gateway set the device's clock at ``at``: what it knew of the clock is history,
        kept for the stamps the old clock made."""
        self.clock_set_at = at
        self.clock_set_from, self.clock_set_source = self.clock_skew, self.clock_source
        self.clock_skew = self.clock_source = None
        self.ignores_dst = None  # it shows local time now; whether it will follow DST is unknown

    def clock_at(
        self, instant: datetime | None, received_at: datetime, *, fresh: bool
    ) -> tuple[timedelta | None, ClockSource | None, bool]:
        """The clock offset for a stamp read as ``instant``, how it was known, and whether it is
        in doubt: a stamp the old clock made needs the old clock's offset.

        The reset clock makes stamps from the moment it was set; the old one made them up to
        what it showed then (set time + old offset). Before the set time, or beyond what the new
        clock can have stamped yet, a stamp is the old clock's. A clock that was ahead leaves
        a window both could have stamped: read with the new clock, and in doubt.
        """
        current = self.clock_skew, self.clock_source, False
        if self.clock_set_at is None or instant is None or fresh:
            return current
        old = self.clock_set_from, self.clock_set_source, False
        if instant < self.clock_set_at - CLOCK_GRAIN or instant > received_at + CLOCK_GRAIN:
            return old
        ahead = self.clock_set_from or timedelta(0)
        if instant <= self.clock_set_at + ahead + CLOCK_GRAIN:
            return self.clock_skew, self.clock_source, ahead > CLOCK_GRAIN
        return current

    def health(self) -> DeviceHealth:
        declared = self.local_time
        return DeviceHealth(
            device_id=self.paired.address,
            kind=self.paired.kind,
            battery_pct=self.battery_pct,
            last_seen_at=self.last_seen_at,
            last_reading_at=self.last_reading_at,
            rssi=self.rssi,
            connected=self.connected,
            clock_skew_s=_seconds(self.clock_skew),
            clock_set_at=self.clock_set_at,
            clock_set_from_s=_seconds(self.clock_set_from),
            # The offsets the device declares govern how its stamps are read; without them,
            # what was learnt of its clock does.
            clock_ignores_dst=self.ignores_dst if declared is None else None,
            clock_zone_min=None if declared is None else declared.zone_min,
            clock_dst_min=None if declared is None else declared.dst_min,
            **self._identity(),
        )

    def _identity(self) -> dict[str, str]:
        """What Device Information said the device is; an all-zero System ID says nothing, and
        a string too long to be a name is left out rather than spoil the whole status."""
        reported = {
            k: v
            for k, v in self.information.items()
            if k in DEVICE_IDENTITY_FIELDS and 0 < len(v) <= DEVICE_STRING_MAX
        }
        if not is_known(reported.get("system_id")):
            reported.pop("system_id", None)
        return reported


def _seconds(delta: timedelta | None) -> int | None:
    return None if delta is None else round(delta.total_seconds())
