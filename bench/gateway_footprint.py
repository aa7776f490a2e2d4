"""Memory and CPU of the gateway process alone, serving five simulated devices from another process.

Two processes, as in a patient's home: `python -m firmware_sim.host` runs the five simulated
devices (a worn pulse oximeter notifying PLX Continuous once a second; a cuff, a glucometer, a
thermometer and a scale taking a reading every ``--spot-every`` seconds) on a bumble link, with
a controller on that link served as HCI over TCP; the gateway is the real command,
``telemon gateway run --transport tcp-client:...``, its bumble backend driving that controller
as it would a dongle, publishing to a real broker. The bench measures the gateway's process
with psutil: CPU over the run after ``--warmup`` seconds, RSS sampled every second (peak) and
at the end. It subscribes to the gateway's ``obs`` topic itself, as ingest would, and counts
what arrived.

    .venv/bin/python bench/gateway_footprint.py [--seconds 600] [--devices none]
                                                [--profile py-spy|cprofile] [--mqtt-url URL]

Prints ``gateway process alone: RSS X MiB, CPU Y % of one core`` and what arrived per device.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.embedded import EmbeddedBroker
from gateway.identity import GatewayIdentity
from gateway.pairing import PairingTable
from telemon.device_kinds import DeviceKind
from telemon.mqtt import BrokerAddress, BrokerUnavailable, connect, new_client, probe
from telemon.payload import PairedDevice
from telemon.payload_schema import decode_observations
from telemon.topics import Channel, topic

ROOT = Path(__file__).resolve().parent.parent
MiB = 2**20
CONTINUOUS = "continuous"  # the context source of 1 Hz oximetry (gateway/devices/observations)


@dataclass(slots=True)
class Arrivals:
    """What the broker delivered of the gateway's observations, counted once per seq."""

    kinds: dict[str, str]  # device address -> kind
    seqs: set[int] = field(default_factory=set)
    spot: Counter[str] = field(default_factory=Counter)  # kind -> observations
    continuous: int = 0
    duplicates: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        decoded = decode_observations(message.topic, message.payload)
        with self.lock:
            for item in decoded.observations:
                if item.seq in self.seqs:
                    self.duplicates += 1
                    continue
                self.seqs.add(item.seq)
                if (item.context or {}).get("source") == CONTINUOUS:
                    self.continuous += 1
                else:
                    self.spot[self.kinds.get(item.device_id.upper(), item.device_id)] += 1


@dataclass(slots=True)
class Sample:
    cpu_s: float
    rss: int
    at: float


def sample(process: psutil.Process) -> Sample:
    times = process.cpu_times()
    return Sample(times.user + times.system, process.memory_info().rss, time.monotonic())


def read_json_line(pipe, timeout: float) -> dict:
    """The next line of a child's stdout as JSON, or TimeoutError."""
    ready, _, _ = select.select([pipe], [], [], timeout)
    if not ready:
        raise TimeoutError(f"no line from the child within {timeout} s")
    line = pipe.readline()
    if not line:
        raise RuntimeError("the child exited before printing its line")
    return json.loads(line)


