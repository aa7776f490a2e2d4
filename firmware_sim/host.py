"""A patient's simulated devices in a process of their own, reachable as an HCI controller over TCP.

    python -m firmware_sim.host [--port 0] [--spot-every 120] [--kinds pulse_oximeter,...]

Runs one simulated device of each kind asked for (default: all five) on a bumble link, with a
controller on the same link served over TCP (`firmware_sim.ble.hci_server`), so that a gateway
in another process reaches them through ``--transport tcp-client:127.0.0.1:PORT`` as it would
through a dongle. The pulse oximeter is worn and notifies PLX Continuous once a second; every
other device takes a reading every ``--spot-every`` seconds, the devices staggered over the
period, and, as a real cuff, thermometer or scale does, advertises from the reading until the
gateway has fetched it and hung up, then sleeps (``--always-advertising``: advertises whenever
not connected, the simulated devices' default). The values come from a stable patient's model.

Prints one JSON line when ready (``{"transport": ..., "devices": [{"kind", "address"}]}``) and,
after SIGTERM or SIGINT, one with what the devices produced (``{"recorded": {kind: n},
"continuous_samples": n}``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from bumble.link import LocalLink

from firmware_sim.ble.hci_server import serve_link_over_tcp
from firmware_sim.clock import AcceleratedClock, SimClock
from firmware_sim.devices import SimulatedDevice, SimulatedOximeter, make_device
from firmware_sim.devices.oximeter import CONTINUOUS_SESSION
from firmware_sim.physiology import PatientModel, PatientProfile, SimulatedMeasurement
from firmware_sim.physiology_conditions import Condition
from firmware_sim.physiology_schedule import OximeterMode
from firmware_sim.scenarios import get_scenario
from telemon.device_kinds import DeviceKind

__all__ = ["DeviceHost", "main"]

SPOT_SESSION = "morning"
AWAKE = 60.0
"""Seconds a spot device advertises after a reading if no central comes to fetch it."""


class DeviceHost:
    """The devices, the patient they measure, and the counts of what they produced."""

    def __init__(
        self,
        kinds: Sequence[DeviceKind],
        *,
        spot_every: float,
        seed: int = 1,
        port: int = 0,
        sleeps: bool = True,
    ) -> None:
        self.port = port
        self.sleeps = sleeps
        self.link = LocalLink()
        self.clock: SimClock = AcceleratedClock(datetime.now(UTC), speed=1.0)
        self.devices: dict[DeviceKind, SimulatedDevice] = {
            kind: make_device(kind, self.link) for kind in kinds
        }
        profile = PatientProfile(
            patient_id="P0001",
            conditions=frozenset({Condition.COVID}),
            enrolled_at=self.clock.now(),
            devices=frozenset(DeviceKind),
            oximeter_mode=OximeterMode.CONTINUOUS,
        )
        self.model = PatientModel(profile, get_scenario("stable"), seed)
        self.spot_every = spot_every
        self.recorded: Counter[str] = Counter()
        self.continuous_samples = 0

    def _sample(self, t: datetime) -> SimulatedMeasurement:
        self.continuous_samples += 1
        return self.model.reading_at(DeviceKind.PULSE_OXIMETER, t, CONTINUOUS_SESSION)

    async def run(self, stop: asyncio.Event) -> None:
        server = await serve_link_over_tcp(self.link, port=self.port)
        try:
            for kind, device in self.devices.items():
                if self.sleeps and kind is not DeviceKind.PULSE_OXIMETER:
                    await device.set_in_range(False)  # asleep until its first reading
                await device.start()
            oximeter = self.devices.get(DeviceKind.PULSE_OXIMETER)
            if isinstance(oximeter, SimulatedOximeter):
                oximeter.set_worn(True)
                oximeter.start_continuous(self._sample, self.clock)
            ready = {
                "transport": server.transport_spec,
                "devices": [
                    {"kind": str(kind), "address": device.address}
                    for kind, device in self.devices.items()
                ],
            }
            print(json.dumps(ready), flush=True)
            spots = [d for k, d in self.devices.items() if k is not DeviceKind.PULSE_OXIMETER]
            readings = [
                asyncio.create_task(
                    self._take_readings(device, self.spot_every * (n + 1) / (len(spots) + 1))
                )
                for n, device in enumerate(spots)
            ]
            try:
                await stop.wait()
            finally:
                for task in readings:
                    task.cancel()
                await asyncio.gather(*readings, return_exceptions=True)
        finally:
            for device in self.devices.values():
                await device.stop()
            await server.close()

    async def _take_readings(self, device: SimulatedDevice, offset: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + offset
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            if self.sleeps:
                await device.set_in_range(True)
            await device.record(self.model.reading_at(device.kind, self.clock.now(), SPOT_SESSION))
            self.recorded[str(device.kind)] += 1
            if self.sleeps:
                await self._sleep_once_read(device)
            due += self.spot_every

    async def _sleep_once_read(self, device: SimulatedDevice) -> None:
        """Stop advertising once a central has come and gone (or after `AWAKE` seconds)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(AWAKE):
                await device.wait_connected()
                await device.wait_disconnected()
        # Silent until the next reading: what it stored stays stored, as a sleeping cuff's does.
        await device.set_in_range(False)


def parse_kinds(text: str) -> list[DeviceKind]:
    return [DeviceKind(name.strip()) for name in text.split(",") if name.strip()]


async def _main(args: argparse.Namespace) -> None:
    host = DeviceHost(
        parse_kinds(args.kinds),
        spot_every=args.spot_every,
        seed=args.seed,
        port=args.port,
        sleeps=not args.always_advertising,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await host.run(stop)
    summary = {"recorded": dict(host.recorded), "continuous_samples": host.continuous_samples}
    print(json.dumps(summary), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any)")
    parser.add_argument(
        "--kinds",
        default=",".join(DeviceKind),
        help="comma-separated device kinds (default: all five; empty: none)",
    )
    parser.add_argument("--spot-every", type=float, default=120.0, help="seconds between readings")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--always-advertising",
        action="store_true",
        help="spot devices advertise whenever not connected, instead of sleeping between readings",
    )
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
