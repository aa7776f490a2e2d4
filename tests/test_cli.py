"""The ``telemon`` command as a user runs it: a real process, real servers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import httpx
import pytest

from console.demo import DEMO_PASSWORD
from console.discharged import REASON
from telemon.mqtt import BrokerAddress
from tests.dashboard.support import login
from tests.database import truncate_data
from tests.mqtt_clients import BrokerLogins, Client


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from console.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


@pytest.mark.parametrize("command", [[], ["demo"], ["migrate"], ["dashboard"], ["ingest"]])
def test_every_command_has_help(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_migrate_on_a_configured_database(database_url):
    result = run_cli("migrate", env={"TELEMON_DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "(native storage); applied: nothing new" in result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "TELEMON_DATABASE_URL is not set"),
        (
            {"TELEMON_DATABASE_URL": "postgresql://telemon:s3cret@127.0.0.1:1/telemon"},
            "cannot reach PostgreSQL at postgresql://telemon:***@127.0.0.1:1/telemon",
        ),
    ],
)
def test_missing_or_unreachable_database_is_explained_not_traced(env, message):
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr


def test_demo_with_an_unreachable_broker_is_explained(database_url, db):
    # db: emptied first, as the demo refuses a database with staff other than its own.
    result = run_cli(
        "demo",
        "--duration",
        "1",
        env={"TELEMON_DATABASE_URL": database_url, "TELEMON_MQTT_URL": "mqtt://127.0.0.1:1"},
    )
    assert result.returncode == 2
    assert "cannot reach the MQTT broker at mqtt://127.0.0.1:1" in result.stderr
    assert "Traceback" not in result.stderr


def test_sim_names_its_broker_without_the_gateway_password(database_url, mqtt_url, db, tmp_path):
    broker = BrokerAddress.parse(mqtt_url)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
    environment |= {
        "TELEMON_DATABASE_URL": database_url,
        "TELEMON_MQTT_URL": f"mqtt://gw-0001:s3cret@{broker.host}:{broker.port}",
        "TELEMON_DATA_DIR": str(tmp_path),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from console.cli import main; main()", "sim", "--patients", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )
    try:
        said = next(line for line in process.stdout if "simulated patients publishing" in line)
    finally:
        process.terminate()
        process.communicate(timeout=30)
        truncate_data(db)
    assert f"gw-0001@{broker.host}:{broker.port}" in said
    assert "s3cret" not in said


def test_demo_on_embedded_defaults_serves_health_and_continues_on_second_run(tmp_path):
    """The README's first command, minus the install: embedded PostgreSQL and broker."""
    from console.embedded import free_port

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from console.cli import main; main()",
            "demo",
            "--data-dir",
            str(tmp_path / "data"),
            "--port",
            str(port),
            "--duration",
            "300",
            "--patients",
            "6",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")},
    )
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if "'s closing report: " in line:  # the last line about the dashboard
                break
        else:
            pytest.fail("the demo never printed its URL")
        assert f"Dashboard: http://127.0.0.1:{port}/" in "".join(seen)
        _assert_broker_refuses_anonymous("".join(seen))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as r:
            assert json.loads(r.read()) == {"status": "ok"}  # liveness, for anyone
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as admin:
            login(admin, "admin", DEMO_PASSWORD)
            status = admin.get("/status", headers={"accept": "application/json"}).json()
        assert status["status"] == "ok"
        assert status["store"]["patients"] == 6

        # Simulated devices -> BLE -> gateways -> broker -> ingest -> store -> alerts engine ->
        # the nurse's triage queue, seen through the dashboard's API with a demo login.
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            login(client, "nurse.greco", DEMO_PASSWORD)
            deadline = time.monotonic() + 240
            while True:
                queue = client.get("/api/triage").json()
                # One item per open episode, so at most one per patient.
                assert len({e["patient_id"] for e in queue}) == len(queue), queue
                clinical = [e for e in queue if not e["task"]]
                if clinical:
                    break
                assert time.monotonic() < deadline, f"no clinical episode reached triage: {queue}"
                time.sleep(3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert response.status == 200

        # The demo's discharged patient: its GP reads the closing report the demo names.
        said = re.search(r"discharged before them; (\S+)'s closing report: (\S+)", "".join(seen))
        assert said is not None, "".join(seen)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            login(client, said.group(1), DEMO_PASSWORD)
            closing = client.get(said.group(2))
        assert closing.status_code == 200
        assert REASON in closing.text
    finally:
        process.send_signal(2)
        output = "".join(seen) + process.communicate(timeout=60)[0]
    assert process.returncode == 0, output
    assert "Stopped cleanly" in output

    second = run_cli(
        "demo", "--data-dir", str(tmp_path / "data"), "--port", str(port), "--duration", "1"
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "applied: 0001_core, 0002_observations" in output
    assert "applied: nothing new" in second.stdout  # the same database, continued


def _assert_broker_refuses_anonymous(demo_output: str) -> None:
    """Issue 15: anyone on the machine could use the demo's broker; now it wants a login."""
    url = re.search(r"embedded MQTT broker at (mqtt://\S+?);", demo_output).group(1)
    address = BrokerAddress.parse(url)
    assert address.username is None and address.host == "127.0.0.1"
    anonymous = Client(BrokerLogins(address.port, {}), None, client_id="telemon-demo-ingest")
    assert anonymous.connack.getName() == "Not authorized"
