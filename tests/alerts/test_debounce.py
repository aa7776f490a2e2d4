"""Confirm counts, hysteresis, escalation, acknowledgement and snooze."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.debounce import DebounceState, Transitions, acknowledge, step
from alerts.evaluate import RuleResult, evaluate_rule
from alerts.protocol import parse_protocol
from alerts.tables import compile_protocol
from alerts.windows import MetricWindow
from bench._reference import (
    Outcome,
    PatientAlert,
    acknowledge_patient,
    evaluate_patient,
    step_patient,
)

H = 3600
T0 = 1_767_225_600


def spo2_rule(
    confirm_count=2,
    confirm_duration=0,
    clear_margin=1.0,
    escalate="1h",
    snooze="4h",
    confirm_timeout="2d",
):
    raw = demo_protocol(
        confirm_count, confirm_duration, clear_margin, escalate, snooze, confirm_timeout
    )
    return compile_protocol(parse_protocol(raw), 1).rule("spo2_low")


def demo_protocol(
    confirm_count=2,
    confirm_duration=0,
    clear_margin=1.0,
    escalate="1h",
    snooze="4h",
    confirm_timeout="2d",  # these tests count readings; the timeout has tests of its own
):
    return {
        "key": "demo",
        "version": "1.0.0",
        "title": "Demo",
        "title_it": "Demo",
        "rules": [
            {
                "key": "spo2_low",
                "kind": "threshold",
                "title": "Low SpO2",
                "title_it": "SpO2 bassa",
                "metrics": ["spo2"],
                "bands": [
                    {"level": "amber", "op": "<=", "value": 94},
                    {"level": "red", "op": "<=", "value": 92},
                ],
                "lookback": "24h",
                "confirm": {
                    "count": confirm_count,
                    "duration": confirm_duration,
                    "timeout": confirm_timeout,
                },
                "clear_margin": clear_margin,
                "escalate_after": escalate,
                "snooze_after_ack": snooze,
                "source": "NHS CO@h bands, docs/clinical-references.md#spo2-thresholds",
            }
        ],
    }


def run(rule, values, every=H, acks=()):
    """Feed one reading per ``every`` seconds, evaluating right after each; returns a log."""
    state = DebounceState.initial(1)
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
    state = DebounceState.initial(1)
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
        np.zeros(1, np.int8),
        ("x",),
    )


def test_unacknowledged_alert_is_reminded_every_escalation_interval():
    rule = spo2_rule(confirm_count=1, escalate="1h")
    state, _ = step(DebounceState.initial(1), result(1, 1, T0), rule, T0)
    reminders = []
    for minutes in range(10, 190, 10):
        state, changes = step(state, result(1, 1, T0), rule, T0 + minutes * 60)
        reminders.append(bool(changes.reminded[0]))
    assert sum(reminders) == 3  # at 60, 120 and 180 minutes
    assert state.stage[0] == 3


def test_snooze_holds_for_same_level_and_breaks_on_worse():
    rule = spo2_rule(confirm_count=1, escalate="1h", snooze="4h")
    state, _ = step(DebounceState.initial(1), result(1, 1, T0), rule, T0)
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
    state = acknowledge(DebounceState.initial(3), np.array([True, False, True]), rule, T0)
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
        "confirm_timeout": draw(st.sampled_from([600, 1800, 172800])),
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
    state = DebounceState.initial(n_patients)
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
                             np.zeros(n_patients), at, np.zeros(n_patients, np.int8),
                             ("x",))  # fmt: skip
        state, changes = step(state, outcome, rule, now)
        for p in range(n_patients):
            o = Outcome(int(level[p]), int(hold[p]), 0.0, int(at[p]), "x")
            expected = step_patient(alerts[p], o, spec, now)
            got = {n for n in EVENTS if getattr(changes, n)[p]}
            assert got == expected
            assert same_state(state, p, alerts[p])


@pytest.mark.parametrize("n", [0, 1, 5])
def test_initial_state_shapes(n):
    state = DebounceState.initial(n)
    assert len(state) == n and state.level.dtype == np.int8


# Readings arriving together: a gateway's backlog evaluated in one pass counts reading by reading.

EVENTS = tuple(f.name for f in fields(Transitions))


def same_state(state: DebounceState, p: int, alert: PatientAlert) -> bool:
    """The vectorised state of patient ``p`` field by field against the reference's."""
    return all(
        getattr(state, f.name)[p].item() == getattr(alert, f.name) for f in fields(DebounceState)
    )


