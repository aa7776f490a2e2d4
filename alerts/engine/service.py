"""The alerts engine as a long-running service.

Threads, each with its own connection:

* listener: ``LISTEN telemon_new_observations``; collects the notified patient ids;
* evaluator: evaluates the collected patients once a burst has settled (``coalesce`` seconds),
  and everyone every ``tick`` seconds, which is what moves missing-data rules and escalation
  timers when no reading arrives; a full pass also runs at start and after the listener lost
  its connection, since notifications sent meanwhile are gone;
* sender: sends the notification rows (at most once each, see ``alerts.notify.sender``);
* health: ``GET /healthz`` on ``health_port``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time

import psycopg

from alerts.engine.clock import Clock, system_clock
from alerts.engine.engine import Engine, EvaluationReport
from alerts.engine.health import database_check
from alerts.notify import Sender, TwilioConfig, TwilioGateway
from alerts.protocol import Protocol, load_protocols
from telemon.config import Settings
from telemon.ops_http import OpsServer
from telemon.store.notify import CHANNEL, parse_notification

log = logging.getLogger(__name__)

HEALTH_PORT = 9465
RETRY_SECONDS = 2.0


class AlertsService:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        tick: float = 60.0,
        coalesce: float = 0.25,
        send_interval: float = 5.0,
        health_host: str = "0.0.0.0",
        health_port: int | None = HEALTH_PORT,
        protocols: dict[str, Protocol] | None = None,
    ) -> None:
        if not settings.database_url:
            raise ValueError("the alerts service needs TELEMON_DATABASE_URL")
        self.settings = settings
        self.url: str = settings.database_url
        self.clock = clock
        self.tick = tick
        self.coalesce = coalesce
        self.send_interval = send_interval
        self.protocols = protocols if protocols is not None else load_protocols()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._full_pass = True  # catch up on whatever happened while we were not running
        self._listening = threading.Event()
        self._threads: list[threading.Thread] = []
        self._database_check = database_check(self.url)
        self._health = (
            OpsServer(health_host, health_port, health=self.health, name="alerts")
            if health_port is not None
            else None
        )
        self.passes = 0
        self.last_report: EvaluationReport | None = None
        # What each worker last failed with, until it next succeeds: shown by health(), so an
        # engine that cannot evaluate or send says so instead of passing for healthy.
        self._failing: dict[str, str] = {}

    @property
    def health_port(self) -> int | None:
        return self._health.port if self._health else None

    def start(self) -> None:
        for name, target in (
            ("alerts-listener", self._listen_loop),
            ("alerts-evaluator", self._evaluate_loop),
            ("alerts-sender", self._send_loop),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self._wake.set()  # the first full pass, without waiting for the tick
        if self._health:
            self._health.start()

    def wait_listening(self, timeout: float = 10.0) -> bool:
        """Whether LISTEN is in place: notifications sent before it are not heard."""
        return self._listening.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        if self._health:
            self._health.stop()

    def run_forever(self) -> None:
        """Run until SIGTERM or SIGINT."""
        stopping = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopping.set())
        self.start()
        log.info("alerts engine running; health on :%s%s", self.health_port, "/healthz")
        stopping.wait()
        log.info("stopping")
        self.stop()

    def health(self) -> tuple[bool, str]:
        ok, detail = self._database_check()
        if not ok:
            return ok, detail
        dead = [t.name for t in self._threads if not t.is_alive()]
        if dead and not self._stop.is_set():
            return False, f"stopped unexpectedly: {', '.join(dead)}"
        with self._lock:
            failing = dict(self._failing)
        if failing:
            return False, "; ".join(f"{name} failing: {why}" for name, why in failing.items())
        return True, "ok"

    def _failed(self, worker: str, exc: BaseException | None) -> None:
        with self._lock:
            if exc is None:
                self._failing.pop(worker, None)
            else:
                self._failing[worker] = f"{type(exc).__name__}: {exc}"[:300]

    def request_full_pass(self) -> None:
        with self._lock:
            self._full_pass = True
        self._wake.set()

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self._heard(note.payload)
            except psycopg.Error as exc:
                self._listening.clear()
                log.warning("listener lost its connection (%s); retrying", exc)
                self.request_full_pass()
                self._stop.wait(RETRY_SECONDS)

    def _heard(self, payload: str) -> None:
        try:
            ids = parse_notification(payload)
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring malformed notification %r", payload[:200])
            return
        with self._lock:
            self._pending.update(ids)
        self._wake.set()

    def _evaluate_loop(self) -> None:
        next_tick = time.monotonic() + self.tick
        engine: Engine | None = None
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            if self._stop.is_set():
                break
            if self._wake.is_set() and not self._full_pass:
                # Let a burst of notifications settle into one evaluation.
                self._stop.wait(self.coalesce)
            self._wake.clear()
            with self._lock:
                full = self._full_pass or time.monotonic() >= next_tick
                patients = None if full else sorted(self._pending)
                self._pending.clear()
                self._full_pass = False
            if full:
                next_tick = time.monotonic() + self.tick
            elif not patients:
                continue
            try:
                engine = engine or self._connect_engine()
                self.last_report = engine.evaluate(self.clock(), patients)
                self.passes += 1
                self._failed("evaluator", None)
            except Exception as exc:
                # Whatever it is (a lost connection, a bug, a protocol that cannot be applied),
                # the thread must live to retry, and health must say it is failing.
                log.exception("evaluation failed; retrying")
                self._failed("evaluator", exc)
                self._drop(engine)
                engine = None
                with self._lock:
                    if patients is None:
                        self._full_pass = True
                    else:
                        self._pending.update(patients)
                self._stop.wait(RETRY_SECONDS)
                self._wake.set()
        self._drop(engine)

    def _connect_engine(self) -> Engine:
        conn = psycopg.connect(self.url, autocommit=True)
        return Engine(conn, self.settings, self.protocols)

    @staticmethod
    def _drop(engine: Engine | None) -> None:
        if engine is not None:
            engine.conn.close()

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as conn:
                    self._sender(conn).serve(
                        self._stop,
                        self.send_interval,
                        on_round=lambda: self._failed("sender", None),
                    )
            except Exception as exc:
                log.exception("sender failed; retrying")
                self._failed("sender", exc)
                self._stop.wait(RETRY_SECONDS)

    def _sender(self, conn: psycopg.Connection) -> Sender:
        config = TwilioConfig.from_settings(self.settings)
        gateway = TwilioGateway(config) if config else None
        return Sender(conn, gateway, public_url=self.settings.public_url, clock=self.clock)
