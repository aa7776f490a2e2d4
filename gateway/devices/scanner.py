"""Listening for advertisements: one bleak scanner, restartable by the watchdog."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

log = logging.getLogger(__name__)

AdvertisementCallback = Callable[[BLEDevice, AdvertisementData], None]


class AdvertisementMonitor:
    """Scans continuously and hands every advertisement to ``on_advertisement``.

    Filtering (known devices only) is the callback's job: the scanner sees everything, so
    that a restart can be told apart from a quiet neighbourhood in the logs.
    """

    def __init__(
        self,
        on_advertisement: AdvertisementCallback,
        *,
        backend: type[BaseBleakScanner] | None = None,
    ) -> None:
        self._on_advertisement = on_advertisement
        self._backend = backend
        self._scanner: BleakScanner | None = None

    @property
    def running(self) -> bool:
        return self._scanner is not None

    async def start(self) -> None:
        if self._scanner is not None:
            return
        scanner = BleakScanner(self._on_advertisement, backend=self._backend)
        await scanner.start()
        self._scanner = scanner

    async def stop(self) -> None:
        scanner, self._scanner = self._scanner, None
        if scanner is None:
            return
        try:
            await scanner.stop()
        except Exception as error:  # a wedged stack may fail to stop; a new scanner follows
            log.warning("stopping the scanner failed: %s", error)

    async def restart(self) -> None:
        await self.stop()
        await self.start()