class Feed:
    """One patient's readings as they reach the engine, and the debounce state after each pass."""

    def __init__(self, rule, metrics=("spo2",)):
        self.rule, self.metrics = rule, metrics
        self.readings = {m: [] for m in metrics}
        self.state = DebounceState.initial(1)

    def evaluate(self, now, *arrived):
        """Store ``arrived`` ((t, value) of the first metric, or (t, {metric: value})), then one
        pass at ``now``; returns the transitions."""
        for t, value in arrived:
            values = value if isinstance(value, dict) else {self.metrics[0]: value}
            for metric, v in values.items():
                self.readings[metric].append((t, v, True))
        windows = {m: MetricWindow.from_readings([r]) for m, r in self.readings.items()}
        self.result = evaluate_rule(self.rule, windows, now)
        self.state, changes = step(self.state, self.result, self.rule, now)
        return {n for n in EVENTS if getattr(changes, n)[0]}

    @property
    def level(self):
        return int(self.state.level[0])

    @property
    def count(self):
        return int(self.state.count[0])


def backlog(*values, start=T0, every=H):
    return [(start + i * every, v) for i, v in enumerate(values)]


def test_amber_then_red_readings_in_one_batch_open_the_red_alert_at_once():
    feed = Feed(spo2_rule(confirm_count=2))
    assert feed.evaluate(T0 + 3 * H, *backlog(94, 91, 90)) == {"opened"}
    assert feed.level == 2 and feed.result.value[0] == 90
    # The journey's case: two readings, the second red.
    feed = Feed(spo2_rule(confirm_count=2))
    assert feed.evaluate(T0 + 2 * H, *backlog(94, 91)) == {"opened"}
    assert feed.level == 2


def test_a_single_reading_in_band_in_a_batch_does_not_open_with_confirm_two():
    feed = Feed(spo2_rule(confirm_count=2))
    assert feed.evaluate(T0 + 2 * H, *backlog(96, 91)) == set()
    assert (feed.level, feed.count, int(feed.result.streak[0])) == (0, 1, 1)
    # The next reading in band is the second.
    assert feed.evaluate(T0 + 3 * H, (T0 + 2 * H + 60, 91)) == {"opened"}


def test_only_the_readings_in_band_at_the_end_of_a_batch_count():
    feed = Feed(spo2_rule(confirm_count=2))
    assert feed.evaluate(T0 + 4 * H, *backlog(91, 91, 96, 91)) == set()
    assert feed.count == 1
    feed = Feed(spo2_rule(confirm_count=2))
    assert feed.evaluate(T0 + 3 * H, *backlog(91, 91, 96)) == set()
    assert feed.count == 0


def test_a_batch_continues_the_count_of_the_readings_before_it():
    feed = Feed(spo2_rule(confirm_count=4))
    feed.evaluate(T0 + 60, (T0, 94))
    assert feed.evaluate(T0 + 3 * H, *backlog(94, 93, start=T0 + H)) == set()
    assert feed.count == 3
    # A reading out of band among the new ones restarts it, even one older than the last.
    feed.evaluate(T0 + 6 * H, *backlog(96, 94, 94, start=T0 + 3 * H))
    assert feed.count == 2 and feed.level == 0


def test_readings_already_counted_are_not_counted_again_nor_after_a_restart():
    rule = spo2_rule(confirm_count=3)
    feed = Feed(rule)
    feed.evaluate(T0 + 2 * H, *backlog(94, 94))
    for later in range(3, 30):  # passes with nothing new, the readings leaving the lookback
        assert feed.evaluate(T0 + later * H) == set()
    assert feed.count == 2
    # A restarted engine has only what alert_rule_state keeps: the arrays, nothing derived.
    feed.state = DebounceState(
        **{f.name: getattr(feed.state, f.name).copy() for f in fields(feed.state)}
    )
    assert feed.evaluate(T0 + 30 * H) == set() and feed.count == 2
    assert feed.evaluate(T0 + 31 * H, (T0 + 30 * H, 94)) == {"opened"}


def test_confirm_duration_spans_the_readings_of_a_batch():
    rule = spo2_rule(confirm_count=1, confirm_duration=2 * H)
    assert Feed(rule).evaluate(T0 + 3 * H, *backlog(94, 94, 94)) == {"opened"}
    assert Feed(rule).evaluate(T0 + 3 * H, *backlog(96, 94, 94)) == set()


