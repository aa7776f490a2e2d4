"""One connection to one device: subscribe, receive, read its health, end as the device expects.

Plain bleak API (``BleakClient``); only the backend class differs between the Raspberry Pi
(BlueZ) and the simulated link (bumble). Values are queued by the notification callback and
recorded by one consumer task, so they reach the outbox in the order they arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError, BleakGATTProtocolError, BleakGATTProtocolErrorCode
from bleak.uuids import normalize_uuid_16

from gateway.clock_check import DeviceOffset, needs_setting
from gateway.devices.bonding import bond_refused, forget_bond
from gateway.devices.glucose_sync import ContextJoiner, already_stored, is_anchor, next_request
from gateway.devices.plx_sync import sync_spot_checks, wants_sync
from gateway.devices.profiles import (
    BATTERY_LEVEL,
    CLOCKS,
    CURRENT_TIME,
    DEVICE_INFORMATION,
    LOCAL_TIME_INFORMATION,
    RecordAccess,
    SessionProfile,
)
from gateway.devices.recorder import Recorder
from gateway.devices.recovery import GLUCOSE_RESTARTS
from gateway.devices.state import DeviceState
from gateway.gatt import (
    BatteryLevel,
    CharacteristicUuid,
    CurrentTime,
    Decoded,
    DecodeError,
    DeviceInformation,
    GattDateTime,
    LocalTimeInformation,
    PlxFeatures,
    RacpMessage,
    RacpOpCode,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    SystemIdentifier,
    decode_all,
    decode_plx_features,
    short_uuid,
)
from telemon.time_correction import ClockSource

log = logging.getLogger(__name__)

_C = CharacteristicUuid
_NEEDS_SECURITY = frozenset(
    {
        BleakGATTProtocolErrorCode.INSUFFICIENT_AUTHENTICATION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION,
        BleakGATTProtocolErrorCode.INSUFFICIENT_ENCRYPTION_KEY_SIZE,
    }
)
# A value arriving this long after the subscriptions was measured while connected: it is fresh,
# not part of the burst of stored records a device sends on connecting.
SETTLE_SECONDS = 3.0
# Exact repeats of time-stamped records remembered per device: a device resends a record whose
# indication confirmation was lost with the link.
RECENT_PAYLOADS = 64
DISCONNECT_TIMEOUT = 5.0


class SessionError(BleakError):
    """The device does not offer what its kind requires (wrong kind in the pairing table?)."""


@dataclass(frozen=True, slots=True)
class Received:
    characteristic: int
    payload: bytes
    at: datetime
    from_storage: bool = False  # arrived while the device was reporting stored records


@dataclass(frozen=True, slots=True)
class SessionOptions:
    connect_timeout: float = 20.0
    racp_timeout: float = 30.0  # of silence while the meter transfers records
    client_backend: type[BaseBleakClient] | None = None


class DeviceSession:
    def __init__(
        self,
        state: DeviceState,
        profile: SessionProfile,
        recorder: Recorder,
        options: SessionOptions,
        recent_payloads: deque[bytes],
    ) -> None:
        self.state = state
        self.profile = profile
        self.recorder = recorder
        self.options = options
        self._recent = recent_payloads
        self._queue: asyncio.Queue[Received | None] = asyncio.Queue()
        self._disconnected = asyncio.Event()
        self._activity = 0.0
        self._subscribed_at: datetime | None = None
        self._joiner = ContextJoiner()
        self._racp_active = False
        self._racp_done: asyncio.Future[RacpMessage] | None = None
        self._last_seq: int | None = None
        # The stored record the meter's first answer must repeat; None once checked (or unknown).
        self._anchor: str | None = None
        self._restarted = False
        self._handlers: dict[int, Callable[[Decoded, Received], Awaitable[None]]] = {
            _C.GLUCOSE_MEASUREMENT: self._on_glucose,
            _C.GLUCOSE_MEASUREMENT_CONTEXT: self._on_glucose_context,
            _C.RECORD_ACCESS_CONTROL_POINT: self._on_racp,
            _C.BATTERY_LEVEL: self._on_battery,
        }

    # -- the connection -------------------------------------------------------------------------

    async def run(self, ble_device: BLEDevice) -> None:
        client = BleakClient(
            ble_device,
            disconnected_callback=lambda _client: self._disconnected.set(),
            timeout=self.options.connect_timeout,
            pair=self.state.needs_pairing,
            backend=self.options.client_backend,
        )
        await self._bonded(client, client.connect)
        self._touch()
        self.state.connected = True
        self.state.sessions += 1
        consumer = asyncio.create_task(self._consume(), name=f"record {self.state.address}")
        try:
            # The clock first: the stored readings that follow the subscriptions are stamped
            # knowing how far off it is (and, if the gateway sets it, which stamps are older).
            await self._check_clock(client)
            await self._subscribe(client)
            await self._read_health(client)
            if self.profile.record_access is not None:
                await _RECORD_SYNCS[self.profile.record_access](self, client)
            await self._until_idle()
        finally:
            self.state.connected = False
            if client.is_connected:
                await _disconnect(client)
            # Everything that arrived is recorded before the session counts as over.
            self._queue.put_nowait(None)
            await consumer

    def _touch(self) -> None:
        self._activity = asyncio.get_running_loop().time()

    async def _until_idle(self) -> None:
        """Until the device hangs up, or has sent nothing for the kind's idle timeout."""
        loop = asyncio.get_running_loop()
        while not self._disconnected.is_set():
            remaining = self._activity + self.profile.idle_timeout - loop.time()
            if remaining <= 0:
                return
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._disconnected.wait()

    async def _subscribe(self, client: BleakClient) -> None:
        subscribed = 0
        for uuid in self.profile.subscribe:
            characteristic = client.services.get_characteristic(uuid.full)
            if characteristic is None:
                if uuid in self.profile.optional:
                    continue
                raise SessionError(f"{self.state.address} has no {uuid.label} characteristic")
            subscribe = partial(client.start_notify, characteristic, self._on_value)
            await self._secured(client, subscribe)
            subscribed += 1
        if not subscribed:
            raise SessionError(f"{self.state.address} offers no {self.profile.kind} measurement")
        self._subscribed_at = self.recorder.policy.now()

    async def _secured(self, client: BleakClient, operation: Callable[[], Awaitable[object]]):
        """Run a GATT operation; if the device wants an encrypted link, pair and try again."""
        try:
            return await operation()
        except BleakGATTProtocolError as error:
            if error.code not in _NEEDS_SECURITY:
                raise
        log.info("%s requires pairing; pairing now", self.state.address)
        await self._bonded(client, client.pair)
        self.state.needs_pairing = True  # later connections pair (or re-encrypt) up front
        return await operation()

    async def _bonded(self, client: BleakClient, securing: Callable[[], Awaitable[object]]):
        """Connect or pair; a device that refuses our bond's key has its bond forgotten, so that
        the retry pairs from scratch (docs/gateway.md, bonded devices)."""
        try:
            return await securing()
        except BleakError as error:
            if bond_refused(error):
                await forget_bond(client, self.state, self.recorder.recoveries, error)
            raise

    def _on_value(self, characteristic: BleakGATTCharacteristic, data: bytearray) -> None:
        number = short_uuid(characteristic.uuid)
        if number is None:
            return
        self._touch()
        self._queue.put_nowait(
            Received(number, bytes(data), self.recorder.policy.now(), self._racp_active)
        )

    # -- device health --------------------------------------------------------------------------

    async def _read(self, client: BleakClient, number: int) -> bytes | None:
        characteristic = client.services.get_characteristic(normalize_uuid_16(number))
        if characteristic is None or "read" not in characteristic.properties:
            return None
        try:
            return bytes(await self._secured(client, lambda: client.read_gatt_char(characteristic)))
        except BleakGATTProtocolError as error:
            log.info("%s refused to read %04x: %s", self.state.address, number, error)
            return None

    async def _read_health(self, client: BleakClient) -> None:
        now = self.recorder.policy.now()
        battery = await self._read(client, BATTERY_LEVEL)
        if battery is not None:
            await self._record(Received(BATTERY_LEVEL, battery, now))
        if not self.state.information:  # strings that do not change: read once per run
            for uuid in DEVICE_INFORMATION:
                value = await self._read(client, uuid)
                if value is None:
                    continue
                decoded = self._decode(Received(uuid, value, now))
                if decoded is not None and isinstance(
                    decoded.record, DeviceInformation | SystemIdentifier
                ):
                    self.state.information[decoded.record.field] = decoded.record.value

    async def _check_clock(self, client: BleakClient) -> None:
        """Read the device's clock; set it right if it is far off and the device allows it."""
        await self._read_local_time(client)
        await self._read_clock(client)
        if (
            self.recorder.clock_trusted()
            and needs_setting(self.state.clock_skew, self.recorder.policy)
            and await self._set_clock(client)
        ):
            await self._read_clock(client)  # what the device shows now, to check

    async def _read_local_time(self, client: BleakClient) -> None:
        """The zone and DST offset the device keeps its clock in, if it says (0x2A0F)."""
        self.state.local_time = None
        value = await self._read(client, LOCAL_TIME_INFORMATION)
        if value is None:
            return
        decoded = self._decode(Received(LOCAL_TIME_INFORMATION, value, self.recorder.policy.now()))
        if decoded is None or not isinstance(decoded.record, LocalTimeInformation):
            return
        zone_min, dst_min = decoded.record.zone_min, decoded.record.dst_min
        if zone_min is not None and dst_min is not None:
            self.state.local_time = DeviceOffset(zone_min, dst_min)

    async def _read_clock(self, client: BleakClient) -> None:
        """The device's current time against the gateway's: the PHD IG's coincident time stamp."""
        for number in CLOCKS:
            value = await self._read(client, number)
            now = self.recorder.policy.now()
            if value is None or len(value) < 7:
                continue
            label = "current_time" if number == CURRENT_TIME else "date_time"
            try:
                device_now = GattDateTime.unpack(value[:7]).to_datetime()
            except ValueError as error:
                self.recorder.reject(self.state, label, value, str(error))
                continue
            self.recorder.update_skew(
                self.state, device_now, now, fresh=True, source=ClockSource.CURRENT_TIME
            )
            return

    async def _set_clock(self, client: BleakClient) -> bool:
        """Write the gateway's local time into the device's clock, where the device lets it."""
        for number in CLOCKS:
            characteristic = client.services.get_characteristic(normalize_uuid_16(number))
            if characteristic is None or "write" not in characteristic.properties:
                continue
            policy = self.recorder.policy_for(self.state)
            moment = policy.now()
            wall = moment.astimezone(policy.tz).replace(tzinfo=None)
            value = (
                CurrentTime.at(wall).pack()
                if number == CURRENT_TIME
                else GattDateTime.from_datetime(wall).pack()
            )
            try:
                write = partial(client.write_gatt_char, characteristic, value, response=True)
                await self._secured(client, write)
            except BleakGATTProtocolError as error:
                log.info("%s refused its clock being set: %s", self.state.address, error)
                return False
            skew = self.state.clock_skew
            log.warning(
                "%s clock was off by %+.0f s; set to %s",
                self.state.address,
                skew.total_seconds() if skew is not None else 0.0,
                wall.isoformat(),
            )
            self.recorder.clock_was_set(self.state, moment)
            return True
        return False

    # -- glucose record access -----------------------------------------------------------------

    async def _sync_records(self, client: BleakClient) -> None:
        sync = self.recorder.sync
        self._last_seq = sync.last(self.state.address)
        self._anchor = sync.anchor(self.state.address) if self._last_seq is not None else None
        request = next_request(self._last_seq, anchored=self._anchor is not None)
        if await self._racp_exchange(client, request) is None or not self._restarted:
            return
        # Numbering restarted: the whole memory, the outbox dropping what it has by identifier.
        self._last_seq = None
        await self._racp_exchange(client, RacpRequest.report_all())

    async def _racp_exchange(self, client: BleakClient, request: RacpRequest) -> RacpMessage | None:
        """Write ``request``; the device's answer once recorded (the records before it too), or
        None if it went quiet for ``racp_timeout`` or hung up."""
        control_point = client.services.get_characteristic(_C.RECORD_ACCESS_CONTROL_POINT.full)
        if control_point is None:
            return None
        self._racp_done = done = asyncio.get_running_loop().create_future()
        self._racp_active = request.op_code is RacpOpCode.REPORT_STORED_RECORDS
        self._touch()
        await self._secured(
            client, partial(client.write_gatt_char, control_point, request.encode(), response=True)
        )
        loop = asyncio.get_running_loop()
        while not done.done() and not self._disconnected.is_set():
            remaining = self._activity + self.options.racp_timeout - loop.time()
            if remaining <= 0:
                log.warning("%s stopped sending records; asks again next time", self.state.address)
                return None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 1.0)):
                    await asyncio.shield(done)
        return done.result() if done.done() else None

    async def _sync_spot_checks(self, client: BleakClient) -> None:
        """An oximeter that stores spot checks: fetch them, then clear its memory."""
        value = await self._read(client, _C.PLX_FEATURES)
        features: PlxFeatures | None = None
        if value is not None:
            try:
                features = decode_plx_features(value)
            except DecodeError as error:
                self.recorder.reject(self.state, _C.PLX_FEATURES.label, value, str(error))
        if not wants_sync(features):
            return
        result = await sync_spot_checks(
            partial(self._racp_exchange, client),
            self.state.address,
            deletes=not self.state.keeps_records,
        )
        self.state.keeps_records = self.state.keeps_records or result.delete_refused

    def _numbering_restarted(self, found: str) -> None:
        log.warning(
            "%s: record %s is not the one stored last (%s); its numbering restarted: reading "
            "its whole memory",
            self.state.address,
            self._last_seq,
            found,
        )
        self._restarted = True
        self._last_seq = None  # this transfer's records are new, whatever their numbers
        self.recorder.recoveries[GLUCOSE_RESTARTS] += 1

    # -- recording, in arrival order --------------------------------------------------------------

    async def _consume(self) -> None:
        while (item := await self._queue.get()) is not None:
            await self._record(item)
        await self._release_glucose(self._joiner.flush(), self._racp_active)

    def _decode(self, item: Received) -> Decoded | None:
        try:
            return decode_all(f"{item.characteristic:04x}", item.payload)
        except DecodeError as error:
            label = error.characteristic or f"{item.characteristic:04x}"
            self.recorder.reject(self.state, label, item.payload, str(error))
            return None

    async def _record(self, item: Received) -> None:
        decoded = self._decode(item)
        if decoded is None:
            return
        handler = self._handlers.get(item.characteristic, self._on_readings)
        await handler(decoded, item)

    async def _on_readings(self, decoded: Decoded, item: Received) -> None:
        uuid = CharacteristicUuid(item.characteristic)
        await self._store(
            decoded,
            item,
            live=uuid in self.profile.live and not item.from_storage,
            continuous=uuid in self.profile.continuous,
        )

    async def _store(self, decoded: Decoded, item: Received, *, live: bool, continuous: bool):
        if not decoded.readings:
            return
        stamped = any(r.measured_at is not None for r in decoded.readings)
        if stamped and item.payload in self._recent:
            log.info("%s resent a record already stored; dropped", self.state.address)
            return
        fresh = live or (
            not item.from_storage
            and self._subscribed_at is not None
            and (item.at - self._subscribed_at).total_seconds() > SETTLE_SECONDS
        )
        await self.recorder.readings(
            self.state,
            decoded.readings,
            item.at,
            characteristic=decoded.characteristic,
            fresh=fresh,
            stored_kind=not live,
            from_storage=item.from_storage,
            continuous=continuous,
        )
        if stamped:
            self._recent.append(item.payload)

    async def _on_battery(self, decoded: Decoded, item: Received) -> None:
        if isinstance(decoded.record, BatteryLevel):
            self.state.battery_pct = decoded.record.percent

    async def _on_glucose(self, decoded: Decoded, item: Received) -> None:
        if self._anchor is not None:  # the first answer to an anchored request
            anchor, self._anchor = self._anchor, None
            if is_anchor(decoded, self._last_seq, anchor):
                return  # the last record stored, unchanged: the ones after it are new
            self._numbering_restarted(f"found record {decoded.record.sequence_number}")
        if already_stored(decoded.record.sequence_number, self._last_seq):
            return  # in the outbox already: the meter resent it, or answered a wider request
        await self._release_glucose(self._joiner.measurement(decoded), self._racp_active, item)

    async def _on_glucose_context(self, decoded: Decoded, item: Received) -> None:
        await self._release_glucose(self._joiner.context(decoded.record), self._racp_active, item)

    async def _release_glucose(self, records, from_storage: bool, item: Received | None = None):
        if not records:
            return
        received_at = item.at if item is not None else self.recorder.policy.now()
        await self.recorder.glucose(self.state, records, received_at, from_storage=from_storage)
        newest = max(r.sequence_number for r in records)
        self._last_seq = newest if self._last_seq is None else max(newest, self._last_seq)

    async def _on_racp(self, decoded: Decoded, item: Received) -> None:
        if isinstance(decoded.record, RacpRequest):
            return  # a device does not write requests to its collector
        if isinstance(decoded.record, RacpResponse):
            # Records before the response belong to the transfer: release the last one now.
            await self._release_glucose(self._joiner.flush(), self._racp_active, item)
            self._racp_active = False
            if (
                self._anchor is not None
                and decoded.record.value is RacpResponseValue.NO_RECORDS_FOUND
            ):
                self._anchor = None
                self._numbering_restarted("no record from it on")
            if not decoded.record.succeeded:
                log.info("%s answered RACP: %s", self.state.address, decoded.record.value.name)
        if self._racp_done is not None and not self._racp_done.done():
            self._racp_done.set_result(decoded.record)


async def _disconnect(client: BleakClient) -> None:
    """Hang up, waiting at most DISCONNECT_TIMEOUT.

    A stack that never confirms the disconnection (both sides hanging up at once can do it)
    must not hold the device task; ``asyncio.wait`` neither raises nor depends on the stack
    honouring a cancellation, so this returns even when called from a cancelled task.
    """
    disconnecting = asyncio.ensure_future(client.disconnect())
    done, _ = await asyncio.wait({disconnecting}, timeout=DISCONNECT_TIMEOUT)
    if not done:
        log.warning("%s did not confirm the disconnection", client.address)
        disconnecting.cancel()
    disconnecting.add_done_callback(_ignore_outcome)


def _ignore_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failed hang-up is of no further interest


_RECORD_SYNCS: dict[RecordAccess, Callable[[DeviceSession, BleakClient], Awaitable[None]]] = {
    RecordAccess.GLUCOSE: DeviceSession._sync_records,
    RecordAccess.PLX_SPOT_CHECKS: DeviceSession._sync_spot_checks,
}
