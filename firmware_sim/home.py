"""A simulated patient at home: their physiology and their devices, living through simulated time.

The patient model decides what each device measures and when; this module makes it happen on
the simulated devices at the right simulated moment: a reading is recorded, a device is carried
out of range and brought back, its battery runs down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import MappingProxyType

from bumble.link import LocalLink

from firmware_sim.clock import SimClock
from firmware_sim.devices import SimulatedDevice, make_device
from firmware_sim.physiology import PatientModel, PatientProfile
from firmware_sim.physiology_conditions import Condition
from firmware_sim.scenarios import get_scenario
from telemon.device_kinds import DeviceKind

# Which condition a care protocol is for, so that the model draws the right baseline.
PROTOCOL_CONDITIONS: MappingProxyType[str, Condition] = MappingProxyType(
    {
        "covid19_home_oximetry": Condition.COVID,
        "copd": Condition.COPD,
        "heart_failure": Condition.HEART_FAILURE,
        "hypertension": Condition.HYPERTENSION,
        "diabetes": Condition.DIABETES,
    }
)

HORIZON = timedelta(days=365)


class SimulatedHome:
    def __init__(
        self,
        *,
        patient_id: str,
        protocol: str,
        scenario: str,
        devices: Iterable[tuple[str, str]],  # (BLE address, device kind)
        link: LocalLink,
        clock: SimClock,
        enrolled_at: datetime,
        seed: int,
    ) -> None:
        self.clock = clock
        self.devices: dict[DeviceKind, SimulatedDevice] = {
            DeviceKind(kind): make_device(kind, link, address) for address, kind in devices
        }
        profile = PatientProfile(
            patient_id=patient_id,
            conditions=frozenset({PROTOCOL_CONDITIONS[protocol]}),
            enrolled_at=enrolled_at,
            devices=frozenset(self.devices),
        )
        self.model = PatientModel(profile, get_scenario(scenario), seed)
        self.last_recorded_at: datetime | None = None

    async def run(self, stop: asyncio.Event, *, resume_after: datetime | None = None) -> None:
        """Power the devices on and live until ``stop``; then power them off.

        ``resume_after``: the last moment a previous run recorded, so that a second run of the
        demo continues the same life instead of measuring the same hours again.
        """
        for device in self.devices.values():
            await device.start()
        returns: set[asyncio.Task[None]] = set()
        try:
            start = self.clock.now()
            if resume_after is not None:
                start = max(start, resume_after + timedelta(microseconds=1))
            for measurement in self.model.measurements(start, start + HORIZON):
                if not await self._sleep_until(measurement.measured_at, stop):
                    break
                device = self.devices[measurement.device]
                device.battery = measurement.battery_level
                if measurement.reachable != device.in_range:
                    device.set_in_range(measurement.reachable)
                if not measurement.reachable and measurement.delivered_at is not None:
                    task = asyncio.create_task(
                        self._back_in_range(device, measurement.delivered_at, stop)
                    )
                    returns.add(task)
                    task.add_done_callback(returns.discard)
                await device.record(measurement)
                self.last_recorded_at = measurement.measured_at
        finally:
            for task in returns:
                task.cancel()
            for device in self.devices.values():
                with contextlib.suppress(Exception):
                    await device.stop()

    async def _back_in_range(
        self, device: SimulatedDevice, at: datetime, stop: asyncio.Event
    ) -> None:
        if await self._sleep_until(at, stop):
            device.set_in_range(True)

    async def _sleep_until(self, t: datetime, stop: asyncio.Event) -> bool:
        """Sleep in simulated time; False if ``stop`` came first."""
        sleeper = asyncio.create_task(self.clock.sleep_until(t))
        stopper = asyncio.create_task(stop.wait())
        done, pending = await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return sleeper in done and not stop.is_set()
