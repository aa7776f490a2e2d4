"""bench/ingest.py at one reading per message, briefly: the real broker, two real workers."""

from __future__ import annotations

import re

OBSERVATIONS = 3000


def test_a_short_single_reading_run_stores_every_message_once_and_reports_its_cpu(
    postgres_server_url, mqtt_url, run_bench
):
    out = run_bench(
        "ingest.py",
        *("--observations", str(OBSERVATIONS), "--per-message", "1", "--gateways", "100"),
        # A window past a worker's old Receive Maximum (2000): the broker then queued the rest
        # per session and dropped QoS 1 messages past its queue of 1000.
        *("--window", "2500"),
        *("--database-url", postgres_server_url, "--mqtt-url", mqtt_url),
        timeout=300,
    )
    assert f"{OBSERVATIONS} observations in {OBSERVATIONS} messages from 100 gateways" in out
    stored = re.search(r"^stored (\d+), duplicates (\d+);", out, re.M)
    assert stored is not None and stored.groups() == (str(OBSERVATIONS), "0"), out
    rate = re.search(r"^end to end \(publish -> commit\): +([\d,]+) observations/s", out, re.M)
    assert rate is not None and int(rate[1].replace(",", "")) > 0, out
    cpu = re.search(r"^worker CPU \(user \+ system\): +([\d,]+) µs per message", out, re.M)
    # The workers' own CPU for the run: an interpreter doing work, neither nothing nor seconds.
    assert cpu is not None and 1 <= int(cpu[1].replace(",", "")) < 100_000, out
