"""Sessions with devices that have a row in the quirks table (``gateway.quirks``).

The connection, device health, idle end and recording are the standard session's; a quirk
changes only where the values come from (its characteristic, after its enable write, if any)
and how they are decoded. Bad bytes take the same path as a standard profile's: rejected, with
the reason, into the log a technician reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from gateway.devices.profiles import SessionProfile
from gateway.devices.recorder import Recorder
from gateway.devices.session import DeviceSession, Received, SessionError, SessionOptions
from gateway.devices.state import DeviceState
from gateway.gatt import DecodeError
from gateway.gatt.quirks.oximetry import Reassembled
from gateway.quirks import Enable, Quirk, Seen, find

log = logging.getLogger(__name__)


def seen(state: DeviceState) -> Seen:
    return Seen(state.advertised_name, state.manufacturer_data, state.information)


def open_session(
    state: DeviceState,
    profile: SessionProfile,
    recorder: Recorder,
    options: SessionOptions,
    recent: deque[bytes],
) -> DeviceSession:
    """The quirk's session if a row of the table applies to the device, else the standard one."""
    quirk = find(seen(state), state.paired.kind)
    if quirk is None:
        return DeviceSession(state, profile, recorder, options, recent)
    return QuirkSession(state, profile, recorder, options, recent, quirk)


@dataclass(frozen=True, slots=True)
class QuirkValue(Received):
    """A value from the quirk's characteristic (``characteristic`` is unused: 0)."""


class SampleGate:
    """At most one sample per ``every`` seconds of a stream faster than the standard 1 Hz.

    The display values a stream repeats many times a second are one measurement, not many;
    storing each would multiply the outbox and the uplink for nothing.
    """

    def __init__(self, every: float | None) -> None:
        self.every = None if every is None else timedelta(seconds=every)
        self._last: datetime | None = None

    def admit(self, at: datetime) -> bool:
        if self.every is None:
            return True
        if self._last is not None and timedelta(0) <= at - self._last < self.every:
            return False
        self._last = at
        return True


class QuirkSession(DeviceSession):
    def __init__(
        self,
        state: DeviceState,
        profile: SessionProfile,
        recorder: Recorder,
        options: SessionOptions,
        recent_payloads: deque[bytes],
        quirk: Quirk,
    ) -> None:
        super().__init__(state, profile, recorder, options, recent_payloads)
        self.quirk = quirk
        self._gate = SampleGate(quirk.sample_every)
        self._keepalive: asyncio.Task[None] | None = None
        self._reassembler = None if quirk.reassembler is None else quirk.reassembler()

    async def run(self, ble_device: BLEDevice) -> None:
        try:
            await super().run(ble_device)
        finally:
            if self._keepalive is not None:
                self._keepalive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._keepalive

    def _characteristic(self, client: BleakClient, write: Enable) -> BleakGATTCharacteristic:
        characteristic = client.services.get_characteristic(write.characteristic)
        if characteristic is None:
            raise SessionError(
                f"{self.state.address} ({self.quirk.model}) has no {write.characteristic}"
            )
        return characteristic

    async def _write(self, client: BleakClient, write: Enable) -> None:
        characteristic = self._characteristic(client, write)
        await self._secured(
            client,
            lambda: client.write_gatt_char(
                characteristic, write.value, response=write.with_response
            ),
        )
        if write.pause:
            await asyncio.sleep(write.pause)

    async def _keep_alive(self, client: BleakClient, write: Enable, every: float) -> None:
        """The write some devices need every few seconds, or they stop streaming."""
        while client.is_connected:
            await asyncio.sleep(every)
            try:
                await self._write(client, write)
            except (BleakError, OSError, SessionError) as error:
                log.info("%s: keep-alive write failed: %s", self.state.address, error)
                return

    async def _subscribe(self, client: BleakClient) -> None:
        quirk = self.quirk
        characteristic = client.services.get_characteristic(quirk.characteristic)
        if characteristic is None:
            raise SessionError(
                f"{self.state.address} looks like a {quirk.model} but has no {quirk.characteristic}"
            )
        log.info("%s is a %s: %s", self.state.address, quirk.model, quirk.deviation)
        await self._secured(client, lambda: client.start_notify(characteristic, self._on_quirk))
        for write in quirk.enable:
            await self._write(client, write)
        if quirk.keepalive is not None and quirk.keepalive_every:
            self._characteristic(client, quirk.keepalive)  # missing: fail now, not later
            self._keepalive = asyncio.create_task(
                self._keep_alive(client, quirk.keepalive, quirk.keepalive_every),
                name=f"keep-alive {self.state.address}",
            )
        self._subscribed_at = self.recorder.policy.now()

    def _on_quirk(self, _characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        self._touch()
        self._queue.put_nowait(QuirkValue(0, bytes(data), self.recorder.policy.now()))

    async def _record(self, item: Received) -> None:
        if not isinstance(item, QuirkValue):
            await super()._record(item)  # battery, Device Information: the standard ones
            return
        if self._reassembler is None:
            await self._decode_quirk(item.payload, item)
            return
        reassembled = self._reassembler.feed(item.payload)
        self._reject_dropped(reassembled)
        for payload in reassembled.payloads:
            await self._decode_quirk(payload, item)

    async def _consume(self) -> None:
        await super()._consume()
        if self._reassembler is not None:
            self._reject_dropped(self._reassembler.flush())  # a fragment never completed

    def _reject_dropped(self, reassembled: Reassembled) -> None:
        label = f"{self.quirk.model} stream"
        for dropped in reassembled.dropped:
            self.recorder.reject(self.state, label, dropped.payload, dropped.reason)

    async def _decode_quirk(self, payload: bytes, item: Received) -> None:
        try:
            decoded = self.quirk.decoder(payload)
        except DecodeError as error:
            self.recorder.reject(self.state, error.characteristic, payload, str(error))
            return
        if decoded.readings and not self._gate.admit(item.at):
            return
        await self._store(decoded, item, live=self.quirk.live, continuous=self.quirk.continuous)
