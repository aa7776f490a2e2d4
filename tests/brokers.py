"""A Mosquitto broker of a test's own, on a spare port, that the test may stop and restart; and
the shipped deploy/mosquitto/ files run on loopback (tests/reliability/test_bridge.py,
bench/region.py)."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from console.embedded import free_port
from telemon.mqtt import BrokerAddress, BrokerUnavailable, probe


class MosquittoProcess:
    """The real ``mosquitto`` binary with persistence on, so a restart keeps sessions."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        executable = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not Path(executable).exists():
            raise RuntimeError("mosquitto is not installed: `apt-get install mosquitto`")
        self.executable = executable
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            # Started as root, Mosquitto drops to the 'mosquitto' user, who cannot write into
            # pytest's temporary tree (root's, mode 0700): the save file would silently never
            # be written and a restart would forget every session. Staying the user that
            # started it keeps persistence real wherever the suite runs.
            + (f"user {getpass.getuser()}\n" if os.geteuid() == 0 else "")
            + "max_queued_messages 0\n"
            "log_dest none\n"
        )
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        self._process = subprocess.Popen([self.executable, "-c", str(self.config)])
        deadline = time.monotonic() + timeout
        while True:
            try:
                probe(BrokerAddress.parse(self.url), timeout=0.5)
                return self.url
            except BrokerUnavailable:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: a crash. Whatever changed since the last autosave is lost with the process."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
            self._process = None

    def stop(self) -> None:
        """A graceful stop (SIGTERM): Mosquitto writes its persistence file on the way out."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None


# --- the shipped configuration, on loopback ---------------------------------------------------

DEPLOY = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto"


def make_passwd(directory: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run the copy of make-passwd.sh in ``directory``; its stdout (the new credentials)."""
    return subprocess.run(
        ["bash", str(directory / "make-passwd.sh"), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    ).stdout


def on_loopback(config: str, directory: Path, port: int) -> str:
    """A shipped broker file with its listener, container paths and logging moved here."""
    config = re.sub(r"(?m)^listener 1883$", f"listener {port} 127.0.0.1", config)
    config = config.replace("/mosquitto/config/", f"{directory}/")
    config = config.replace("/mosquitto/data/", f"{directory}/data/")
    config = config.replace("log_dest stderr", f"log_dest file {directory}/mosquitto.log")
    # As MosquittoProcess: as root, stay root so the persistence file is really written.
    return config + ("user root\n" if os.geteuid() == 0 else "")


class DeployedBroker(MosquittoProcess):
    def __init__(self, directory: Path, config_file: str) -> None:
        super().__init__(directory / "run", port=free_port())
        (directory / "data").mkdir(exist_ok=True)
        self.log = directory / "mosquitto.log"
        self.config.write_text(
            on_loopback((directory / config_file).read_text(), directory, self.port)
        )

    def login_url(self, user: str, password: str) -> str:
        return f"mqtt://{user}:{password}@127.0.0.1:{self.port}"


def deploy_copy(directory: Path) -> Path:
    shutil.copytree(DEPLOY, directory, ignore=shutil.ignore_patterns("passwd", "bridge.d"))
    return directory


def bridge_connections(centre: DeployedBroker, area: str) -> int:
    """How often the centre logged the connection of ``area``'s bridge (its log is kept across
    its restarts: Mosquitto appends)."""
    if not centre.log.exists():
        return 0
    return centre.log.read_text().count(f" as bridge-{area} ")


def install_bridge(
    centre_dir: Path,
    area_dir: Path,
    area: str,
    centre_address: str,
    restart_timeout: int | None = None,
) -> None:
    """``make-passwd.sh bridge AREA`` on the centre's copy, its bridge file put in the area's
    bridge.d/ as an operator would: TLS off (loopback), and ``restart_timeout`` if given."""
    make_passwd(centre_dir, "bridge", area, env={"MQTT_CENTRE_ADDRESS": centre_address})
    (area_dir / "bridge.d").mkdir(exist_ok=True)
    bridge = (centre_dir / "bridge.d" / f"{area}.conf").read_text()
    bridge = bridge.replace("bridge_cafile", "#bridge_cafile")
    if restart_timeout is not None:
        bridge = re.sub(r"(?m)^restart_timeout \d+$", f"restart_timeout {restart_timeout}", bridge)
    (area_dir / "bridge.d" / f"{area}.conf").write_text(bridge)
