"""Fleet load generator: N home gateways (MQTT only, no BLE) publishing realistic batched streams.

    python bench/fleet.py --gateways 500 --rate 10000 --duration 30 [--per-message 100]

Every home wears a pulse oximeter (1 Hz SpO2 and pulse rate) and takes the spot readings of
its care plan (blood pressure, glucose, weight, temperature: the demo cohort's mix); values are
normal. Each gateway numbers its observations contiguously and sends ``obs`` messages of the
MQTT contract at QoS 1, ``--per-message`` observations each (a spot reading goes at once).
Publishing is paced to ``--rate`` observations per second; simulated time runs as fast as it
must for that rate, and readings are never stamped after they are published.

Gateway codes are gw-PREFIX-00001... with a new random prefix per run unless ``--prefix`` is
given: every ingest on the broker subscribes to every gateway's topic, and fixed codes (such as
the demo's gw-0001) would put these readings into whichever database knows them.
``--database-url`` enrols the fleet's patients there first, so that an ingest stores them.

Shows published and acknowledged (PUBACK) observations, the rate of the last interval and the
lag behind the pacing schedule: in place on a terminal, a line every 5 s otherwise.

Library for the other benchmarks: bench/ingest.py builds its messages with
:func:`fleet_messages`, bench/alert_latency.py runs this command as its background.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench._fleet_mqtt import Progress, Publisher  # noqa: E402
from bench._fleet_setup import DEFAULT_MQTT_URL, enrol  # noqa: E402
from bench._fleet_streams import (  # noqa: E402
    Message,
    check_contract,
    fleet_cohort,
    fleet_messages,
    message,
    reading_items,
    timeline,
)

__all__ = [
    "Message",
    "Pacing",
    "Progress",
    "Publisher",
    "StatusLine",
    "checked",
    "fleet_cohort",
    "fleet_messages",
    "message",
    "primed",
    "publish_paced",
    "reading_items",
    "timeline",
]

CHECKED_MESSAGES = 20


def checked(messages: Iterable[Message], count: int = CHECKED_MESSAGES) -> Iterator[Message]:
    """``messages``, the first ``count`` of them validated by the server's own decoder."""
    for n, candidate in enumerate(messages):
        if n < count:
            check_contract(candidate)
        yield candidate


def primed(messages: Iterator[Message]) -> Iterator[Message]:
    """``messages`` with the first one made now: setting up thousands of homes takes seconds,
    which would otherwise count as lag behind the schedule."""
    first = next(messages, None)
    return itertools.chain([] if first is None else [first], messages)


@dataclass(slots=True)
class Pacing:
    """Where publishing stands against its schedule; read by the progress line."""

    started: float = 0.0
    lag: float = 0.0  # seconds behind the schedule now
    max_lag: float = 0.0
    finished: float = 0.0


def publish_paced(
    publisher: Publisher,
    messages: Iterable[Message],
    rate: float,
    stop: threading.Event,
    pacing: Pacing,
) -> None:
    """Publish each message when the observations before it are due at ``rate`` per second."""
    pacing.started = time.monotonic()
    sent = 0
    for candidate in messages:
        if stop.is_set():
            break
        due = pacing.started + sent / rate
        early = due - time.monotonic()
        if early > 0 and stop.wait(early):
            break
        pacing.lag = max(0.0, -early)
        pacing.max_lag = max(pacing.max_lag, pacing.lag)
        publisher.publish(candidate)
        sent += candidate.observations
    # On schedule, the run lasts until the last message's slot ends, not until it was sent.
    pacing.finished = max(time.monotonic(), pacing.started + sent / rate)


class StatusLine:
    """The progress line; its rate is over the interval since the previous line."""

    def __init__(self, publisher: Publisher, pacing: Pacing) -> None:
        self.publisher = publisher
        self.pacing = pacing
        self.last_time, self.last_count = time.monotonic(), 0

    def __call__(self) -> str:
        publisher = self.publisher
        publisher.settle()
        now, count = time.monotonic(), publisher.published_observations
        rate = (count - self.last_count) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_count = now, count
        return (
            f"published {count:,} obs in {publisher.published_messages:,} msgs | "
            f"acked {publisher.acked_observations:,} | {rate:,.0f} obs/s | "
            f"lag {self.pacing.lag:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--gateways", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10_000, help="observations per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of publishing")
    parser.add_argument("--per-message", type=int, default=100, help="observations per batch")
    parser.add_argument("--mqtt-url", default=DEFAULT_MQTT_URL)
    parser.add_argument(
        "--connections", type=int, default=32, help="MQTT connections at most (see above)"
    )
    parser.add_argument("--prefix", help="gateway codes gw-PREFIX-00001...; default: random")
    parser.add_argument(
        "--first-seq",
        type=int,
        help="first sequence number of every gateway; default: microseconds since the epoch, "
        "so a later run never reuses (gateway, seq)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", help="enrol the fleet's patients there first")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:6]
    cohort = fleet_cohort(args.gateways, args.prefix or run)
    if args.database_url:
        with psycopg.connect(args.database_url) as conn:
            enrol(conn, cohort)
    total = round(args.rate * args.duration)
    first_seq = args.first_seq if args.first_seq is not None else time.time_ns() // 1000
    plan = timeline(
        cohort, total, per_message=args.per_message, duration=args.duration, now=time.time()
    )
    messages = fleet_messages(
        cohort,
        total,
        per_message=args.per_message,
        start=plan.start,
        first_seq=first_seq,
        seed=args.seed,
    )
    messages = primed(checked(messages))

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    gateway_ids = [p.gateway_code for p in cohort.patients]
    pacing = Pacing()
    with Publisher(args.mqtt_url, gateway_ids, connections=args.connections, run=run) as publisher:
        print(
            f"fleet: {args.gateways:,} gateways (gw-{args.prefix or run}-...) on "
            f"{publisher.describe()}, "
            f"{args.per_message} observations per message, {args.rate:,.0f} obs/s for "
            f"{args.duration:g} s; simulated time x{plan.speed:.2f}",
            flush=True,
        )
        with Progress(StatusLine(publisher, pacing)):
            publish_paced(publisher, messages, args.rate, stop, pacing)
            publisher.wait_acked(10.0)
    elapsed = max(pacing.finished - pacing.started, 1e-9)
    print(
        f"published {publisher.published_observations:,} observations in "
        f"{publisher.published_messages:,} messages in {elapsed:.1f} s: "
        f"{publisher.published_observations / elapsed:,.0f} obs/s (target {args.rate:,.0f}); "
        f"acked {publisher.acked_observations:,}; max lag {pacing.max_lag:.2f} s",
        flush=True,
    )


if __name__ == "__main__":
    main()