def test_an_open_alert_follows_the_newest_reading_of_a_batch_clearing_with_margin():
    feed = Feed(spo2_rule(confirm_count=2, clear_margin=1, escalate="1d"))
    feed.evaluate(T0 + 2 * H, *backlog(91, 90))
    assert feed.level == 2
    # Better readings, but the newest is still within the margin of red (<= 93): held.
    assert feed.evaluate(T0 + 5 * H, *backlog(96, 96, 93, start=T0 + 2 * H)) == set()
    assert feed.level == 2
    # A wobble inside amber's margin (<= 95) steps down once and stays there.
    assert feed.evaluate(T0 + 8 * H, *backlog(95, 94, 95, start=T0 + 5 * H)) == {"downgraded"}
    assert feed.evaluate(T0 + 9 * H, *backlog(94.5, start=T0 + 8 * H)) == set()
    assert feed.level == 1
    # Worse readings first, the newest clear of the margin: resolved, nothing else.
    assert feed.evaluate(T0 + 11 * H, *backlog(90, 96, start=T0 + 9 * H)) == {"cleared"}
    assert (feed.level, feed.count) == (0, 0)
    # Readings in band before the clearing one never count towards the next alert.
    assert feed.evaluate(T0 + 12 * H, (T0 + 11 * H, 94)) == set()
    assert feed.count == 1
    assert feed.evaluate(T0 + 14 * H, *backlog(94, 94, start=T0 + 12 * H)) == {"opened"}


def test_the_deciding_channel_counts_a_blood_pressure_reading_once():
    raw = {
        "key": "bp",
        "version": "1.0.0",
        "title": "BP",
        "title_it": "PA",
        "rules": [
            {
                "key": "bp_severe",
                "kind": "threshold",
                "title": "Severe BP",
                "title_it": "PA molto elevata",
                "metrics": ["systolic", "diastolic"],
                "bands": [
                    {"level": "red", "on": "systolic", "op": ">=", "value": 180},
                    {"level": "red", "on": "diastolic", "op": ">=", "value": 110},
                ],
                "lookback": "24h",
                "confirm": {"count": 2},
                "source": "NICE severe BP, docs/clinical-references.md#home-blood-pressure",
            }
        ],
    }
    rule = compile_protocol(parse_protocol(raw), 1).rule("bp_severe")
    feed = Feed(rule, ("systolic", "diastolic"))
    both = {"systolic": 185, "diastolic": 115}
    assert feed.evaluate(T0 + 60, (T0, both)) == set()
    assert feed.count == 1
    assert feed.evaluate(T0 + H, (T0 + H - 60, both)) == {"opened"}


def test_kinds_whose_value_is_not_a_reading_confirm_once_per_new_value():
    raw = {
        "key": "demo",
        "version": "1.0.0",
        "title": "Demo",
        "title_it": "Demo",
        "rules": [
            {
                "key": "spo2_falling",
                "kind": "trend",
                "title": "SpO2 falling",
                "title_it": "SpO2 in calo",
                "metrics": ["spo2"],
                "method": "delta",
                "window": "24h",
                "min_points": 2,
                "bands": [{"level": "amber", "op": "<=", "value": -3}],
                "confirm": {"count": 2, "timeout": "1d"},
                "source": "telemon brief, a fall of 3 points",
            }
        ],
    }
    rule = compile_protocol(parse_protocol(raw), 1).rule("spo2_falling")
    feed = Feed(rule)
    assert feed.evaluate(T0 + 4 * H, *backlog(97, 95, 93, 92)) == set()
    assert feed.result.streaks is None and feed.count == 1
    assert feed.evaluate(T0 + 5 * H, (T0 + 4 * H, 91)) == {"opened"}


SPO2_VALUES = [90.0, 91.5, 92.0, 93.0, 93.5, 94.0, 94.5, 95.0, 96.0]


@st.composite
def batched_readings(draw):
    """Readings inside the lookback of the pass that sees them, cut into batches."""
    n = draw(st.integers(1, 14))
    gaps = draw(st.lists(st.sampled_from([0, 600, H, 5 * H, 30 * H]), min_size=n, max_size=n))
    values = draw(st.lists(st.sampled_from(SPO2_VALUES), min_size=n, max_size=n))
    reliable = draw(st.lists(st.booleans() | st.just(True), min_size=n, max_size=n))
    cuts = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    times = (T0 + np.cumsum(gaps)).tolist()
    # Readings of one instant are one measurement stored twice: the same value.
    for i in range(1, n):
        if gaps[i] == 0:
            values[i] = values[i - 1]
    readings = list(zip(times, values, reliable, strict=True))
    batches, current = [], []
    for reading, cut in zip(readings, cuts, strict=True):
        if current and (cut or reading[0] - current[0][0] > 20 * H):
            batches.append(current)
            current = []
        current.append(reading)
    batches.append(current)
    return batches


