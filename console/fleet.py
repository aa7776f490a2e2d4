"""Simulated patients at home, each with the real gateway software, on one simulated radio.

What ``telemon sim`` and ``telemon demo`` run: for every patient of a cohort, their simulated
devices (driven by the physiological model) and a real :class:`gateway.runtime.GatewayRuntime`
reading them through bleak over the in-process bumble link and publishing to the broker. All
gateways share one simulated radio; each connects only to the devices in its own pairing table.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from console.cohort import Cohort
from firmware_sim.ble import (
    bumble_backend,
    close_all_centrals,
    in_process_link,
    set_default_radio,
)
from firmware_sim.clock import SimClock
from firmware_sim.home import SimulatedHome
from gateway.identity import GatewayIdentity, Secret
from gateway.pairing import PAIRING_FILE, PairingTable
from gateway.runtime import GatewayRuntime
from telemon.payload import PairedDevice

RESUME_FILE = "resume.json"


class SimulatedFleet:
    def __init__(
        self,
        cohort: Cohort,
        *,
        mqtt_url: str,
        state_dir: Path,
        clock: SimClock,
        enrolled_at: Mapping[str, datetime],
        gateway_passwords: Mapping[str, str] | None = None,
        seed: int = 1,
        status_interval: float = 15.0,
    ) -> None:
        self.cohort = cohort
        self.mqtt_url = mqtt_url
        self.state_dir = state_dir
        self.clock = clock
        self.enrolled_at = enrolled_at
        self.gateway_passwords = dict(gateway_passwords or {})  # by gateway id, its MQTT password
        self.seed = seed
        self.status_interval = status_interval
        self.homes: list[SimulatedHome] = []
        self.gateways: list[GatewayRuntime] = []

    def _provision(self) -> None:
        """Give each patient's gateway its identity and pairing table (kept between runs)."""
        for patient in self.cohort.patients:
            gateway_dir = self.state_dir / patient.gateway_code
            # Rewritten every run: the embedded broker's port and passwords change between runs.
            password = self.gateway_passwords.get(patient.gateway_code)
            GatewayIdentity(
                gateway_id=patient.gateway_code,
                patient_id=patient.code,
                mqtt_url=self.mqtt_url,
                mqtt_password=Secret(password) if password is not None else None,
            ).save(gateway_dir)
            if not (gateway_dir / PAIRING_FILE).exists():
                PairingTable(
                    revision=1,
                    devices=tuple(
                        PairedDevice(address=address, kind=kind, patient_id=patient.code)
                        for address, kind in patient.devices
                    ),
                ).save(gateway_dir)

    def _build(self) -> None:
        """Devices and gateways; bumble objects must be made inside the running event loop."""
        link = in_process_link()
        set_default_radio(link)
        backend = bumble_backend(link)
        for index, patient in enumerate(self.cohort.patients):
            self.gateways.append(
                GatewayRuntime(
                    self.state_dir / patient.gateway_code,
                    backend=backend,
                    status_interval=self.status_interval,
                    now=self.clock.now,
                )
            )
            self.homes.append(
                SimulatedHome(
                    patient_id=patient.code,
                    protocol=patient.protocol,
                    scenario=patient.scenario,
                    devices=patient.devices,
                    link=link,
                    clock=self.clock,
                    enrolled_at=self.enrolled_at[patient.code],
                    seed=self.seed + index,
                )
            )

    async def run(self, stop: asyncio.Event) -> None:
        self._provision()
        self._build()
        resume = load_resume_points(self.state_dir)
        try:
            await asyncio.gather(
                *(
                    home.run(stop, resume_after=resume.get(home.model.profile.patient_id))
                    for home in self.homes
                ),
                *(gateway.run(stop) for gateway in self.gateways),
            )
        finally:
            self._save_resume_points(resume)
            await close_all_centrals()

    def _save_resume_points(self, previous: dict[str, datetime]) -> None:
        points = dict(previous)
        for home in self.homes:
            if home.last_recorded_at is not None:
                points[home.model.profile.patient_id] = home.last_recorded_at
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / RESUME_FILE).write_text(
            json.dumps({patient: at.isoformat() for patient, at in points.items()}, indent=2)
        )


def load_resume_points(state_dir: Path) -> dict[str, datetime]:
    """Per patient, the last moment a previous run recorded a reading."""
    try:
        raw = json.loads((state_dir / RESUME_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {patient: datetime.fromisoformat(at) for patient, at in raw.items()}
