"""Debounce state per (patient, rule), advanced for all patients of a rule at once.

- An alert opens once ``confirm.count`` consecutive readings are in band and span at least
  ``confirm.duration``; one reading out of band restarts the count, so a value wobbling around a
  threshold does not open an alert on every crossing. Readings count one by one however they
  arrive: a gateway's backlog of readings in band, evaluated in one pass, advances the count
  by as many of them as stand in band at its end (``RuleResult.streaks``). Kinds whose value is
  not one reading's (trend, aggregate, score, missing_data) count one per new value.
- An open alert moves up to a worse level at once, and down only when the value leaves the
  band widened by ``clear_margin`` (``RuleResult.hold_level``), so it does not flap either.
  Those moves follow the newest reading: a backlog is judged by where it ends.
- Only a reading newer than the last one counted (``last_at``) moves the state: evaluating the
  same data again, or after a restart, changes nothing. "No data" never clears an alert;
  missing_data rules report that.
- A first reading in band that nothing confirms or contradicts within ``confirm.timeout``
  (rules with ``confirm.count`` above 1) opens the alert anyway, at its level, marked
  unconfirmed. The next reading settles it: in band it confirms it (a higher band also worsens
  it, a lower one moves it there), out of band it clears it, for threshold rules even within
  the clear margin, since that one reading was never confirmed.
- The per-rule reminder timers (``escalate_after``, ``snooze_after_ack``, ``Transitions.reminded``)
  still run here, but the engine no longer acts on them: reminders are the episode's, on its
  protocol's finite escalation chain (``alerts.episodes``), and ``snooze_after_ack`` is how long
  an acknowledgement of an episode holds. Removing them from the state is left for a migration
  of ``alert_rule_state`` of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from alerts.evaluate import NO_TIME, RuleResult
from alerts.tables import CompiledRule


@dataclass(frozen=True, slots=True, eq=False)
class DebounceState:
    """Where the debouncing of one rule stands for each patient (``alert_rule_state``): not an
    alert's lifecycle state (``telemon.alert_lifecycle``), which people and the engine move."""

    level: np.ndarray  # int8: open alert level, 0 when no alert is open
    count: np.ndarray  # int64: consecutive in-band readings counted while no alert is open
    since: np.ndarray  # int64: time of the first reading of that streak
    last_at: np.ndarray  # int64: time of the newest reading already counted
    opened_at: np.ndarray  # int64
    notified_at: np.ndarray  # int64: last notification (open, escalation, reminder)
    stage: np.ndarray  # int64: reminders sent while unacknowledged (escalation ladder step)
    acked: np.ndarray  # bool
    snoozed_until: np.ndarray  # int64
    unconfirmed: np.ndarray  # bool: opened by the confirm timeout, no second reading yet

    @classmethod
    def initial(cls, n_patients: int) -> DebounceState:
        times = {
            f.name: np.full(n_patients, NO_TIME, np.int64)
            for f in fields(cls)
            if f.name in {"since", "last_at", "opened_at", "notified_at", "snoozed_until"}
        }
        return cls(
            level=np.zeros(n_patients, np.int8),
            count=np.zeros(n_patients, np.int64),
            stage=np.zeros(n_patients, np.int64),
            acked=np.zeros(n_patients, bool),
            unconfirmed=np.zeros(n_patients, bool),
            **times,
        )

    def __len__(self) -> int:
        return self.level.size


@dataclass(frozen=True, slots=True, eq=False)
class Transitions:
    """What happened at one step, per patient; ``notify`` is what should be sent now.

    ``opened_unconfirmed``: the alerts of ``opened`` that the confirm timeout opened;
    ``confirmed``: an unconfirmed alert's next reading was in band (with ``escalated`` or
    ``downgraded`` when its band differs).
    """

    opened: np.ndarray
    escalated: np.ndarray
    downgraded: np.ndarray
    cleared: np.ndarray
    reminded: np.ndarray
    opened_unconfirmed: np.ndarray
    confirmed: np.ndarray

    @property
    def notify(self) -> np.ndarray:
        notify: np.ndarray = self.opened | self.escalated | self.reminded
        return notify