@settings(max_examples=150, deadline=None)
@given(batched_readings())
def test_a_batch_counts_as_its_readings_would_one_per_pass(batches):
    # Never opens (nor does the timeout open it): the count and its start are compared.
    rule = spo2_rule(confirm_count=100, confirm_timeout="3650d")

    def evaluate(state, seen, now):
        window = MetricWindow.from_readings([seen])
        return step(state, evaluate_rule(rule, {"spo2": window}, now), rule, now)[0]

    batched, one_by_one, seen = DebounceState.initial(1), DebounceState.initial(1), []
    for batch in batches:
        for reading in batch:
            seen.append(reading)
            one_by_one = evaluate(one_by_one, seen, reading[0] + 60)
        batched = evaluate(batched, seen, batch[-1][0] + 120)
        assert (batched.count[0], batched.since[0], batched.last_at[0]) == (
            one_by_one.count[0],
            one_by_one.since[0],
            one_by_one.last_at[0],
        )


@st.composite
def backlogs(draw):
    """Patients whose readings reach the engine late or on time, and the passes over them."""
    n_patients = draw(st.integers(1, 5))
    params = {
        "confirm_count": draw(st.integers(1, 3)),
        "confirm_duration": draw(st.sampled_from([0, 1800, 7200])),
        "clear_margin": draw(st.sampled_from([0.0, 1.0])),
        "escalate": draw(st.sampled_from([600, 3600])),
        "confirm_timeout": draw(st.sampled_from([1800, 172800])),
    }
    patients = []
    for _ in range(n_patients):
        n = draw(st.integers(0, 12))
        gaps = draw(st.lists(st.sampled_from([0, 900, H, 6 * H, 26 * H]), min_size=n, max_size=n))
        values = draw(st.lists(st.sampled_from(SPO2_VALUES), min_size=n, max_size=n))
        reliable = draw(st.lists(st.booleans() | st.just(True), min_size=n, max_size=n))
        delays = draw(
            st.lists(st.sampled_from([0, 0, 2 * H, 12 * H, 30 * H]), min_size=n, max_size=n)
        )
        times = (T0 + np.cumsum(gaps)).tolist()
        patients.append(
            list(zip(times, values, reliable, (np.array(times) + delays).tolist(), strict=True))
        )
    passes = draw(st.lists(st.sampled_from([600, H, 4 * H, 13 * H]), min_size=1, max_size=20))
    return params, patients, passes


@settings(max_examples=100, deadline=None)
@given(backlogs())
def test_vectorised_evaluation_and_debounce_of_backlogs_equal_the_reference(case):
    params, patients, passes = case
    protocol = parse_protocol(demo_protocol(**params))
    rule = compile_protocol(protocol, len(patients)).rule("spo2_low")
    spec = rule.rule
    state = DebounceState.initial(len(patients))
    alerts = [PatientAlert() for _ in patients]
    now = T0
    for advance in passes:
        now += advance
        seen = [[(t, v, ok) for t, v, ok, arrival in p if arrival <= now] for p in patients]
        result = evaluate_rule(rule, {"spo2": MetricWindow.from_readings(seen)}, now)
        state, changes = step(state, result, rule, now)
        for p, readings in enumerate(seen):
            outcome = evaluate_patient(protocol, {"spo2": readings}, now)["spo2_low"]
            assert result.streaks.of(p) == (outcome.run, outcome.broken_at)
            assert (int(result.level[p]), int(result.at[p])) == (outcome.level, outcome.at)
            expected = step_patient(alerts[p], outcome, spec, now)
            assert {n for n in EVENTS if getattr(changes, n)[p]} == expected
            assert same_state(state, p, alerts[p])


# The confirm timeout: a first reading in band that no second reading confirms or contradicts.

MIN = 60