def stop_process(process: subprocess.Popen, timeout: float = 30.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def gateway_command(spec: str, state_dir: Path, profile: str | None, out: Path) -> list[str]:
    run = ["gateway", "run", "--transport", spec, "--state-dir", str(state_dir)]
    run += ["--log-level", "WARNING"]
    python = [sys.executable]
    if profile == "cprofile":
        return [*python, "-m", "cProfile", "-o", str(out), "-m", "console", *run]
    if profile == "py-spy":
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        spy = [py_spy, "record", "--nonblocking", "--threads", "--format", "raw", "-o", str(out)]
        return [*spy, "--", *python, "-m", "console", *run]
    return [*python, "-m", "console", *run]


def measured_process(launched: subprocess.Popen, profile: str | None) -> psutil.Process:
    """The gateway's own process: py-spy's child when profiled through py-spy."""
    process = psutil.Process(launched.pid)
    if profile != "py-spy":
        return process
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for child in process.children():
            if "python" in Path(child.exe()).name:
                return child
        time.sleep(0.1)
    raise RuntimeError("py-spy did not start the gateway")


# What `telemon gateway run` imports on a Raspberry Pi: the runtime with bleak's BlueZ backend
# (imported by bleak when the scanner starts) in place of bumble's host stack.
BLUEZ_IMPORTS = """
import psutil
import console.cli, gateway.cli, gateway.run, gateway.runtime, gateway.ble.bluez
import bleak.backends.bluezdbus.scanner, bleak.backends.bluezdbus.client
print(psutil.Process().memory_info().rss)
"""


def rss_of_imports_with_bluez() -> int:
    done = subprocess.run(
        [sys.executable, "-c", BLUEZ_IMPORTS], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def run(args: argparse.Namespace, mqtt_url: str) -> int:
    kinds = [] if args.devices == "none" else [str(kind) for kind in DeviceKind]
    work = Path(tempfile.mkdtemp(prefix="gateway-footprint-"))
    host = subprocess.Popen(
        [
            *(sys.executable, "-m", "firmware_sim.host", "--kinds", ",".join(kinds)),
            *("--spot-every", str(args.spot_every)),
            *(["--always-advertising"] if args.always_advertising else []),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    gateway: subprocess.Popen | None = None
    subscriber: mqtt.Client | None = None
    try:
        ready = read_json_line(host.stdout, 30)
        identity = GatewayIdentity(
            gateway_id=f"bench-{uuid.uuid4().hex[:8]}", patient_id="P0001", mqtt_url=mqtt_url
        )
        identity.save(work)
        devices = tuple(
            PairedDevice(address=d["address"], kind=d["kind"], patient_id="P0001")
            for d in ready["devices"]
        )
        PairingTable(1, devices).save(work)

        arrivals = Arrivals({d.address.upper(): str(d.kind) for d in devices})
        address = BrokerAddress.parse(mqtt_url)
        subscriber = new_client(address, client_id=f"footprint-{uuid.uuid4().hex[:8]}")
        subscribed = threading.Event()
        obs_topic = topic(identity.gateway_id, Channel.OBS)
        subscriber.on_connect = lambda c, *_: c.subscribe(obs_topic, qos=1)
        subscriber.on_subscribe = lambda *_: subscribed.set()
        subscriber.on_message = arrivals.on_message
        connect(subscriber, address, clean_start=True, background=True)
        subscriber.loop_start()
        if not subscribed.wait(10):
            raise TimeoutError("the bench's subscriber did not subscribe")

        log = (work / "gateway.log").open("w")
        profile_out = Path(args.profile_out or work / f"gateway.{args.profile or 'none'}")
        gateway = subprocess.Popen(
            gateway_command(ready["transport"], work, args.profile, profile_out),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process = measured_process(gateway, args.profile)
        host_process = psutil.Process(host.pid)
        rss_peak = 0
        warm_until = time.monotonic() + args.warmup
        while time.monotonic() < warm_until and gateway.poll() is None:
            rss_peak = max(rss_peak, process.memory_info().rss)
            time.sleep(1.0)
        first, host_first = sample(process), sample(host_process)
        arrived_at_start = len(arrivals.seqs)
        deadline = first.at + args.seconds
        while time.monotonic() < deadline and gateway.poll() is None:
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
            rss_peak = max(rss_peak, process.memory_info().rss)
        if gateway.poll() is not None:
            print((work / "gateway.log").read_text(), file=sys.stderr)
            raise RuntimeError(f"the gateway exited early ({gateway.returncode})")
        last, host_last = sample(process), sample(host_process)
        memory = process.memory_full_info()

        time.sleep(args.drain)  # what the gateway got last reaches the broker
        # The gateway first, while its controller is there to hang up through; and the gateway
        # itself rather than py-spy, so that py-spy sees its target exit and writes the profile.
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            gateway.wait(60)
        stop_process(gateway)
        gateway = None
        stop_process(host)
        produced = read_json_line(host.stdout, 5)
    finally:
        if gateway is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                for child in psutil.Process(gateway.pid).children():  # py-spy's gateway
                    child.terminate()
            stop_process(gateway)
        stop_process(host)
        if subscriber is not None:
            subscriber.disconnect()
            subscriber.loop_stop()

    wall = last.at - first.at
    cpu = 100 * (last.cpu_s - first.cpu_s) / wall
    host_cpu = 100 * (host_last.cpu_s - host_first.cpu_s) / wall
    print(f"gateway process alone: RSS {last.rss / MiB:.1f} MiB, CPU {cpu:.1f} % of one core")
    print(
        f"gateway RSS peak {max(rss_peak, last.rss) / MiB:.1f} MiB; measured over {wall:.0f} s "
        f"after {args.warmup:g} s of warm-up; {len(kinds)} devices"
    )
    print(
        f"gateway RSS at the end: {memory.shared / MiB:.1f} MiB file-backed (libraries' pages, "
        f"shared and reclaimable), {(memory.rss - memory.shared) / MiB:.1f} MiB anonymous; "
        f"USS {memory.uss / MiB:.1f} MiB"
    )
    print(f"device host process (not the gateway's): CPU {host_cpu:.1f} % of one core")
    print(
        f"the same command's imports with bleak's BlueZ backend instead of bumble (not run): "
        f"RSS {rss_of_imports_with_bluez() / MiB:.1f} MiB"
    )
    recorded = produced["recorded"]
    for kind in kinds:
        if kind == DeviceKind.PULSE_OXIMETER:
            print(
                f"arrived {kind}: {arrivals.continuous} continuous observations "
                f"({produced['continuous_samples']} samples of 2 values taken)"
            )
        else:
            print(
                f"arrived {kind}: {arrivals.spot[kind]} observations "
                f"({recorded.get(kind, 0)} readings taken)"
            )
    print(
        f"observations at the broker: {len(arrivals.seqs)} "
        f"({len(arrivals.seqs) - arrived_at_start} during the measured time), "
        f"{arrivals.duplicates} resent"
    )
    log.close()
    warnings = [
        line for line in (work / "gateway.log").read_text().splitlines() if " WARNING " in line
    ]
    print(f"gateway log: {len(warnings)} warnings" + "".join(f"\n  {w}" for w in warnings[:5]))
    if args.profile:
        print(f"profile: {profile_out}")
    shutil.rmtree(work) if not args.keep else print(f"kept {work}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="measured time")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds before measuring")
    parser.add_argument("--spot-every", type=float, default=120.0, help="seconds between readings")
    parser.add_argument("--drain", type=float, default=3.0, help="seconds left to publish")
    parser.add_argument(
        "--devices", choices=("five", "none"), default="five", help="none: the runtime's base"
    )
    parser.add_argument(
        "--always-advertising",
        action="store_true",
        help="the spot devices advertise whenever not connected instead of sleeping",
    )
    parser.add_argument("--profile", choices=("py-spy", "cprofile"), default=None)
    parser.add_argument("--profile-out", default=None, help="where the profile goes")
    parser.add_argument("--keep", action="store_true", help="keep the state dir and log")
    parser.add_argument(
        "--mqtt-url", default=os.environ.get("TELEMON_BENCH_MQTT_URL", "mqtt://127.0.0.1:1883")
    )
    args = parser.parse_args(argv)
    broker = None
    try:
        probe(BrokerAddress.parse(args.mqtt_url), timeout=2)
        url = args.mqtt_url
    except BrokerUnavailable:
        broker = EmbeddedBroker()
        url = broker.start()
    try:
        return run(args, url)
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
