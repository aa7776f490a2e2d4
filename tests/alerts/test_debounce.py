"""Confirm counts, hysteresis, escalation, acknowledgement and snooze."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.debounce import AlertState, acknowledge, step
from alerts.evaluate import RuleResult, evaluate_rule
from alerts.protocol import parse_protocol
from alerts.reference import Outcome, PatientAlert, acknowledge_patient, step_patient
from alerts.tables import compile_protocol
from alerts.windows import MetricWindow

H = 3600
T0 = 1_767_225_600


def spo2_rule(confirm_count=2, confirm_duration=0, clear_margin=1.0, escalate="1h", snooze="4h"):
    raw = {
        "key": "demo",
        "version": "1.0.0",
        "title": "Demo",
        "rules": [
            {
                "key": "spo2_low",
                "kind": "threshold",
                "title": "Low SpO2",
                "metrics": ["spo2"],
                "bands": [
                    {"level": "amber", "op": "<=", "value": 94},
                    {"level": "red", "op": "<=", "value": 92},
                ],
                "lookback": "24h",
                "confirm": {"count": confirm_count, "duration": confirm_duration},
                "clear_margin": clear_margin,
                "escalate_after": escalate,
                "snooze_after_ack": snooze,
                "source": "NHS CO@h bands, anchors 3.1",
            }
        ],
    }
    return compile_protocol(parse_protocol(raw), 1).rule("spo2_low")


def run(rule, values, every=H, acks=()):
    """Feed one reading per ``every`` seconds, evaluating right after each; returns a log."""
    state = AlertState.initial(1)
    log = []
    for i in range(len(values)):
        now = T0 + i * every
        # None stands for an evaluation tick without a new reading.
        seen = [(T0 + j * every, v) for j, v in enumerate(values[: i + 1]) if v is not None]
        t = np.array([x for x, _ in seen], dtype=np.int64)
        v = np.array([y for _, y in seen], dtype=float)
        window = MetricWindow(np.array([0, t.size]), t, v)
        if i in acks:
            state = acknowledge(state, np.array([0]), rule, now)
        state, changes = step(state, evaluate_rule(rule, {"spo2": window}, now), rule, now)
        events = [n for n in ("opened", "escalated", "downgraded", "cleared", "reminded")
                  if getattr(changes, n)[0]]  # fmt: skip
        log.append((int(state.level[0]), events))
    return log


def levels(log):
    return [level for level, _ in log]


def events(log, name):
    return sum(name in e for _, e in log)


def test_alert_opens_after_confirm_count_readings():
    assert levels(run(spo2_rule(confirm_count=3), [96, 94, 94, 94, 94])) == [0, 0, 0, 1, 1]
    # An in-range reading restarts the count.
    assert levels(run(spo2_rule(confirm_count=3), [94, 94, 96, 94, 94, 94])) == [0, 0, 0, 0, 0, 1]


def test_confirm_duration_counts_time_between_readings():
    rule = spo2_rule(confirm_count=1, confirm_duration=2 * H)
    assert levels(run(rule, [94, 94, 94, 94])) == [0, 0, 1, 1]


def test_re_evaluating_the_same_reading_does_not_confirm_it():
    log = run(spo2_rule(confirm_count=2), [94, None, None, None])
    assert levels(log) == [0, 0, 0, 0]


def test_worse_level_escalates_at_once_and_better_level_steps_down_with_margin():
    log = run(spo2_rule(confirm_count=2), [94, 94, 91, 93, 94, 95, 96])
    assert levels(log) == [0, 1, 2, 2, 1, 1, 0]
    assert [events(log, n) for n in ("opened", "escalated", "downgraded", "cleared")] == [
        1, 1, 1, 1,
    ]  # fmt: skip


def test_value_oscillating_around_threshold_does_not_flap():
    wobble = [94, 94] + [95, 94] * 10 + [94.5, 95.0] * 5
    log = run(spo2_rule(confirm_count=2, clear_margin=1), wobble)
    assert events(log, "opened") == 1
    assert events(log, "cleared") == 0
    assert set(levels(log)[1:]) == {1}
    # Past the threshold by more than the margin, it clears once.
    assert events(run(spo2_rule(confirm_count=2, clear_margin=1), [*wobble, 95.5]), "cleared") == 1
    # Without hysteresis the same series would clear and reopen over and over.
    flappy = run(spo2_rule(confirm_count=1, clear_margin=0), wobble)
    assert events(flappy, "opened") > 5


def test_wobble_below_confirm_count_never_opens():
    log = run(spo2_rule(confirm_count=2), [94, 95] * 10)
    assert events(log, "opened") == 0


def test_no_data_does_not_clear():
    rule = spo2_rule(confirm_count=1)
    state = AlertState.initial(1)
    opened, _ = step(state, result(1, 1, T0), rule, T0)
    after, changes = step(opened, result(-1, -1, -1), rule, T0 + H)
    assert after.level[0] == 1 and not changes.cleared[0]


def result(level, hold, at):
    return RuleResult(
        "spo2_low",
        np.array([level], np.int8),
        np.array([hold], np.int8),
        np.array([90.0]),
        np.array([at]),
        np.array(["x"]),
    )


def test_unacknowledged_alert_is_reminded_every_escalation_interval():
    rule = spo2_rule(confirm_count=1, escalate="1h")
    state, _ = step(AlertState.initial(1), result(1, 1, T0), rule, T0)
    reminders = []
    for minutes in range(10, 190, 10):
        state, changes = step(state, result(1, 1, T0), rule, T0 + minutes * 60)
        reminders.append(bool(changes.reminded[0]))
    assert sum(reminders) == 3  # at 60, 120 and 180 minutes
    assert state.stage[0] == 3


def test_snooze_holds_for_same_level_and_breaks_on_worse():
    rule = spo2_rule(confirm_count=1, escalate="1h", snooze="4h")
    state, _ = step(AlertState.initial(1), result(1, 1, T0), rule, T0)
    state = acknowledge(state, np.array([0]), rule, T0 + 60)
    for hours in (1, 2, 3):  # new amber readings while snoozed: silent
        state, changes = step(state, result(1, 1, T0 + hours * H), rule, T0 + hours * H)
        assert not changes.notify[0]
    state, changes = step(state, result(1, 1, T0 + 4 * H + 60), rule, T0 + 4 * H + 60)
    assert changes.reminded[0] and not state.acked[0]  # snooze over, still amber
    state = acknowledge(state, np.array([0]), rule, T0 + 5 * H)
    state, changes = step(state, result(2, 2, T0 + 5 * H + 60), rule, T0 + 5 * H + 60)
    assert changes.escalated[0] and changes.notify[0] and not state.acked[0]


def test_acknowledge_ignores_patients_without_open_alert():
    rule = spo2_rule()
    state = acknowledge(AlertState.initial(3), np.array([True, False, True]), rule, T0)
    assert not state.acked.any()


@st.composite
def debounce_runs(draw):
    n_patients = draw(st.integers(1, 6))
    steps = draw(st.integers(1, 25))
    params = {
        "confirm_count": draw(st.integers(1, 3)),
        "confirm_duration": draw(st.sampled_from([0, 1800, 7200])),
        "escalate": draw(st.sampled_from([600, 3600])),
        "snooze": draw(st.sampled_from([0, 1800, 7200])),
    }
    ticks = []
    for _ in range(steps):
        level = draw(st.lists(st.integers(-1, 2), min_size=n_patients, max_size=n_patients))
        extra = draw(st.lists(st.integers(0, 2), min_size=n_patients, max_size=n_patients))
        stale = draw(st.lists(st.booleans(), min_size=n_patients, max_size=n_patients))
        ack = draw(st.lists(st.booleans(), min_size=n_patients, max_size=n_patients))
        advance = draw(st.sampled_from([300, 900, 3600]))
        ticks.append((level, extra, stale, ack, advance))
    return n_patients, params, ticks


@settings(max_examples=100, deadline=None)
@given(debounce_runs())
def test_vectorised_debounce_equals_reference(case):
    n_patients, params, ticks = case
    rule = spo2_rule(**params)
    spec = rule.rule
    state = AlertState.initial(n_patients)
    alerts = [PatientAlert() for _ in range(n_patients)]
    now = T0
    last_at = np.full(n_patients, T0 - H)
    for level, extra, stale, ack, advance in ticks:
        now += advance
        level = np.array(level)
        hold = np.where(level < 0, -1, np.minimum(level + np.array(extra), 2))
        at = np.where(level < 0, -1, np.where(stale, last_at, now))
        last_at = np.where(at > 0, at, last_at)
        acked = np.flatnonzero(ack)
        state = acknowledge(state, acked, rule, now)
        for p in acked:
            acknowledge_patient(alerts[p], spec, now)
        outcome = RuleResult("spo2_low", level.astype(np.int8), hold.astype(np.int8),
                             np.zeros(n_patients), at, np.array(["x"] * n_patients))  # fmt: skip
        state, changes = step(state, outcome, rule, now)
        for p in range(n_patients):
            o = Outcome(int(level[p]), int(hold[p]), 0.0, int(at[p]), "x")
            expected = step_patient(alerts[p], o, spec, now)
            got = {n for n in ("opened", "escalated", "downgraded", "cleared", "reminded")
                   if getattr(changes, n)[p]}  # fmt: skip
            assert got == expected
            a = alerts[p]
            assert (
                int(state.level[p]), int(state.count[p]), int(state.since[p]),
                int(state.last_at[p]), int(state.opened_at[p]), int(state.notified_at[p]),
                int(state.stage[p]), bool(state.acked[p]), int(state.snoozed_until[p]),
            ) == (
                a.level, a.count, a.since, a.last_at, a.opened_at, a.notified_at, a.stage,
                a.acked, a.snoozed_until,
            )  # fmt: skip


@pytest.mark.parametrize("n", [0, 1, 5])
def test_initial_state_shapes(n):
    state = AlertState.initial(n)
    assert len(state) == n and state.level.dtype == np.int8
