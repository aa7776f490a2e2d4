"""bench/region.py briefly: three real Mosquittos from deploy/, two real workers, an area killed."""

from __future__ import annotations

import re
import shutil

import pytest

GATEWAYS, RATE, DURATION = 20, 1000, 16

pytestmark = pytest.mark.skipif(
    shutil.which("mosquitto", path="/usr/sbin:/usr/bin") is None
    or shutil.which("mosquitto_passwd") is None,
    reason="needs the mosquitto broker and mosquitto_passwd (Debian package mosquitto)",
)


def test_a_short_region_run_loses_nothing_across_an_area_broker_killed(
    postgres_server_url, run_bench
):
    out = run_bench(
        "region.py",
        *("--gateways", str(GATEWAYS), "--rate", str(RATE), "--duration", str(DURATION)),
        *("--outage", "2", "--database-url", postgres_server_url),
        timeout=180,
    )
    last = out.strip().splitlines()[-1]
    figures = re.fullmatch(
        r"region: ([\d,]+) obs/s, p99 ([\d,]+) ms, lost (\d+), duplicated (\d+)", last
    )
    assert figures is not None, out
    assert figures[3] == "0" and figures[4] == "0", out
    assert int(figures[1].replace(",", "")) > 0, out
    produced = re.search(r"^produced ([\d,]+) observations .*; stored ([\d,]+);", out, re.M)
    assert produced is not None, out
    assert produced[1] == produced[2] == f"{RATE * DURATION:,}", out
    # The kill happened and the area's gateways came back to it.
    assert re.search(r"^restart of north \(kill\): down \d", out, re.M), out
