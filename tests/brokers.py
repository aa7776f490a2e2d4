"""A Mosquitto broker of a test's own, on a spare port, that the test may stop and restart."""

from __future__ import annotations

import getpass
import os
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
