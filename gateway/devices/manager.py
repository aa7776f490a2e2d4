"""The device manager: one task per paired device, a scanner, a watchdog, the pairing table.

Only devices in the pairing table are ever connected: the scanner hears everyone, the callback
drops every address it does not know. A device's task waits for the device to advertise, takes a
connection slot, runs a session, and on failure waits an exponential, jittered delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner

from gateway.clock_check import TimePolicy, gateway_clock_synchronised
from gateway.devices.backoff import Backoff, idle_wait
from gateway.devices.glucose_sync import SyncStore
from gateway.devices.profiles import PROFILES, SessionProfile
from gateway.devices.quirk_session import open_session
from gateway.devices.recorder import Recorder
from gateway.devices.recovery import (
    ADAPTER_RESET,
    CONNECT_FAILURES,
    REJECTED_CONFIGS,
    SCANNER_RESTART,
    AdapterControl,
    NoAdapterControl,
    Recoveries,
    RecoveryStep,
    WatchdogPolicy,
    WatchdogView,
    decide,
)
from gateway.devices.rejected import REJECTED_FILE, RejectedLog
from gateway.devices.scanner import AdvertisementMonitor
from gateway.devices.session import RECENT_PAYLOADS, SessionOptions
from gateway.devices.state import ABSENT_AFTER, DeviceState
from gateway.outbox import Outbox
from gateway.pairing import PairingTable
from telemon.device_kinds import DeviceKind
from telemon.payload import DeviceHealth, GatewayConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ManagerOptions:
    connection_slots: int = 4  # BlueZ on a Pi keeps a handful of LE links comfortably
    backoff: Backoff = field(default_factory=Backoff)
    # After a session, before the next advertisement counts: the first after one that brought a
    # reading, then one step further for each session in a row that brought nothing (a device
    # that keeps advertising once read); its advertising data changing, or the device going
    # and coming back, ends the wait and starts over (docs/gateway.md).
    reconnect_waits: tuple[float, ...] = (5.0, 30.0, 120.0, 300.0)
    absent_after: float = ABSENT_AFTER  # seconds unheard that make a device gone
    session: SessionOptions = field(default_factory=SessionOptions)
    watchdog: WatchdogPolicy = field(default_factory=WatchdogPolicy)
    profiles: Mapping[DeviceKind, SessionProfile] = field(default_factory=lambda: PROFILES)


# The server numbers each gateway's configs one by one, so even a gateway that was offline
# through many edits of its pairing table sees a small step. A config further ahead is not the
# server's (a forged or broken message): applied, it would make every real config after it look
# old and be refused, leaving the patient's devices unread for good (issue 15; docs/gateway.md).
MAX_REVISION_STEP = 1000


def table_problem(candidate: PairingTable, current: PairingTable) -> str | None:
    """Why ``candidate`` must not replace ``current``, or None if it may."""
    if candidate.revision <= current.revision:
        return f"revision {candidate.revision} is not newer than {current.revision}"
    if candidate.revision > current.revision + MAX_REVISION_STEP:
        return (
            f"revision {candidate.revision} is more than {MAX_REVISION_STEP} ahead of "
            f"{current.revision}: not a config the server made"
        )
    addresses = [d.address.upper() for d in candidate.devices]
    if len(addresses) != len(set(addresses)):
        return "a device address appears twice"
    return None


class DeviceManager:
    def __init__(
        self,
        state_dir: Path,
        outbox: Outbox,
        *,
        notify: Callable[[], None] = lambda: None,
        table: PairingTable | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        client_backend: type[BaseBleakClient] | None = None,
        adapter: AdapterControl | None = None,
        policy: TimePolicy | None = None,
        options: ManagerOptions | None = None,
        clock_trusted: Callable[[], bool] = gateway_clock_synchronised,
    ) -> None:
        self.state_dir = state_dir
        self.options = options or ManagerOptions()
        if client_backend is not None:
            self.options = _with_client_backend(self.options, client_backend)
        self.recoveries = Recoveries()
        self.rejected = RejectedLog(state_dir / REJECTED_FILE)
        self.recorder = Recorder(
            outbox,
            notify=notify,
            rejected=self.rejected,
            sync=SyncStore(outbox),
            recoveries=self.recoveries,
            policy=policy or TimePolicy(),
            clock_trusted=clock_trusted,
        )
        self._adapter = adapter or NoAdapterControl()
        self._monitor = AdvertisementMonitor(self._on_advertisement, backend=scanner_backend)
        self._table = table if table is not None else PairingTable.load(state_dir)
        self._states: dict[str, DeviceState] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._recent: dict[str, deque[bytes]] = {}
        self._slots = asyncio.Semaphore(self.options.connection_slots)
        self._config_lock = asyncio.Lock()
        self._running = False
        self._background: set[asyncio.Task[object]] = set()
        self.table_changed = asyncio.Event()
        # Watchdog inputs (monotonic clock).
        self._started = time.monotonic()
        self._last_known_advert = 0.0
        self._last_action = 0.0
        self._restarts_without_advert = 0
        self._consecutive_failures = 0
        self._reconcile()

    # -- what the uplink reports ----------------------------------------------------------------

    @property
    def table(self) -> PairingTable:
        return self._table

    def state(self, address: str) -> DeviceState | None:
        return self._states.get(address.upper())

    def devices(self) -> list[DeviceHealth]:
        return [state.health() for state in self._states.values()]

    def recovery_counts(self) -> dict[str, int]:
        return self.recoveries.as_dict()

    # -- running ----------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self._running = True
        self._started = self._last_action = time.monotonic()
        self._reconcile()
        watchdog = asyncio.create_task(self._watchdog(stop), name="bluetooth watchdog")
        try:
            await self._start_scanner()
            await stop.wait()
        finally:
            self._running = False
            watchdog.cancel()
            pending = {watchdog, *self._tasks.values(), *self._background}
            while pending:
                # Cancelled again if need be: a Bluetooth stack may swallow one cancellation.
                for task in pending:
                    task.cancel()
                _, pending = await asyncio.wait(pending, timeout=1.0)
            self._tasks.clear()
            await self._monitor.stop()

    async def _start_scanner(self) -> None:
        try:
            await self._monitor.start()
        except Exception as error:
            # No adapter yet (BlueZ still starting, dongle unplugged): the watchdog retries.
            log.warning("cannot start scanning: %s", error)

    def _on_advertisement(self, device: BLEDevice, advertisement: AdvertisementData) -> None:
        state = self._states.get(device.address.upper())
        if state is None:
            return  # not ours: never connected
        state.advertised(
            device,
            advertisement.rssi,
            self.recorder.policy.now(),
            name=advertisement.local_name or device.name,
            manufacturer_data=advertisement.manufacturer_data,
            service_data=advertisement.service_data,
            absent_after=self.options.absent_after,
        )
        self._last_known_advert = time.monotonic()
        self._restarts_without_advert = 0

    async def _device_loop(self, state: DeviceState) -> None:
        profile = self.options.profiles[state.paired.kind]
        recent = self._recent.setdefault(state.address.upper(), deque(maxlen=RECENT_PAYLOADS))
        attempt = empty = 0
        while self._running:
            ble_device = await state.next_advertisement()
            readings = state.readings
            try:
                async with self._slots:
                    session = open_session(
                        state, profile, self.recorder, self.options.session, recent
                    )
                    await session.run(ble_device)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a device task must outlive any one failure
                attempt += 1
                self._consecutive_failures += 1
                self.recoveries[CONNECT_FAILURES] += 1
                delay = self.options.backoff.delay(attempt)
                log.warning(
                    "%s (%s): session failed (%s: %s); retry in %.1f s",
                    state.address,
                    state.paired.kind,
                    type(error).__name__,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._consecutive_failures = 0
            state.session_ended()
            empty = 0 if state.readings > readings or not profile.idle_backoff else empty + 1
            if await state.news_within(idle_wait(self.options.reconnect_waits, empty)):
                empty = 0

    # -- the pairing table ------------------------------------------------------------------------

    def _reconcile(self) -> None:
        """Make the running device tasks match the pairing table."""
        wanted = {d.address.upper(): d for d in self._table.devices}
        for key in list(self._states):
            if key not in wanted or self._states[key].paired != wanted[key]:
                task = self._tasks.pop(key, None)
                if task is not None:
                    task.cancel()
                del self._states[key]
        for key, device in wanted.items():
            state = self._states.get(key) or DeviceState(
                device, ignores_dst=self.recorder.clocks.ignores_dst(key)
            )
            self._states[key] = state
            if self._running and key not in self._tasks:
                self._tasks[key] = asyncio.create_task(
                    self._device_loop(state), name=f"device {device.address}"
                )

    def apply_config(self, config: GatewayConfig) -> None:
        """The uplink's ``on_config``: apply a server config in the background."""
        task = asyncio.create_task(self.apply_table(PairingTable.from_config(config)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def apply_table(self, table: PairingTable) -> bool:
        """Validate, save atomically, then reconcile the device tasks. False if refused."""
        async with self._config_lock:
            problem = table_problem(table, self._table)
            if problem is not None:
                self.recoveries[REJECTED_CONFIGS] += 1
                log.warning("pairing table revision %s refused: %s", table.revision, problem)
                return False
            await asyncio.to_thread(table.save, self.state_dir)
            self._table = table
            self._reconcile()
            log.info(
                "pairing table revision %s applied: %d device(s)",
                table.revision,
                len(table.devices),
            )
            self.table_changed.set()
            return True

    # -- the watchdog ---------------------------------------------------------------------------

    async def _watchdog(self, stop: asyncio.Event) -> None:
        policy = self.options.watchdog
        while not stop.is_set():
            await asyncio.sleep(policy.check_interval)
            if not self._monitor.running:
                await self._start_scanner()
            now = time.monotonic()
            connected = sum(1 for s in self._states.values() if s.connected)
            view = WatchdogView(
                now=now,
                devices_expected=bool(self._table.devices),
                # A streaming device is as alive as one advertising.
                last_known_advert=now if connected else self._last_known_advert,
                last_action=self._last_action,
                restarts_without_advert=self._restarts_without_advert,
                consecutive_connect_failures=self._consecutive_failures,
                connected_devices=connected,
            )
            step = decide(view, policy)
            if step is RecoveryStep.NONE:
                continue
            self._last_action = now
            if step is RecoveryStep.RESTART_SCANNER:
                log.warning("no advertisement from a paired device: restarting the scanner")
                self.recoveries[SCANNER_RESTART] += 1
                self._restarts_without_advert += 1
                with contextlib.suppress(Exception):
                    await self._monitor.restart()
            else:
                await self._reset_adapter()

    async def _reset_adapter(self) -> None:
        log.warning(
            "Bluetooth looks stuck (%d failed connections, %d scanner restarts): resetting",
            self._consecutive_failures,
            self._restarts_without_advert,
        )
        await self._monitor.stop()
        if await self._adapter.reset():
            self.recoveries[ADAPTER_RESET] += 1
        self._consecutive_failures = 0
        self._restarts_without_advert = 0
        await self._start_scanner()


def _with_client_backend(options: ManagerOptions, backend: type[BaseBleakClient]) -> ManagerOptions:
    return replace(options, session=replace(options.session, client_backend=backend))