def step(
    state: DebounceState, result: RuleResult, rule: CompiledRule, now: int
) -> tuple[DebounceState, Transitions]:
    level, hold, at = result.level, result.hold_level, result.at
    fresh = (level >= 0) & (at > state.last_at)
    active = state.level > 0
    # An unconfirmed threshold alert has no clear margin to hold it: its one reading was never
    # confirmed. A value of the other kinds (a 3-day weight change, a fitted fall) is not one
    # reading's: the next one, within the margin, confirms the trend still stands.
    if rule.rule.kind == "threshold":
        hold = np.where(state.unconfirmed, level, hold)
    confirmed = fresh & active & state.unconfirmed & (hold > 0)

    escalated = fresh & active & (level > state.level)
    lowered = fresh & active & ~escalated & (hold < state.level)
    held_level = np.where(escalated, level, np.where(lowered, np.maximum(hold, 0), state.level))
    cleared = lowered & (held_level == 0)
    downgraded = lowered & (held_level > 0)

    in_band = fresh & ~active & (level > 0)
    out_of_band = fresh & ~active & (level == 0)
    # Readings up to last_at were counted already (before a restart too): only newer ones add.
    # The streak counted so far goes on unless one of the new readings was out of band.
    runs = result.confirmations()
    new, first_new = runs.newer_than(state.last_at)
    goes_on = (state.count > 0) & (runs.broken_at <= state.last_at)
    count = np.where(
        in_band,
        np.where(goes_on, state.count, 0) + new,
        np.where(out_of_band, 0, state.count),
    )
    since = np.where(in_band & ~goes_on, first_new, state.since)
    confirmed_open = in_band & (count >= rule.confirm_count) & (at - since >= rule.confirm_duration)
    # Nothing confirmed or contradicted the streak's first reading in time: open it anyway. On a
    # pass with nothing new, ``level`` is still that of the newest reading, the streak's last.
    timed_out = (
        ~active
        & ~confirmed_open
        & (count > 0)
        & (level > 0)
        & (rule.confirm_count > 1)
        & (now - since >= rule.confirm_timeout)
    )
    opened = confirmed_open | timed_out
    new_level = np.where(active, held_level, np.where(opened, level, 0)).astype(np.int8)
    reset = opened | out_of_band
    count = np.where(reset, 0, count)
    since = np.where(reset, NO_TIME, since)

    open_now = new_level > 0
    fresh_notice = opened | escalated
    silent = open_now & ~fresh_notice
    overdue = silent & ~state.acked & (now - state.notified_at >= rule.escalate_after)
    snooze_over = silent & state.acked & (now >= state.snoozed_until)
    reminded = overdue | snooze_over

    acked = np.where(fresh_notice | snooze_over | ~open_now, False, state.acked)
    new_state = DebounceState(
        level=new_level,
        count=count,
        since=since,
        last_at=np.where(fresh, at, state.last_at),
        opened_at=np.where(opened, now, np.where(open_now, state.opened_at, NO_TIME)),
        notified_at=np.where(
            fresh_notice | reminded, now, np.where(open_now, state.notified_at, NO_TIME)
        ),
        stage=np.where(overdue, state.stage + 1, np.where(open_now & ~opened, state.stage, 0)),
        acked=acked,
        snoozed_until=np.where(acked, state.snoozed_until, NO_TIME),
        unconfirmed=open_now & np.where(active, state.unconfirmed & ~fresh, timed_out),
    )
    return new_state, Transitions(
        opened, escalated, downgraded, cleared, reminded, timed_out, confirmed
    )


def acknowledge(
    state: DebounceState, patients: np.ndarray, rule: CompiledRule, now: int
) -> DebounceState:
    """Acknowledge the open alerts of ``patients`` (indices or a boolean mask)."""
    chosen = np.zeros(len(state), bool)
    chosen[patients] = True
    chosen &= state.level > 0
    return replace(
        state,
        acked=state.acked | chosen,
        snoozed_until=np.where(chosen, now + rule.snooze_after_ack, state.snoozed_until),
        stage=np.where(chosen, 0, state.stage),
    )
