"""The moving parts of the fault tests: gateways through their real outbox and uplink, ingest
workers as real processes that a test may SIGKILL, and the counts every scenario reports.

"Produced" means appended to a gateway's outbox: from then on the pipeline promises the
observation reaches the database exactly once, whatever fails on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import psycopg

from gateway.identity import GatewayIdentity
from gateway.outbox import Outbox
from gateway.uplink import Uplink
from tests.fakes import FakeTwilio
from tests.ingest.support import Enrolled
from tests.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]

# A worker of the real IngestService. It appends "stored duplicates" after every commit, one
# line per write(2) (line buffering), so the counts survive its SIGKILL up to at most the batch
# committed in the instant before the kill.
INGEST_WORKER = """
import signal, sys, threading
from ingest.service import IngestService
from telemon.config import Settings

counts = open(sys.argv[1], "a", buffering=1)
service = IngestService(
    Settings(),
    client_id=sys.argv[2],
    metrics_host="127.0.0.1",
    on_commit=lambda batch: counts.write(f"{batch.result.stored} {batch.result.duplicates}\\n"),
)
stop = threading.Event()
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda *_: stop.set())
service.start()
counts.write("ready\\n")
stop.wait()
service.stop()
"""


@dataclass(frozen=True, slots=True)
class WorkerCounts:
    """What one worker incarnation reported: whether it was subscribed, and its commits."""

    ready: bool
    commits: int
    stored: int
    duplicates: int

    @classmethod
    def read(cls, path: Path) -> WorkerCounts:
        lines = path.read_text().splitlines() if path.exists() else []
        # A SIGKILL can cut the last line short: count only complete ones.
        numbers = [line.split() for line in lines if line != "ready"]
        pairs = [(int(a), int(b)) for a, b in (n for n in numbers if len(n) == 2)]
        return cls(
            ready="ready" in lines,
            commits=len(pairs),
            stored=sum(a for a, _ in pairs),
            duplicates=sum(b for _, b in pairs),
        )


class IngestWorkers:
    """Ingest worker processes under one stable client id (so a restarted worker resumes the
    broker session of the one before it, as a restarted service does)."""

    def __init__(self, workdir: Path, database_url: str, mqtt_url: str) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.client_id = f"faults-ingest-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "TELEMON_DATABASE_URL": database_url,
            "TELEMON_MQTT_URL": mqtt_url,
            "TELEMON_INGEST_SHARED_GROUP": f"faults-{uuid.uuid4().hex[:8]}",
            "TELEMON_INGEST_METRICS_PORT": "0",
            "TELEMON_INGEST_BATCH_MS": "50",
            "TELEMON_INGEST_BATCH_SIZE": "2000",
        }
        self.incarnations: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
        self.kills = 0

    @property
    def current(self) -> subprocess.Popen[bytes]:
        return self.incarnations[-1][0]

    def spawn(self, *, wait_ready: bool = True, timeout: float = 60.0) -> None:
        n = len(self.incarnations)
        counts, log = self.workdir / f"ingest-{n}.counts", self.workdir / f"ingest-{n}.log"
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", INGEST_WORKER, str(counts), self.client_id],
                cwd=REPO,
                env=self.env,
                stderr=stderr,
            )
        self.incarnations.append((process, counts, log))
        if wait_ready:
            # Subscribed before anything is published: a first session would miss earlier ones.
            self.wait(lambda c: c.ready, timeout, "ready")

    def counts(self, incarnation: int = -1) -> WorkerCounts:
        return WorkerCounts.read(self.incarnations[incarnation][1])

    def wait(self, condition: Callable[[WorkerCounts], bool], timeout: float, what: str) -> None:
        process, _, log = self.incarnations[-1]

        def met() -> bool:
            if process.poll() is not None:
                raise AssertionError(
                    f"ingest worker exited ({process.returncode}): {log.read_text()}"
                )
            return condition(self.counts())

        try:
            wait_until(met, timeout)
        except TimeoutError:
            raise AssertionError(
                f"ingest worker not {what} within {timeout} s: {log.read_text()}"
            ) from None

    def kill(self) -> None:
        kill(self.current)
        self.kills += 1

    @property
    def restarts(self) -> int:
        return len(self.incarnations) - 1

    def logged(self, text: str) -> int:
        """How often ``text`` appears in the workers' logs."""
        return sum(line.count(text) for _, _, log in self.incarnations for line in log.open())

    def stop(self) -> None:
        """Stop the live worker gracefully; kill any that will not go (cleanup after a failure)."""
        for process, _, _ in self.incarnations:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    @property
    def duplicates(self) -> int:
        """Redelivered observations the workers recognised and ignored, by their own counters."""
        return sum(self.counts(i).duplicates for i in range(len(self.incarnations)))


