"""Devices that keep measurements until a central has confirmed them.

Cuffs, thermometers and scales store what they measured and indicate it, oldest first, as soon
as a central is connected and has enabled indications. An indication counts as delivered only
once confirmed (ATT Handle Value Confirmation); one cut short by a lost link is sent again on
the next connection, as a device cannot know whether it arrived.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from bumble.device import Connection
from bumble.gatt import Characteristic
from bumble.link import LocalLink

from firmware_sim.devices.base import SimulatedDevice
from firmware_sim.physiology import SimulatedMeasurement

__all__ = ["IndicationBacklog", "StoringDevice"]


class IndicationBacklog:
    def __init__(
        self, device: SimulatedDevice, characteristic: Characteristic, *, capacity: int = 200
    ) -> None:
        self._device = device
        self._characteristic = characteristic
        # Device memories are finite; when full, the oldest record is overwritten.
        self._pending: deque[bytes] = deque(maxlen=capacity)
        self._sending: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def sending(self) -> bool:
        return self._sending is not None and not self._sending.done()

    def add(self, payload: bytes) -> None:
        self._pending.append(payload)
        self.flush()

    def clear(self) -> None:
        self._pending.clear()

    def pending(self) -> list[bytes]:
        """What is not confirmed yet, oldest first."""
        return list(self._pending)

    def flush(self) -> None:
        """Start sending what is pending, if a central is listening and nothing is in flight."""
        if self.sending or not self._pending:
            return
        if self._device.subscribed(self._characteristic, indicate=True):
            self._sending = self._device.spawn(self._send_pending())

    async def _send_pending(self) -> None:
        while self._pending and self._device.subscribed(self._characteristic, indicate=True):
            payload = self._pending[0]
            if not await self._device.indicate(self._characteristic, payload):
                return
            # Removed only now: a record added meanwhile went to the end of the queue.
            if self._pending and self._pending[0] is payload:
                self._pending.popleft()


class StoringDevice(SimulatedDevice):
    """A device that stores each reading and indicates it on ``measurement`` until confirmed.

    Subclasses create ``measurement`` in ``_profile_services`` and say how a reading is encoded.
    """

    measurement: Characteristic

    def __init__(self, link: LocalLink, address: Any = None, **kwargs: Any) -> None:
        super().__init__(link, address, **kwargs)
        self._stored = IndicationBacklog(self, self.measurement)

    @property
    def undelivered(self) -> int:
        """Readings in memory the central has not confirmed yet."""
        return len(self._stored)

    def encode(self, measurement: SimulatedMeasurement) -> bytes:
        raise NotImplementedError

    async def record(self, measurement: SimulatedMeasurement) -> None:
        self._check_kind(measurement)
        self._stored.add(self.encode(measurement))
        self._took_reading()

    def _on_connected(self, connection: Connection) -> None:
        self._stored.flush()

    def _on_subscribed(self, characteristic: Characteristic) -> None:
        if characteristic is self.measurement:
            self._stored.flush()

    def _busy(self) -> bool:
        return self._stored.sending
