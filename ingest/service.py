"""The ingest service: broker -> inbox -> batched writes -> commit -> acknowledgement.

Threads: the subscriber's network thread decodes each message and queues it in the bounded inbox;
the writer takes batches from the inbox, writes and commits each in one transaction, then
acknowledges its messages; the housekeeper refreshes the hourly rollup and applies retention on a
connection of its own; the metrics server answers /metrics and /healthz.
"""

from __future__ import annotations

import itertools
import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from ingest.failures import RETRY_DELAYS_S, StoreFailure, classify_failure
from ingest.housekeeping import Housekeeper
from ingest.inbound import ClearedStatus, ObservationMessage, StatusMessage, UnusableMessage
from ingest.inbox import Delivery, Inbox
from ingest.store import Store, WriteResult, connect_store
from ingest.subscriber import Subscriber, receive_maximum_for
from ingest.telemetry import IngestTelemetry
from telemon.config import Settings
from telemon.mqtt import BrokerAddress, probe
from telemon.ops_http import OpsServer

log = logging.getLogger(__name__)

ROLLUP_INTERVAL_S = 5.0  # see ingest/housekeeping.py for why the rollup is not per batch
RETENTION_INTERVAL_S = 3600.0
_KINDS = {
    ObservationMessage: "obs",
    StatusMessage: "status",
    UnusableMessage: "unusable",
    ClearedStatus: "cleared_status",
}


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """What one commit made durable, for observers such as the benchmark."""

    deliveries: list[Delivery]
    result: WriteResult
    committed_at: float  # time.time() right after COMMIT returned