def unconfirmed_feed(first: float, **params) -> Feed:
    """A feed whose first reading (``first``, at T0) opened unconfirmed at the 30 min tick."""
    feed = Feed(spo2_rule(confirm_count=2, confirm_timeout="30m", escalate="1d", **params))
    assert feed.evaluate(T0 + MIN, (T0, first)) == set()
    assert feed.evaluate(T0 + 30 * MIN) == {"opened", "opened_unconfirmed"}
    assert bool(feed.state.unconfirmed[0])
    return feed


def test_a_red_reading_with_no_second_one_opens_unconfirmed_at_the_timeout():
    feed = Feed(spo2_rule(confirm_count=2, confirm_timeout="30m"))
    assert feed.evaluate(T0 + MIN, (T0, 90)) == set()
    # Passes with nothing new (the engine's tick) up to a second before the timeout: waiting.
    assert feed.evaluate(T0 + 29 * MIN + 59) == set()
    assert feed.level == 0 and feed.count == 1
    assert feed.evaluate(T0 + 30 * MIN) == {"opened", "opened_unconfirmed"}
    assert (feed.level, feed.count, bool(feed.state.unconfirmed[0])) == (2, 0, True)
    # Later ticks change nothing: it waits for the next reading.
    assert feed.evaluate(T0 + 40 * MIN) == set() and bool(feed.state.unconfirmed[0])


def test_a_second_reading_within_the_timeout_decides_as_before():
    confirming = Feed(spo2_rule(confirm_count=2, confirm_timeout="30m"))
    confirming.evaluate(T0 + MIN, (T0, 90))
    assert confirming.evaluate(T0 + 6 * MIN, (T0 + 5 * MIN, 91)) == {"opened"}
    assert not confirming.state.unconfirmed[0]
    contradicting = Feed(spo2_rule(confirm_count=2, confirm_timeout="30m"))
    contradicting.evaluate(T0 + MIN, (T0, 90))
    assert contradicting.evaluate(T0 + 6 * MIN, (T0 + 5 * MIN, 97)) == set()
    assert contradicting.evaluate(T0 + 2 * H) == set() and contradicting.level == 0


def test_the_next_reading_in_the_same_band_confirms_an_unconfirmed_alert():
    feed = unconfirmed_feed(90)
    assert feed.evaluate(T0 + 3 * H, (T0 + 3 * H - MIN, 91)) == {"confirmed"}
    assert (feed.level, bool(feed.state.unconfirmed[0])) == (2, False)


def test_a_reading_out_of_band_clears_an_unconfirmed_alert_even_within_the_clear_margin():
    # 95 is out of both bands (<= 94, <= 92) but within amber's clear margin (1 point).
    feed = unconfirmed_feed(90)
    assert feed.evaluate(T0 + H, (T0 + H - MIN, 95)) == {"cleared"}
    assert (feed.level, bool(feed.state.unconfirmed[0])) == (0, False)
    # A confirmed red alert would be held at amber by the same reading.
    confirmed = Feed(spo2_rule(confirm_count=2, escalate="1d"))
    confirmed.evaluate(T0 + 10 * MIN, (T0, 90), (T0 + 5 * MIN, 90))
    assert confirmed.evaluate(T0 + H, (T0 + H - MIN, 95)) == {"downgraded"}


def test_a_reading_in_another_band_moves_an_unconfirmed_alert_there_confirmed():
    lower = unconfirmed_feed(90)
    assert lower.evaluate(T0 + H, (T0 + H - MIN, 93)) == {"downgraded", "confirmed"}
    assert (lower.level, bool(lower.state.unconfirmed[0])) == (1, False)
    higher = unconfirmed_feed(94)
    assert higher.level == 1
    assert higher.evaluate(T0 + H, (T0 + H - MIN, 91)) == {"escalated", "confirmed"}
    assert higher.level == 2


def test_the_timeout_needs_a_confirm_count_above_one():
    # One reading confirms itself: it opens at once, confirmed, and no timeout is involved.
    feed = Feed(spo2_rule(confirm_count=1, confirm_timeout="30m"))
    assert feed.evaluate(T0 + MIN, (T0, 90)) == {"opened"}
    assert not feed.state.unconfirmed[0]


def test_an_unconfirmed_alert_escalates_like_any_other():
    feed = Feed(spo2_rule(confirm_count=2, confirm_timeout="30m", escalate="1h"))
    feed.evaluate(T0 + MIN, (T0, 90))
    feed.evaluate(T0 + 30 * MIN)
    assert feed.evaluate(T0 + 90 * MIN) == {"reminded"}
    assert bool(feed.state.unconfirmed[0])