@dataclass
class SimulatedGateway:
    """A home gateway's outbox and uplink, fed readings with simulated measurement times."""

    enrolled: Enrolled
    outbox: Outbox
    uplink: Uplink
    clock: datetime  # measured_at of the next reading
    step: timedelta = timedelta(seconds=1)
    _closed_at_seq: int | None = None

    @property
    def code(self) -> str:
        return self.enrolled.gateway_code

    def produce(self, count: int) -> None:
        readings = self.enrolled.observations(count, start=self.clock)
        self.clock += self.step * count
        self.outbox.append(readings)
        self.uplink.notify_new_data()

    @property
    def produced(self) -> int:
        # Sequence numbers are contiguous from 1 and never reused: the last one is the count.
        if self._closed_at_seq is not None:
            return self._closed_at_seq
        return self.outbox.stats().last_seq

    def close(self) -> None:
        self._closed_at_seq = self.produced
        self.outbox.close()


@dataclass
class Fleet:
    """Gateways whose uplinks run on an event loop of their own thread, as on a real gateway the
    device side appends while the uplink drains."""

    gateways: list[SimulatedGateway]
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None
    _runs: list[asyncio.Future[None]] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        workdir: Path,
        mqtt_url: str,
        enrolled: Sequence[Enrolled],
        *,
        start: datetime,
        batch_size: int = 250,
    ) -> Fleet:
        gateways = []
        for gw in enrolled:
            identity = GatewayIdentity(
                gateway_id=gw.gateway_code, patient_id=gw.patient_code, mqtt_url=mqtt_url
            )
            outbox = Outbox(workdir / gw.gateway_code / "outbox.db", gw.gateway_code)
            uplink = Uplink(identity, outbox, batch_size=batch_size, window=8)
            gateways.append(SimulatedGateway(gw, outbox, uplink, start))
        return cls(gateways)

    def __enter__(self) -> Fleet:
        self._thread = threading.Thread(target=self._loop.run_forever, name="fleet", daemon=True)
        self._thread.start()

        async def begin() -> asyncio.Event:
            return asyncio.Event()

        self._stop = asyncio.run_coroutine_threadsafe(begin(), self._loop).result(5)
        for gateway in self.gateways:
            run = asyncio.run_coroutine_threadsafe(gateway.uplink.run(self._stop), self._loop)
            self._runs.append(run)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        for run in self._runs:
            # A failed uplink must not hide the test's own failure.
            with contextlib.suppress(Exception):
                run.result(20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
            self._loop.close()
        for gateway in self.gateways:
            gateway.close()

    @property
    def produced(self) -> int:
        return sum(g.produced for g in self.gateways)

    @property
    def outbox_depth(self) -> int:
        return sum(g.outbox.stats().depth for g in self.gateways)

    @property
    def codes(self) -> list[str]:
        return [g.code for g in self.gateways]

    def expected(self) -> dict[str, int]:
        return {g.code: g.produced for g in self.gateways}

    def check(self) -> None:
        """Raise the failure of an uplink that stopped running: it would only look like loss."""
        for gateway, run in zip(self.gateways, self._runs, strict=True):
            if run.done() and run.exception() is not None:
                raise AssertionError(f"uplink of {gateway.code} failed") from run.exception()


@dataclass(frozen=True, slots=True)
class Tally:
    """Produced, stored, duplicates and lost, as each scenario prints them."""

    produced: int
    stored: int  # distinct (gateway, seq) rows
    rows: int  # every row: more than ``stored`` would be a duplicate row
    duplicates: int  # redeliveries ingest recognised and ignored
    lost: int
    contiguous: bool  # per gateway, the stored seqs are exactly 1..produced

    def line(self, scenario: str) -> str:
        return (
            f"[faults] {scenario}: produced {self.produced} / stored {self.stored} / "
            f"duplicates {self.duplicates} / lost {self.lost}"
        )


def stored_by_gateway(conn: psycopg.Connection, codes: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """Per gateway code: (rows, distinct seqs, min seq, max seq)."""
    rows = conn.execute(
        "SELECT g.code, count(*), count(DISTINCT o.seq), min(o.seq), max(o.seq) "
        "FROM observations o JOIN gateways g ON g.id = o.gateway_id "
        "WHERE g.code = ANY(%s) GROUP BY g.code",
        (list(codes),),
    ).fetchall()
    return {code: tuple(rest) for code, *rest in rows}


def stored_rows(conn: psycopg.Connection, codes: Sequence[str]) -> int:
    return sum(r[0] for r in stored_by_gateway(conn, codes).values())


def tally(conn: psycopg.Connection, fleet: Fleet, duplicates: int) -> Tally:
    expected = fleet.expected()
    found = stored_by_gateway(conn, list(expected))
    rows = distinct = lost = 0
    contiguous = True
    for code, produced in expected.items():
        n_rows, n_distinct, low, high = found.get(code, (0, 0, None, None))
        rows += n_rows
        distinct += n_distinct
        lost += produced - n_distinct
        contiguous &= n_distinct == produced and (produced == 0 or (low, high) == (1, produced))
    return Tally(sum(expected.values()), distinct, rows, duplicates, lost, contiguous)


def drain(conn: psycopg.Connection, fleet: Fleet, timeout: float) -> None:
    """Wait until every produced observation is stored and every outbox is empty."""
    codes = fleet.codes

    def done() -> bool:
        fleet.check()
        return stored_rows(conn, codes) >= fleet.produced and fleet.outbox_depth == 0

    try:
        wait_until(done, timeout)
    except TimeoutError:
        raise AssertionError(
            f"not drained within {timeout} s: produced {fleet.produced}, "
            f"stored {stored_rows(conn, codes)}, outbox depth {fleet.outbox_depth}"
        ) from None


# --- the alerts side ------------------------------------------------------------------------------

# A notification sender as deployed (the real Sender, its own connection, the real twilio client)
# but with a client timeout and retry delays short enough for a test: tests/notify's one-shot
# sender process uses the production ones, which wait 30 s before a retry.
SENDER_LOOP = """
import json, signal, sys, threading
from datetime import timedelta
import psycopg
from alerts.notify.sender import RetryPolicy, Sender
from alerts.notify.twilio_gateway import TwilioConfig, TwilioGateway

args = json.loads(sys.argv[1])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
gateway = TwilioGateway(
    TwilioConfig(args["sid"], args["token"], args["sender"], args["base_url"], args["timeout"])
)
policy = RetryPolicy(args["max_attempts"], timedelta(seconds=args["first_delay"]))
with psycopg.connect(args["database_url"], autocommit=True) as conn:
    Sender(conn, gateway, public_url=args["public_url"], policy=policy).serve(stop, 0.05)
"""


def alerts_environment(database_url: str, fake: FakeTwilio, public_url: str, sender: str) -> dict:
    """The environment of ``telemon alerts`` sending through the fake Twilio."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
    return env | {
        "TELEMON_DATABASE_URL": database_url,
        "TELEMON_PUBLIC_URL": public_url,
        "TELEMON_LANGUAGE": "it",
        "TELEMON_TWILIO_ACCOUNT_SID": fake.account_sid,
        "TELEMON_TWILIO_AUTH_TOKEN": fake.auth_token,
        "TELEMON_TWILIO_FROM": sender,
        "TELEMON_TWILIO_BASE_URL": fake.base_url,
    }


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    assert process.wait(15) == -signal.SIGKILL


def terminate(process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM and wait; a process that will not stop is killed (and the test told so)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise
    return process.returncode


class Producer(threading.Thread):
    """The devices' side of a stream: ``chunk`` readings at a time to each gateway in turn, at
    ``rate`` a second, never past ``limit`` (which the test moves on as its faults are done)."""

    def __init__(self, fleet: Fleet, total: int, *, chunk: int, rate: float, limit: int) -> None:
        super().__init__(name="producer", daemon=True)
        self.fleet = fleet
        self.total = total
        self.chunk = chunk
        self.pause = chunk / rate
        self.limit = limit
        self.produced = 0
        self.failure: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while self.produced < self.total and not self._halt.is_set():
                if self.produced + self.chunk > self.limit:
                    self._halt.wait(0.01)
                    continue
                step = self.produced // self.chunk
                self.fleet.gateways[step % len(self.fleet.gateways)].produce(self.chunk)
                self.produced += self.chunk
                self._halt.wait(self.pause)
        except BaseException as exc:  # re-raised in the test's thread by finish()
            self.failure = exc

    def wait_for(self, produced: int, timeout: float) -> None:
        wait_until(lambda: self.produced >= produced or not self.is_alive(), timeout)
        self.check()

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        assert not self.is_alive(), f"still producing after {timeout} s"
        self.check()

    def cancel(self) -> None:
        self._halt.set()

    def check(self) -> None:
        if self.failure is not None:
            raise AssertionError("the producer failed") from self.failure
