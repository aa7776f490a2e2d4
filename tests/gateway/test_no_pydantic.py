"""The gateway process imports no pydantic (issue 19: it would take a third of its 60 MiB).

`lint-imports` forbids it statically (pyproject's "servers' packages" contract); this runs the
real `telemon gateway run` entry point, up to the point where it has loaded its runtime, its
Bluetooth backend and the uplink, and asks the interpreter what it imported.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.identity import GatewayIdentity

# Records every import of pydantic (or pydantic-core), and whoever asked for it, then runs the
# `telemon` command as its console script does.
PROBE = """
import atexit, json, sys, traceback

seen = []

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pydantic", "pydantic_core") and not seen:
            seen.append([name, traceback.format_stack(limit=8)])
        return None

sys.meta_path.insert(0, Watch())
atexit.register(lambda: print("IMPORTED " + json.dumps(
    {"first": seen, "loaded": sorted(m for m in sys.modules if m.startswith("pydantic"))}
), flush=True))
from console.cli import main
sys.argv = ["telemon", *sys.argv[1:]]
main()
"""
STARTED = "paired device(s), broker"


def test_telemon_gateway_run_imports_no_pydantic(tmp_path: Path) -> None:
    # A broker that never answers: the gateway retries it, and runs meanwhile.
    GatewayIdentity(gateway_id="gw-lean", patient_id="P0001", mqtt_url="mqtt://127.0.0.1:9").save(
        tmp_path
    )
    command = [sys.executable, "-c", PROBE, "gateway", "run", "--transport", "local"]
    process = subprocess.Popen(
        [*command, "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(STARTED in line for line in lines):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=30)
    output = "".join(lines) + rest
    assert any(STARTED in line for line in lines), output
    [report] = [line for line in output.splitlines() if line.startswith("IMPORTED ")]
    imported = json.loads(report.removeprefix("IMPORTED "))
    assert imported == {"first": [], "loaded": []}, "".join(imported["first"][0][1])
