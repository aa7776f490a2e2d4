"""``telemon gateway`` as an operator runs it: a real process."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest


def gateway_cli(*args: str, state_dir=None, **kwargs):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
    if state_dir is not None:
        env["TELEMON_GATEWAY_STATE_DIR"] = str(state_dir)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        **kwargs,
    )


@pytest.mark.parametrize("command", [[], ["provision"], ["pair"], ["run"], ["status"]])
def test_every_command_has_help(command) -> None:
    result = gateway_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()  # typer's "Usage", argparse's "usage" (run)


def test_run_without_identity_says_to_provision(tmp_path) -> None:
    result = gateway_cli("run", state_dir=tmp_path / "state")
    assert result.returncode == 2
    assert "telemon gateway provision" in result.stderr


def test_provision_writes_a_private_identity(tmp_path) -> None:
    state = tmp_path / "state"
    result = gateway_cli(
        "provision",
        "--gateway-id",
        "gw-0001",
        "--patient-id",
        "P0001",
        "--mqtt-url",
        "mqtts://gw-0001:s3cret@broker.example:8883",
        state_dir=state,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    identity = json.loads((state / "identity.json").read_text())
    assert identity["mqtt_url"] == "mqtts://broker.example:8883"
    assert identity["mqtt_password"] == "s3cret"
    again = gateway_cli(
        "provision",
        "--gateway-id",
        "gw-0001",
        "--patient-id",
        "P0001",
        "--mqtt-url",
        "mqtt://h",
        "--password",
        "x",
        state_dir=state,
    )
    assert again.returncode == 2 and "--force" in again.stderr
    wrong_user = gateway_cli(
        "provision",
        "--gateway-id",
        "gw-0002",
        "--patient-id",
        "P0001",
        "--mqtt-url",
        "mqtt://other:pw@h",
        "--force",
        state_dir=state,
    )
    assert wrong_user.returncode == 2 and "logs in as 'other'" in wrong_user.stderr


def test_provision_takes_a_system_id_and_refuses_a_malformed_one(tmp_path) -> None:
    state = tmp_path / "state"
    common = ("--gateway-id", "gw-0005", "--patient-id", "P0001", "--mqtt-url", "mqtt://h")
    bad = gateway_cli(
        "provision", *common, "--password", "x", "--system-id", "00:1A:7D:DA:71:13", state_dir=state
    )
    assert bad.returncode == 2 and "invalid system_id" in bad.stderr
    assert not (state / "identity.json").exists()
    good = gateway_cli(
        "provision",
        *common,
        "--password",
        "x",
        "--system-id",
        "00-1a-7d-ff-fe-da-71-13",
        state_dir=state,
    )
    assert good.returncode == 0, good.stderr
    identity = json.loads((state / "identity.json").read_text())
    assert identity["system_id"] == "00-1A-7D-FF-FE-DA-71-13"
    assert "system id 00-1A-7D-FF-FE-DA-71-13" in gateway_cli("status", state_dir=state).stdout


def test_provision_prompts_for_the_password(tmp_path) -> None:
    state = tmp_path / "state"
    result = gateway_cli(
        "provision",
        "--gateway-id",
        "gw-0003",
        "--patient-id",
        "P0001",
        "--mqtt-url",
        "mqtt://127.0.0.1:1",
        state_dir=state,
        input="typed-pw\n",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((state / "identity.json").read_text())["mqtt_password"] == "typed-pw"


def test_run_keeps_going_without_a_broker_and_stops_on_sigterm(tmp_path) -> None:
    state = tmp_path / "state"
    gateway_cli(
        "provision",
        "--gateway-id",
        "gw-0004",
        "--patient-id",
        "P0001",
        "--mqtt-url",
        "mqtt://127.0.0.1:1",
        "--password",
        "pw",
        state_dir=state,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
    env["TELEMON_GATEWAY_STATE_DIR"] = str(state)
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--transport", "local"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3.0)
    assert process.poll() is None  # an unreachable broker is not fatal
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert (state / "outbox.db").exists()
    status = gateway_cli("status", state_dir=state)
    assert "gw-0004" in status.stdout and "rejected values: 0" in status.stdout
