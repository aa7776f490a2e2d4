"""Memory and CPU of a gateway runtime serving five simulated devices for N seconds.

The real `GatewayRuntime` on the bumble backend (in-process link) with one simulated device of
each kind, each taking a measurement every few seconds, publishing to a real broker. Prints RSS
and CPU; asserts nothing (the simulated devices run in the same process and are included).

    .venv/bin/python bench/gateway_footprint.py --seconds 60 [--mqtt-url mqtt://127.0.0.1:1883]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bumble.link import LocalLink

from console.embedded import EmbeddedBroker
from firmware_sim.ble import bumble_backend, close_all_centrals
from firmware_sim.devices import make_device
from firmware_sim.physiology import SimulatedMeasurement
from gateway.identity import GatewayIdentity
from gateway.pairing import PairingTable
from gateway.runtime import GatewayRuntime
from telemon.device_kinds import DeviceKind
from telemon.mqtt import BrokerAddress, BrokerUnavailable, probe
from telemon.payload import PairedDevice

DEVICES = {
    DeviceKind.PULSE_OXIMETER: {"spo2": 96, "pulse_rate": 72},
    DeviceKind.BLOOD_PRESSURE: {"systolic": 128, "diastolic": 82, "pulse_rate": 70},
    DeviceKind.GLUCOMETER: {"glucose": 110},
    DeviceKind.THERMOMETER: {"body_temperature": 36.8},
    DeviceKind.WEIGHT_SCALE: {"body_weight": 80.5},
}


def measurement(kind: DeviceKind, values: dict[str, float]) -> SimulatedMeasurement:
    now = datetime.now(UTC).replace(microsecond=0)
    return SimulatedMeasurement(kind, now, values, (), 90, True, now, "morning")


async def bench(seconds: float, mqtt_url: str, interval: float) -> None:
    link = LocalLink()
    state_dir = Path(tempfile.mkdtemp(prefix="gateway-footprint-"))
    identity = GatewayIdentity(
        gateway_id=f"bench-{uuid.uuid4().hex[:8]}", patient_id="P0001", mqtt_url=mqtt_url
    )
    identity.save(state_dir)
    devices = {kind: make_device(kind, link) for kind in DEVICES}
    PairingTable(
        1,
        tuple(
            PairedDevice(address=d.address, kind=kind, patient_id="P0001")
            for kind, d in devices.items()
        ),
    ).save(state_dir)
    for device in devices.values():
        await device.start()
    runtime = GatewayRuntime(state_dir, backend=bumble_backend(link))
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    process = psutil.Process()
    await asyncio.sleep(2.0)  # warm-up: first connections, device information reads
    cpu0, wall0, rss_peak, recorded = process.cpu_times(), time.monotonic(), 0, 0
    deadline = wall0 + seconds
    while time.monotonic() < deadline:
        for kind, device in devices.items():
            await device.record(measurement(kind, DEVICES[kind]))
            recorded += 1
        rss_peak = max(rss_peak, process.memory_info().rss)
        await asyncio.sleep(interval)
    cpu1, wall1 = process.cpu_times(), time.monotonic()
    stop.set()
    await task
    for device in devices.values():
        await device.stop()
    await close_all_centrals()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    rss_now = process.memory_info().rss
    print(f"duration            {wall1 - wall0:.1f} s, {recorded} measurements taken")
    print(f"CPU                 {cpu:.2f} s = {100 * cpu / (wall1 - wall0):.1f} % of one core")
    print(
        f"RSS                 {rss_now / 2**20:.1f} MiB (peak sampled {rss_peak / 2**20:.1f} MiB)"
    )
    print(
        f"max RSS (getrusage) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB"
    )
    print(f"recoveries          {runtime.manager.recovery_counts()}")
    readings = {
        h.kind: runtime.manager.state(h.device_id).readings for h in runtime.manager.devices()
    }
    print(f"readings per device {readings}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    args = parser.parse_args()
    broker = None
    try:
        probe(BrokerAddress.parse(args.mqtt_url), timeout=2)
        url = args.mqtt_url
    except BrokerUnavailable:
        broker = EmbeddedBroker()
        url = broker.start()
    try:
        asyncio.run(bench(args.seconds, url, args.interval))
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
