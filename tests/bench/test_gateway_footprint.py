"""bench/gateway_footprint.py, briefly: two processes, the real gateway command, the real broker."""

from __future__ import annotations

import re

LINE = re.compile(r"^gateway process alone: RSS (\d+\.\d) MiB, CPU (\d+\.\d) % of one core$", re.M)
SPOT_KINDS = ("blood_pressure", "glucometer", "thermometer", "weight_scale")


def test_a_short_run_prints_the_line_and_every_device_reaches_the_broker(mqtt_url, run_bench):
    out = run_bench(
        "gateway_footprint.py",
        *("--seconds", "15", "--warmup", "8", "--spot-every", "6", "--drain", "4"),
        *("--mqtt-url", mqtt_url),
        timeout=180,
    )
    figures = LINE.search(out)
    assert figures is not None, out
    # The gateway's own process: an interpreter with its stack loaded, not the bench's.
    assert 20 < float(figures[1]) < 500, out
    continuous = re.search(r"^arrived pulse_oximeter: (\d+) continuous observations", out, re.M)
    assert continuous is not None and int(continuous[1]) >= 10, out
    for kind in SPOT_KINDS:
        arrived = re.search(rf"^arrived {kind}: (\d+) observations \((\d+) readings", out, re.M)
        assert arrived is not None, (kind, out)
        assert int(arrived[1]) >= 1 and int(arrived[2]) >= 1, (kind, out)
