"""The gateway process: identity, pairing table, outbox, device manager and uplink, wired.

The two halves share only the outbox. The device side keeps collecting while the broker is
unreachable (the uplink retries on its own), and the uplink keeps draining while Bluetooth is
being recovered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.ble.backend import BleBackend
from gateway.ble.bluez import platform_backend
from gateway.clock_check import DEFAULT_TIME_ZONE, TimePolicy
from gateway.devices import DeviceManager, ManagerOptions
from gateway.identity import GatewayIdentity
from gateway.outbox import Outbox
from gateway.pairing import PairingTable
from gateway.uplink import Uplink

log = logging.getLogger(__name__)

OUTBOX_FILE = "outbox.db"


class GatewayRuntime:
    """One gateway on ``backend`` (default: bleak's platform backend, BlueZ on the Pi)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        backend: BleBackend | None = None,
        tz: str | ZoneInfo = DEFAULT_TIME_ZONE,
        options: ManagerOptions | None = None,
        status_interval: float = 60.0,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.identity = GatewayIdentity.load(state_dir)  # FileNotFoundError says: provision
        self.outbox = Outbox(state_dir / OUTBOX_FILE, self.identity.gateway_id)
        zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
        backend = backend or platform_backend()
        self.adapter = backend.adapter
        self.manager = DeviceManager(
            state_dir,
            self.outbox,
            notify=self._notify,
            table=PairingTable.load(state_dir),
            scanner_backend=backend.scanner,
            client_backend=backend.client,
            adapter=backend.adapter,
            policy=TimePolicy(tz=zone, now=now) if now else TimePolicy(tz=zone),
            options=options,
        )
        self.uplink = Uplink(
            self.identity,
            self.outbox,
            devices=self.manager.devices,
            recoveries=self.manager.recovery_counts,
            on_config=self.manager.apply_config,
            status_interval=status_interval,
        )

    def _notify(self) -> None:
        self.uplink.notify_new_data()

    async def ensure_system_id(self) -> str | None:
        """The gateway's system id: provisioned, else derived from the adapter and saved (so
        it stays the same); None while the adapter cannot say its address."""
        if self.identity.system_id is None:
            try:
                address = await self.adapter.address()
            except Exception as error:  # a radio that is not there yet: try at the next start
                log.warning("cannot read the Bluetooth adapter's address: %s", error)
                address = None
            if address is None:
                log.warning("no system id: none provisioned and the adapter's address is unknown")
                return None
            self.identity = self.identity.with_adapter_address(address)
            self.identity.save(self.state_dir)
            self.uplink.identity = self.identity
            log.info("system id %s derived from adapter %s", self.identity.system_id, address)
        return self.identity.system_id

    async def run(self, stop: asyncio.Event) -> None:
        await self.ensure_system_id()
        log.info(
            "gateway %s (system id %s) for patient %s: %d paired device(s), broker %s",
            self.identity.gateway_id,
            self.identity.system_id,
            self.identity.patient_id,
            len(self.manager.table.devices),
            self.identity.mqtt_url,
        )
        try:
            await asyncio.gather(self.manager.run(stop), self.uplink.run(stop))
        finally:
            self.outbox.close()
