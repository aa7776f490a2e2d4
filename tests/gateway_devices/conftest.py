"""The gateway against simulated devices on an in-process bumble link and a real broker.

Each test gets a fresh `LocalLink`; devices are real bumble GATT servers from
``firmware_sim.devices``, the gateway is the real `GatewayRuntime` on the bumble bleak backend,
and what it publishes is read back from the broker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest_asyncio
from bumble.link import LocalLink

from firmware_sim.ble import bumble_backend
from firmware_sim.devices import SimulatedDevice, make_device
from firmware_sim.physiology import SimulatedMeasurement
from gateway.devices import PROFILES, Backoff, ManagerOptions, WatchdogPolicy
from gateway.identity import GatewayIdentity
from gateway.pairing import PairingTable
from gateway.runtime import GatewayRuntime
from telemon.device_kinds import DeviceKind
from telemon.observation import Observation
from telemon.payload import PairedDevice
from telemon.payload_schema import decode_observations
from telemon.topics import Channel, topic

PATIENT = "P0001"
# Fast sessions: the simulated link answers in milliseconds.
FAST_PROFILES = {kind: replace(p, idle_timeout=1.0) for kind, p in PROFILES.items()}


def fast_options(**watchdog) -> ManagerOptions:
    return ManagerOptions(
        backoff=Backoff(base=0.1, cap=1.0),
        reconnect_waits=(0.2,),
        watchdog=WatchdogPolicy(**({"check_interval": 0.5} | watchdog)),
        profiles=FAST_PROFILES,
    )


def clock_at(instant: datetime) -> Callable[[], datetime]:
    """A clock that reads ``instant`` now and runs on from it at the real pace: the gateway and
    a device live on a chosen day (a July one, for DST) while the test runs today."""
    shift = instant - datetime.now(UTC)
    return lambda: datetime.now(UTC) + shift


def measurement(
    kind: str, values: dict[str, float], *, at: datetime | None = None, session: str = "morning"
) -> SimulatedMeasurement:
    moment = at or datetime.now(UTC).replace(microsecond=0)
    return SimulatedMeasurement(
        device=DeviceKind(kind),
        measured_at=moment,
        values=values,
        flags=(),
        battery_level=90,
        reachable=True,
        delivered_at=moment,
        session=session,
    )


def observations(messages, gateway_id: str) -> list[Observation]:
    obs_topic = topic(gateway_id, Channel.OBS)
    return [
        o
        for m in messages
        if m.topic == obs_topic
        for o in decode_observations(m.topic, m.payload).observations
    ]


class Gateway:
    """A provisioned state directory, and the runtime started and stopped on it."""

    def __init__(self, state_dir: Path, link: LocalLink, mqtt_url: str) -> None:
        self.state_dir = state_dir
        self.link = link
        self.identity = GatewayIdentity(
            gateway_id=f"gw-{uuid.uuid4().hex[:10]}", patient_id=PATIENT, mqtt_url=mqtt_url
        )
        self.identity.save(state_dir)
        self.runtime: GatewayRuntime | None = None

    @property
    def id(self) -> str:
        return self.identity.gateway_id

    def pair(self, *devices: SimulatedDevice, revision: int = 0) -> None:
        table = PairingTable.load(self.state_dir)
        for device in devices:
            table = table.with_device(
                PairedDevice(address=device.address, kind=kind_of(device), patient_id=PATIENT)
            )
        PairingTable(revision, table.devices).save(self.state_dir)

    @asynccontextmanager
    async def running(
        self,
        options: ManagerOptions | None = None,
        *,
        keystore: Path | None = None,
        **runtime_options,
    ):
        self.runtime = GatewayRuntime(
            self.state_dir,
            backend=bumble_backend(self.link, keystore=keystore),
            options=options or fast_options(),
            **runtime_options,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(self.runtime.run(stop))
        try:
            yield self.runtime
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
            # The central stays up until the `link` fixture closes it, after the devices have
            # stopped: powering it off first could leave a device waiting on a dead link.


def kind_of(device: SimulatedDevice) -> str:
    return device.kind.value


DeviceFactory = Callable[..., Awaitable[SimulatedDevice]]


@pytest_asyncio.fixture(loop_scope="function")
async def make(link: LocalLink) -> AsyncIterator[DeviceFactory]:
    started: list[SimulatedDevice] = []

    async def start(kind: str, **options) -> SimulatedDevice:
        device = make_device(kind, link, **options)
        started.append(device)
        await device.start()
        return device

    yield start
    for device in started:
        await device.stop()


@pytest_asyncio.fixture(loop_scope="function")
async def gateway(tmp_path: Path, link: LocalLink, mqtt_url: str) -> Gateway:
    return Gateway(tmp_path / "state", link, mqtt_url)
