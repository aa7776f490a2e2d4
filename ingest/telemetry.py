"""Ingest's own metrics, kept in memory and rendered in the Prometheus text format (0.0.4)."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    escaped = (
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in pairs
    )
    return "{" + ",".join(escaped) + "}"


class Counter:
    def __init__(self, name: str, help: str) -> None:
        self.name, self.help = name, help
        self._values: dict[tuple[tuple[str, str], ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(tuple(sorted(labels.items())), 0)

    def render(self) -> list[str]:
        with self._lock:
            values = sorted(self._values.items())
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in values]
        return lines


class Gauge:
    """A value read when scraped."""

    def __init__(self, name: str, help: str, read: Callable[[], float]) -> None:
        self.name, self.help, self._read = name, help, read

    def render(self) -> list[str]:
        return [
            f"# HELP {self.name} {self.help}",
            f"# TYPE {self.name} gauge",
            f"{self.name} {float(self._read()):g}",
        ]


class Histogram:
    def __init__(self, name: str, help: str, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.name, self.help = name, help
        self.buckets = tuple(buckets)
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sum += value

    def render(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        cumulative = 0
        for bound, n in zip((*self.buckets, float("inf")), counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            lines.append(f'{self.name}_bucket{{le="{le}"}} {cumulative}')
        lines += [f"{self.name}_sum {total:g}", f"{self.name}_count {cumulative}"]
        return lines


class IngestTelemetry:
    def __init__(
        self,
        *,
        queue_messages: Callable[[], float],
        queue_observations: Callable[[], float],
        broker_up: Callable[[], float],
        database_up: Callable[[], float],
        database_refusing: Callable[[], float],
    ) -> None:
        self.messages = Counter(
            "telemon_ingest_messages_total",
            "MQTT messages committed, by kind (obs, status, unusable, cleared_status).",
        )
        self.observations = Counter(
            "telemon_ingest_observations_total",
            "Observations handled: stored, duplicate (redelivered) or rejected.",
        )
        self.rejects = Counter(
            "telemon_ingest_rejects_total", "Dead letters written (messages or items), by reason."
        )
        self.batch_latency = Histogram(
            "telemon_ingest_batch_latency_seconds",
            "From the first message of a batch arriving to the batch being acknowledged.",
        )
        self.commit_time = Histogram(
            "telemon_ingest_commit_seconds", "Time to write and commit one batch."
        )
        self.batches = Counter("telemon_ingest_batches_total", "Batches committed.")
        self.store_errors = Counter(
            "telemon_ingest_store_errors_total",
            "Failed batch writes, retried: connection, conflict, resources (SQLSTATE class 53), "
            "unexpected; refused: isolated.",
        )
        self._all = (
            self.messages,
            self.observations,
            self.rejects,
            self.batches,
            self.batch_latency,
            self.commit_time,
            self.store_errors,
            Gauge(
                "telemon_ingest_queue_messages", "Messages waiting to be written.", queue_messages
            ),
            Gauge(
                "telemon_ingest_queue_observations",
                "Observations waiting to be written.",
                queue_observations,
            ),
            Gauge("telemon_ingest_broker_connected", "1 when connected to the broker.", broker_up),
            Gauge(
                "telemon_ingest_database_up", "1 when the last database write worked.", database_up
            ),
            Gauge(
                "telemon_ingest_database_refusing",
                "1 while the database refuses writes for want of resources (disk full, out of "
                "memory, a configuration limit): messages wait unacknowledged.",
                database_refusing,
            ),
        )

    def render(self) -> str:
        return "\n".join(line for metric in self._all for line in metric.render()) + "\n"
