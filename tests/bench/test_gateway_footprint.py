"""bench/gateway_footprint.py, briefly: two processes, the real gateway command, the real broker."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^gateway process alone: RSS (\d+\.\d) MiB, CPU (\d+\.\d) % of one core$", re.M)
SPOT_KINDS = ("blood_pressure", "glucometer", "thermometer", "weight_scale")


def test_a_short_run_prints_the_line_and_every_device_reaches_the_broker(mqtt_url):
    done = subprocess.run(
        [
            sys.executable,
            "bench/gateway_footprint.py",
            *("--seconds", "15", "--warmup", "8", "--spot-every", "6", "--drain", "4"),
            *("--mqtt-url", mqtt_url),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert done.returncode == 0, done.stderr
    figures = LINE.search(done.stdout)
    assert figures is not None, done.stdout
    # The gateway's own process: an interpreter with its stack loaded, not the bench's.
    assert 20 < float(figures[1]) < 500, done.stdout
    continuous = re.search(
        r"^arrived pulse_oximeter: (\d+) continuous observations", done.stdout, re.M
    )
    assert continuous is not None and int(continuous[1]) >= 10, done.stdout
    for kind in SPOT_KINDS:
        arrived = re.search(
            rf"^arrived {kind}: (\d+) observations \((\d+) readings", done.stdout, re.M
        )
        assert arrived is not None, (kind, done.stdout)
        assert int(arrived[1]) >= 1 and int(arrived[2]) >= 1, (kind, done.stdout)
