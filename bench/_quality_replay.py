"""Replaying the cohort's readings through the real engine and sender on an accelerated clock.

Simulated time moves in steps. In each step the readings taken in it are written as ingest
would write them and the patients who sent them are evaluated, as the NOTIFY path does; a
patient with several readings in one step (a repeated measurement, a second device) has them
written and evaluated one instant at a time, so that the engine sees each reading before the
next one, as it would live. Every simulated hour a full pass moves the missing-data rules; the
escalation chains move at every evaluation, and a step with no reading still evaluates nobody
so that they do. Each step ends with a sender round (no Twilio: the outbox), and, in the run
with a nurse, the nurse's look at the queue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import psycopg

from alerts.engine import Engine, ManualClock
from alerts.episodes import act
from alerts.lifecycle import TransitionNotAllowed
from alerts.notify import Sender
from alerts.protocol import Protocol
from bench._quality_store import Readings, store_rows
from firmware_sim.physiology_noise import uniform
from telemon.config import Settings

FULL_PASS_EVERY = timedelta(hours=1)
# A month replayed in minutes gives autovacuum (off on some servers) no time to keep up: the
# replay vacuums and analyses what grows, as a server running for a month would have.
MAINTAIN_EVERY = timedelta(hours=6)
GROWING = (
    "observations",
    "alert_rule_state",
    "alerts",
    "alert_events",
    "episodes",
    "episode_events",
    "notifications",
)
NURSE_WITHIN = timedelta(minutes=15)


@dataclass(slots=True)
class ReplayReport:
    steps: int = 0
    evaluations: int = 0
    full_passes: int = 0
    stored: int = 0
    acknowledgements: int = 0
    seconds: float = 0.0
    evaluate_seconds: float = 0.0
    full_pass_seconds: float = 0.0
    sender_seconds: float = 0.0
    maintenance_seconds: float = 0.0


@dataclass(slots=True)
class Nurse:
    """Acknowledges every unacknowledged episode within ``within`` of seeing it, through the
    dashboard's own call; again when an acknowledgement lapses or the episode worsens."""

    conn: psycopg.Connection
    staff_id: int
    protocols: Mapping[str, Protocol]
    settings: Settings
    seed: int
    within: timedelta = NURSE_WITHIN
    due: dict[int, datetime] = field(default_factory=dict)
    spells: dict[int, int] = field(default_factory=dict)

    def look(self, now: datetime) -> None:
        """Note the episodes waiting for someone, and when she will take each."""
        for (episode_id,) in self.conn.execute(
            "SELECT id FROM episodes WHERE state IN ('open', 'escalated')"
        ).fetchall():
            if episode_id in self.due:
                continue
            spell = self.spells.get(episode_id, 0)
            self.spells[episode_id] = spell + 1
            self.due[episode_id] = now + self.within * uniform(
                self.seed, "nurse", episode_id, spell
            )

    def act(self, until: datetime) -> int:
        """Acknowledge, each at its own time, the episodes due by ``until``; how many."""
        done = 0
        for episode_id, when in sorted(self.due.items(), key=lambda item: item[1]):
            if when > until:
                continue
            del self.due[episode_id]
            try:
                with self.conn.transaction():
                    act(
                        self.conn,
                        episode_id,
                        "acknowledge",
                        actor=self.staff_id,
                        now=when,
                        protocols=self.protocols,
                        settings=self.settings,
                    )
                done += 1
            except TransitionNotAllowed:
                continue  # resolved (or acknowledged) meanwhile
        return done


def instants(readings: Readings, lo: int, hi: int) -> list[list[int]]:
    """Rounds of row positions in ``[lo, hi)``: round k holds each patient's k-th instant."""
    rounds: list[list[int]] = []
    seen: dict[int, tuple[float, int]] = {}
    t, patient = readings.t, readings.patient
    for i in range(lo, hi):
        p = int(patient[i])
        last = seen.get(p)
        k = 0 if last is None else last[1] + (t[i] != last[0])
        seen[p] = (float(t[i]), k)
        if k == len(rounds):
            rounds.append([])
        rounds[k].append(i)
    return rounds


def replay(
    url: str,
    readings: Readings,
    *,
    start: datetime,
    end: datetime,
    step: timedelta,
    settings: Settings,
    protocols: Mapping[str, Protocol],
    nurse_id: int | None,
    seed: int,
    progress: Callable[[datetime, ReplayReport], None] | None = None,
) -> ReplayReport:
    """Run the engine and the sender from ``start`` to ``end``; a nurse acts if ``nurse_id``."""
    report = ReplayReport()
    started = time.perf_counter()
    clock = ManualClock(start)
    with (
        psycopg.connect(url, autocommit=True) as ingest_conn,
        psycopg.connect(url, autocommit=True) as engine_conn,
        psycopg.connect(url, autocommit=True) as sender_conn,
        psycopg.connect(url, autocommit=True) as nurse_conn,
    ):
        engine = Engine(engine_conn, settings, protocols)
        sender = Sender(sender_conn, None, public_url=settings.public_url, clock=clock)
        nurse = (
            Nurse(nurse_conn, nurse_id, protocols, settings, seed) if nurse_id is not None else None
        )
        bounds = np.searchsorted(readings.t, _steps(start, end, step), side="right")
        now = start
        for k in range(1, bounds.size):
            now = start + k * step
            clock.set(now)
            if nurse is not None:
                report.acknowledgements += nurse.act(now)
            evaluating = time.perf_counter()
            rounds = instants(readings, int(bounds[k - 1]), int(bounds[k]))
            for positions in rounds:
                store_rows(ingest_conn, [readings.rows[i] for i in positions])
                report.stored += len(positions)
                engine.evaluate(now, {int(readings.patient[i]) for i in positions})
                report.evaluations += 1
            if not rounds:
                engine.evaluate(now, ())  # nobody to evaluate: the escalations still move
            passing = time.perf_counter()
            if (now - start) % FULL_PASS_EVERY == timedelta(0):
                engine.evaluate(now)
                report.full_passes += 1
            sending = time.perf_counter()
            report.evaluate_seconds += passing - evaluating
            report.full_pass_seconds += sending - passing
            sender.run_once()
            report.sender_seconds += time.perf_counter() - sending
            if (now - start) % MAINTAIN_EVERY == timedelta(0):
                maintaining = time.perf_counter()
                ingest_conn.execute(f"VACUUM (ANALYZE) {', '.join(GROWING)}")
                report.maintenance_seconds += time.perf_counter() - maintaining
            if nurse is not None:
                nurse.look(now)
            report.steps += 1
            if progress is not None:
                report.seconds = time.perf_counter() - started
                progress(now, report)
    report.seconds = time.perf_counter() - started
    return report


def _steps(start: datetime, end: datetime, step: timedelta) -> np.ndarray:
    """Epoch seconds of the step boundaries start, start + step, ... up to ``end``."""
    count = int((end - start) / step)
    return start.timestamp() + step.total_seconds() * np.arange(count + 1)
