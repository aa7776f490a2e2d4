"""A PostgreSQL primary and its streaming standby of a test's or a benchmark's own, from the
machine's binaries (``initdb``, ``pg_basebackup -R``, ``pg_ctl``) on spare loopback ports
(tests/dashboard/test_replica.py, bench/replica.py).

PostgreSQL refuses to run as root: when the suite does, the servers run as the ``postgres``
user (``runuser``), in a directory of their own that user can enter (pytest's are root's, 0700).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from console.embedded import free_port

SERVER_USER = "postgres"


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_basebackup"), reverse=True)
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are missing: apt-get install postgresql")
    return Path(found[0]).parent


class ReplicatedPostgres:
    """A primary with one hot standby streaming from it; both stopped and removed by ``stop``."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.workdir = Path(tempfile.mkdtemp(prefix="telemon-replica-"))
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.workdir, SERVER_USER, SERVER_USER)
        self.primary_dir = self.workdir / "primary"
        self.standby_dir = self.workdir / "standby"
        self.primary_port = free_port()
        self.standby_port = free_port()

    def url(self, port: int, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.workdir, timeout=120)

    def _configure(self, data_dir: Path, port: int) -> None:
        with (data_dir / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.workdir}'\n"
                # A test server: its data is thrown away, durability buys nothing.
                "fsync = off\n"
                "full_page_writes = off\n"
                "wal_level = replica\n"
                "hot_standby = on\n"
            )

    def start(self) -> None:
        # --auth=trust: initdb's pg_hba.conf then trusts local replication connections too.
        self._run(
            "initdb",
            f"--pgdata={self.primary_dir}",
            "--username=postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
        )
        self._configure(self.primary_dir, self.primary_port)
        self.start_server(self.primary_dir)

    def make_standby(self) -> None:
        """``pg_basebackup -R`` from the primary (standby.signal and primary_conninfo written by
        it), then the standby started on its own port. A fast checkpoint: the default spreads
        it over minutes."""
        self._run(
            "pg_basebackup",
            "--host=127.0.0.1",
            f"--port={self.primary_port}",
            "--username=postgres",
            f"--pgdata={self.standby_dir}",
            "--write-recovery-conf",
            "--wal-method=stream",
            "--checkpoint=fast",
        )
        with (self.standby_dir / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.standby_port}\n")
        self.start_server(self.standby_dir)

    def start_server(self, data_dir: Path) -> None:
        log = self.workdir / f"{data_dir.name}.log"
        self._run("pg_ctl", "-D", str(data_dir), "-l", str(log), "-w", "-t", "60", "start")

    def stop_server(self, data_dir: Path) -> None:
        self._run("pg_ctl", "-D", str(data_dir), "-m", "fast", "-w", "stop")

    def wait_replayed(self, database: str, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written by now."""
        with psycopg.connect(self.url(self.primary_port, database), autocommit=True) as primary:
            target = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url(self.standby_port, database), autocommit=True) as standby:
            while not standby.execute(
                "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
            ).fetchone()[0]:  # type: ignore[index]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby has not replayed up to {target}")
                time.sleep(0.05)

    def stop(self) -> None:
        for data_dir in (self.standby_dir, self.primary_dir):
            if (data_dir / "postmaster.pid").exists():
                # Already down: the directory goes anyway.
                with contextlib.suppress(subprocess.CalledProcessError):
                    self.stop_server(data_dir)
        shutil.rmtree(self.workdir, ignore_errors=True)