class IngestService:
    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str | None = None,
        metrics_host: str = "0.0.0.0",
        on_commit: Callable[[CommittedBatch], None] | None = None,
    ) -> None:
        if not settings.database_url or not settings.mqtt_url:
            raise ValueError(
                "ingest needs TELEMON_DATABASE_URL and TELEMON_MQTT_URL to be set "
                "(`telemon demo` sets them for its embedded servers)"
            )
        self.settings = settings
        self.client_id = client_id or f"telemon-ingest-{socket.gethostname()}"
        self.broker = BrokerAddress.parse(settings.mqtt_url)
        self.batch_size = settings.ingest_batch_size
        self.batch_wait_s = settings.ingest_batch_ms / 1000
        self.inbox = Inbox(capacity=max(4 * self.batch_size, 2000))
        self.subscriber = Subscriber(
            self.broker,
            self.client_id,
            self.inbox,
            shared_group=settings.ingest_shared_group,
            ca_file=settings.mqtt_ca_file,
            receive_maximum=receive_maximum_for(self.batch_size),
        )
        self.telemetry = IngestTelemetry(
            queue_messages=lambda: self.inbox.depth[0],
            queue_observations=lambda: self.inbox.depth[1],
            broker_up=lambda: float(self.subscriber.is_connected),
            database_up=lambda: float(self._database_up),
            database_refusing=lambda: float(self._refused),
        )
        self.metrics_host = metrics_host
        self._metrics: OpsServer | None = None
        self._on_commit = on_commit
        self._store: Store | None = None
        self._database_up = False
        # Why the last write failed, until one succeeds: /healthz says it.
        self._failure: StoreFailure | None = None
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._stop_deadline: float | None = None
        self._stop_requested = threading.Event()
        self._housekeeper = Housekeeper(
            settings.database_url,
            rollup_interval=ROLLUP_INTERVAL_S,
            retention_interval=RETENTION_INTERVAL_S,
            audit_retention_months=settings.audit_retention_months,
        )
        self._stopped = False
        self._totals = WriteResult()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect to the database and the broker, subscribe, and start working. Non-blocking."""
        probe(self.broker)
        self._store = connect_store(self.settings.database_url)  # type: ignore[arg-type]
        self._database_up = True
        self._metrics = OpsServer(
            self.metrics_host,
            self.settings.ingest_metrics_port,
            health=self.health,
            metrics=self.telemetry.render,
            name="ingest",
        )
        self._metrics.start()
        self._housekeeper.start()
        self._writer.start()
        try:
            self.subscriber.start()
        except BaseException:
            self.stop(timeout=1)
            raise
        log.info(
            "ingest %s: broker %s, batches of %d observations or %d ms, metrics on port %d",
            self.client_id,
            self.broker,
            self.batch_size,
            self.settings.ingest_batch_ms,
            self.metrics_port,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and acknowledge what is queued, then disconnect. Messages not committed by the
        deadline stay unacknowledged and are delivered again to the next session."""
        if self._stopped:
            return
        self._stopped = True
        self._stop_deadline = time.monotonic() + timeout
        self._stop_requested.set()
        self.inbox.close()
        if self._writer.is_alive():
            self._writer.join(timeout)
        self.subscriber.stop()
        self._housekeeper.stop(max(1.0, self._stop_deadline - time.monotonic()))
        if self._metrics is not None:
            self._metrics.stop()
        if self._store is not None:
            self._store.conn.close()
        log.info(
            "ingest %s stopped: %d observations stored, %d duplicates, %d rejected",
            self.client_id,
            self.observations_stored,
            self.duplicates_ignored,
            self.messages_rejected,
        )

    def run_forever(self) -> None:
        """Run until SIGINT or SIGTERM, then stop gracefully."""
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.start()
            stop.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stop()

    # --- read-only state ---------------------------------------------------------------------

    @property
    def observations_stored(self) -> int:
        return self._totals.stored

    @property
    def duplicates_ignored(self) -> int:
        return self._totals.duplicates

    @property
    def messages_rejected(self) -> int:
        """Dead letters written: whole messages and single observations."""
        return self._totals.rejected_total

    @property
    def metrics_port(self) -> int | None:
        """The port /metrics is served on, once started (useful with port 0)."""
        return self._metrics.port if self._metrics is not None else None

    def health(self) -> tuple[bool, str]:
        broker = "connected" if self.subscriber.is_connected else "disconnected"
        database_up = self._database_up and self._housekeeper.healthy
        database = "up" if database_up else "down"
        failure = self._failure or self._housekeeper.failure
        if failure is not None and failure.refused:  # by the writer's batch or the housekeeper
            database = f"refusing writes ({failure.reason})"
        elif failure is not None and not database_up:
            database = f"down ({failure.reason})"
        refused = failure is not None and failure.refused
        ok = self.subscriber.is_connected and database_up and not refused
        return ok, f"{'ok' if ok else 'unhealthy'}: broker {broker}, database {database}"

    # --- the writer thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            batch = self.inbox.take_batch(self.batch_size, self.batch_wait_s, idle_wait=0.5)
            if batch:
                self._write_and_ack(batch)
            elif self._stop_deadline is not None:
                break

    def _write_and_ack(self, batch: list[Delivery]) -> None:
        messages = [d.message for d in batch]
        for attempt in itertools.count():
            started = time.perf_counter()
            try:
                store = self._connected_store()
                try:
                    result = store.write(messages)
                except psycopg.OperationalError:
                    raise
                except psycopg.Error as exc:
                    log.warning("batch refused (%s); writing its messages one by one", exc)
                    self.telemetry.store_errors.inc(kind="refused")
                    result = store.write_isolated(messages)
            except Exception as exc:
                failure = classify_failure(exc)
                # A deadlock or serialisation failure says nothing about the server's health.
                self._database_up = failure.kind != "connection"
                self.telemetry.store_errors.inc(kind=failure.kind)
                self._drop_store_if_broken()
                self._note_failure(failure, len(batch))
                # Refused for want of resources, a retry before the deadline would fail alike.
                if self._past_deadline() or (failure.refused and self._stop_deadline is not None):
                    log.error("giving up on %d unacknowledged messages at shutdown", len(batch))
                    return
                delay = failure.delay(attempt)
                log.warning("batch write failed (%s); retrying in %.1f s", failure.reason, delay)
                self._sleep_unless_stopping(delay)
                continue
            break
        committed_at = time.time()
        self._database_up = True
        if self._refused:
            log.info("the database accepts writes again after refusing them")
        self._failure = None
        self.telemetry.commit_time.observe(time.perf_counter() - started)
        self.subscriber.ack(batch)
        self.telemetry.batch_latency.observe(time.monotonic() - batch[0].received_at)
        self._count(batch, result)
        if self._on_commit is not None:
            self._on_commit(CommittedBatch(batch, result, committed_at))

    @property
    def _refused(self) -> bool:
        failure = self._failure
        return failure is not None and failure.refused

    def _note_failure(self, failure: StoreFailure, messages: int) -> None:
        """Remember why the write failed; say it loudly once when the database starts refusing."""
        if failure.refused and not self._refused:
            log.error(
                "the database refuses writes for want of resources (%s): %d messages stay "
                "unacknowledged, no new work is taken, and the batch is tried again with a "
                "back-off of up to %.0f s until an operator frees the resource",
                failure.reason,
                messages,
                max(RETRY_DELAYS_S["resources"]),
            )
        self._failure = failure

    def _sleep_unless_stopping(self, delay: float) -> None:
        """Sleep ``delay``, cut short by a stop: a minute's back-off must not delay shutdown."""
        if self._stop_deadline is None:
            self._stop_requested.wait(delay)
        else:
            time.sleep(min(delay, max(0.0, self._stop_deadline - time.monotonic())))

    def _count(self, batch: list[Delivery], result: WriteResult) -> None:
        t = self.telemetry
        t.batches.inc()
        # Counted by kind first: one labelled increment per kind, not per message.
        for kind, n in Counter(_KINDS[type(d.message)] for d in batch).items():
            t.messages.inc(n, kind=kind)
        t.observations.inc(result.stored, outcome="stored")
        t.observations.inc(result.duplicates, outcome="duplicate")
        for reason, n in result.rejected.items():
            t.rejects.inc(n, reason=reason)
        self._totals.add(result)

    def _connected_store(self) -> Store:
        if self._store is None or self._store.conn.closed:
            self._store = connect_store(self.settings.database_url)  # type: ignore[arg-type]
        return self._store

    def _drop_store_if_broken(self) -> None:
        if self._store is not None and self._store.conn.broken:
            self._store.conn.close()
            self._store = None

    def _past_deadline(self) -> bool:
        return self._stop_deadline is not None and time.monotonic() >= self._stop_deadline
