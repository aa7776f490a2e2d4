"""The shipped protocols' clinical rules at their boundaries, replayed pass by pass as the engine
runs them (after each reading and at every tick), the vectorised evaluator and debouncer checked
against the per-patient reference at every pass."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import pytest

from alerts.debounce import DebounceState, Transitions, step
from alerts.evaluate import evaluate
from alerts.protocol import Confirm, Protocol, load_protocols
from alerts.tables import compile_protocol
from alerts.windows import windows_from_patients
from bench._reference import PatientAlert, evaluate_patient, step_patient
from telemon.metrics import METRICS

MIN, H, D = 60, 3600, 86400
T0 = 1_767_225_600 + 10 * D + 6 * H  # 2026-01-11 06:00 UTC, 07:00 in Rome
PROTOCOLS = load_protocols()
EVENTS = tuple(f.name for f in fields(Transitions))


@dataclass(frozen=True, slots=True)
class Pass:
    now: int
    events: frozenset[str]
    level: int  # the alert's level after the pass
    value: float  # the rule's value at the pass
    unconfirmed: bool


def replay(
    protocol: Protocol,
    rule_key: str,
    readings: Mapping[str, Sequence[tuple[int, float]]],
    until: int,
    tick: int = 10 * MIN,
) -> list[Pass]:
    """Passes a minute after each reading and every ``tick`` up to ``until``."""
    times = {t + MIN for series in readings.values() for t, _ in series}
    start = min(t for series in readings.values() for t, _ in series)
    times |= set(range(start, until + 1, tick))
    compiled = compile_protocol(protocol, 1)
    rule = compiled.rule(rule_key)
    state, alert = DebounceState.initial(1), PatientAlert()
    log = []
    for now in sorted(times):
        seen = {m: [(t, v, True) for t, v in series if t <= now] for m, series in readings.items()}
        result = evaluate(compiled, windows_from_patients([seen], list(METRICS)), now)[rule_key]
        state, changes = step(state, result, rule, now)
        got = frozenset(n for n in EVENTS if getattr(changes, n)[0])
        outcome = evaluate_patient(protocol, seen, now)[rule_key]
        assert (outcome.level, outcome.at) == (int(result.level[0]), int(result.at[0]))
        assert got == step_patient(alert, outcome, protocol.rule(rule_key), now), now
        log.append(
            Pass(
                now,
                got,
                int(state.level[0]),
                float(result.value[0]),
                bool(state.unconfirmed[0]),
            )
        )
    return log


def opened(log: list[Pass]) -> list[Pass]:
    return [p for p in log if "opened" in p.events]


def daily(values: Sequence[float], start: int = T0, every: int = D) -> list[tuple[int, float]]:
    return [(start + i * every, v) for i, v in enumerate(values)]


# Heart failure: "more than 2 kg in 3 days" (ESC/HFA).

HF = PROTOCOLS["heart_failure"]


def test_daily_weighing_gaining_2_1_kg_over_three_days_opens():
    # 0.7 kg a day: no two consecutive days are 2 kg apart, today and three mornings ago are.
    weights = daily([80.0, 80.7, 81.4, 82.1])
    log = replay(HF, "weight_gain", {"body_weight": weights}, until=T0 + 3 * D + 3 * H)
    [first] = opened(log)
    # Nobody re-weighed within the hour: it opens then, unconfirmed; the value is today's weight
    # minus that of three mornings earlier.
    assert first.now == T0 + 3 * D + H and first.unconfirmed
    assert (first.level, first.value) == (1, pytest.approx(2.1))


def test_daily_weighing_at_drifting_times_compares_with_three_mornings_earlier():
    times = [T0, T0 + D - 40 * MIN, T0 + 2 * D + 30 * MIN, T0 + 3 * D + 2 * H]  # 74 h apart
    weights = list(zip(times, [80.0, 80.7, 81.4, 82.1], strict=True))
    log = replay(HF, "weight_gain", {"body_weight": weights}, until=T0 + 3 * D + 4 * H)
    assert [p.value for p in opened(log)] == [pytest.approx(2.1)]


def test_two_weighings_exactly_three_days_apart_are_compared():
    weights = [(T0, 80.0), (T0 + 3 * D, 82.1)]
    log = replay(HF, "weight_gain", {"body_weight": weights}, until=T0 + 3 * D + 2 * H)
    [first] = opened(log)
    assert (first.level, first.value) == (1, pytest.approx(2.1))
    # 3 days and 1 minute apart, evaluated a minute after the second: compared too.
    weights = [(T0, 80.0), (T0 + 3 * D + MIN, 82.1)]
    log = replay(HF, "weight_gain", {"body_weight": weights}, until=T0 + 3 * D + 2 * H)
    assert [p.value for p in opened(log)] == [pytest.approx(2.1)]


def test_the_next_weighing_confirms_a_gain_that_still_stands():
    # Compared with three mornings earlier, the next day's change is 1.7 kg: not more than 2, but
    # within the clear margin (0.5 kg) of it, so the gain stands and is confirmed.
    weights = daily([80.0, 80.7, 81.4, 82.1, 82.4])
    log = replay(HF, "weight_gain", {"body_weight": weights}, until=T0 + 4 * D + H)
    changes = [p.events - {"reminded"} for p in log if p.events - {"reminded"}]
    assert changes == [{"opened", "opened_unconfirmed"}, {"confirmed"}]
    assert (log[-1].level, log[-1].unconfirmed) == (1, False)


def test_a_weighing_four_days_earlier_is_not_compared():
    weights = [(T0, 78.0), (T0 + 4 * D, 80.5)]
    log = replay(HF, "weight_gain", {"body_weight": weights}, until=T0 + 4 * D + 2 * H)
    assert opened(log) == [] and log[-1].level == 0


@pytest.mark.parametrize(
    ("before", "after", "level"),
    [(62.4, 64.4, 0), (80.3, 82.3, 0), (80.3, 82.4, 1), (80.0, 81.9, 0), (62.3, 64.4, 1)],
)
def test_the_2_kg_boundary_is_more_than_2_kg(one, before, after, level):
    # 64.4 - 62.4 is 2.000000000000007 in floating point: still exactly 2 kg, not more.
    now = T0 + 3 * D + MIN
    outcome = one(
        "heart_failure", now=now, body_weight=[(T0, before, True), (T0 + 3 * D, after, True)]
    )
    assert outcome["weight_gain"].level == level
    assert outcome["weight_gain"].value == round(after - before, 6)


def test_a_wrong_weighing_repeated_within_the_hour_opens_nothing():
    # 83.5 is a wrong weighing (a bag in hand); the repeat 10 minutes later reads 80.6.
    weights = [*daily([80.4, 80.5, 80.3]), (T0 + 3 * D, 83.5), (T0 + 3 * D + 10 * MIN, 80.6)]
    log = replay(HF, "weight_gain", {"body_weight": weights}, until=T0 + 4 * D)
    assert opened(log) == []


# Trends that one outlying reading must not move.

COVID = PROTOCOLS["covid19_home_oximetry"]


def steady_spo2(days: int, start: int = T0) -> list[tuple[int, float]]:
    """96-97 %, three readings a day (07:00, 13:00, 21:00 local)."""
    return [(start + d * D + h * H, 96.0 + (d + h) % 2) for d in range(days) for h in (0, 6, 14)]


def test_a_single_low_reading_re_measured_five_minutes_later_opens_no_fall():
    # The case: 84 % among 96-97 %, a 97 % five minutes later. A least-squares fit
    # reads it as a fall of about 9 points, which stayed open six hours.
    outlier = T0 + 2 * D + 2 * H
    spo2 = [*steady_spo2(3), (outlier, 84.0), (outlier + 5 * MIN, 97.0)]
    spo2.sort()
    log = replay(COVID, "spo2_falling", {"spo2": spo2}, until=outlier + 8 * H)
    assert opened(log) == []
    assert all(p.level == 0 for p in log)
    # What the least-squares fit made of it, the same passes, confirmation by one value.
    rule = COVID.rule("spo2_falling")
    ols = rule.model_copy(update={"method": "ols", "remeasure": 0, "confirm": Confirm()})
    old = COVID.model_copy(update={"rules": (ols,)})
    log = replay(old, "spo2_falling", {"spo2": spo2}, until=outlier + 8 * H)
    [fall] = opened(log)
    assert outlier <= fall.now <= outlier + MIN
    assert min(p.value for p in log if not math.isnan(p.value)) < -9
    assert next(p.level for p in log if p.now >= outlier + 6 * H) == 1  # still open 6 h later


def test_a_single_low_reading_not_re_measured_waits_for_the_next_reading():
    outlier = T0 + 2 * D + 2 * H
    spo2 = sorted([*steady_spo2(3), (outlier, 84.0)])
    log = replay(COVID, "spo2_falling", {"spo2": spo2}, until=outlier + 8 * H)
    # The fit with three readings of the day before reads a fall; the next reading, 4 h later,
    # does not, and nothing has opened.
    assert any(p.value <= -3 for p in log)
    assert opened(log) == []


@pytest.mark.parametrize("per_day", [3, 4])
def test_a_genuine_fall_from_96_to_92_over_24_hours_opens_amber(per_day):
    every = D // per_day
    start = T0 + 2 * D
    fall = [(start + i * every, 96.0 - 4.0 * i / per_day) for i in range(per_day + 1)]
    spo2 = sorted([*steady_spo2(2), *fall])
    log = replay(COVID, "spo2_falling", {"spo2": spo2}, until=start + D + H)
    first = opened(log)[0]
    assert first.level == 1
    # Within a measurement interval of the fall reaching 3 points.
    assert first.now <= start + D
    assert log[-1].level == 1 and not log[-1].unconfirmed


def test_copd_fall_needs_more_than_one_outlier():
    copd = PROTOCOLS["copd"]
    base = [(T0 + d * D + h * H, 90.0 + (d + h) % 2) for d in range(3) for h in (0, 8, 14)]
    outlier = T0 + 2 * D + 2 * H
    spo2 = sorted([*base, (outlier, 80.0), (outlier + 5 * MIN, 90.0)])
    assert opened(replay(copd, "spo2_falling", {"spo2": spo2}, until=outlier + 8 * H)) == []


# Not measuring: nothing is due before the first reading was.


@pytest.mark.parametrize(
    ("since_enrolment", "level"),
    # CO@h: a reading every 8 h, 4 h grace: nothing is due before 12 h; then amber once two
    # sessions are missing (more than 20 h), red after 36 h.
    [(1 * MIN, -1), (11 * H + 59 * MIN, -1), (12 * H, 0), (20 * H, 0), (20 * H + MIN, 1),
     (36 * H, 1), (36 * H + MIN, 2)],
)  # fmt: skip
def test_a_new_patient_is_not_measuring_only_once_the_first_reading_was_due(
    one, since_enrolment, level
):
    now = T0 + since_enrolment
    outcome = one("covid19_home_oximetry", now=now, started_at=T0)["spo2_not_measuring"]
    assert outcome.level == level
    if level >= 0:
        assert outcome.value == pytest.approx(since_enrolment / H)  # counted from enrolment


def test_not_measuring_counts_from_the_newest_reading_once_one_came(one):
    readings = [(T0 + 2 * H, 97.0, True)]
    at = {
        h: one("covid19_home_oximetry", now=T0 + h * H, started_at=T0, spo2=readings)
        for h in (21, 23)
    }
    assert [at[h]["spo2_not_measuring"].level for h in (21, 23)] == [0, 1]
    assert at[23]["spo2_not_measuring"].value == pytest.approx(21)


def test_readings_before_the_enrolment_count_from_the_enrolment(one):
    # Re-enrolled today after an earlier course: last week's reading does not make it late.
    readings = [(T0 - 7 * D, 97.0, True)]
    outcome = one("covid19_home_oximetry", now=T0 + 21 * H, started_at=T0, spo2=readings)
    assert (outcome["spo2_not_measuring"].level, outcome["spo2_not_measuring"].value) == (1, 21)
    assert (
        one("covid19_home_oximetry", now=T0 + H, started_at=T0, spo2=readings)[
            "spo2_not_measuring"
        ].level
        == -1
    )


def test_without_a_known_enrolment_no_reading_is_red_as_before(one):
    assert one("covid19_home_oximetry", now=T0)["spo2_not_measuring"].level == 2


@pytest.mark.parametrize(
    ("protocol", "rule", "due"),
    [("copd", "spo2_not_measuring", 36 * H), ("heart_failure", "weight_not_measuring", 36 * H),
     ("diabetes", "glucose_not_measuring", 36 * H), ("hypertension", "bp_not_measuring", 8 * D)],
)  # fmt: skip
def test_every_protocol_waits_for_its_first_reading(one, protocol, rule, due):
    assert one(protocol, now=T0 + due - 1, started_at=T0)[rule].level == -1
    assert one(protocol, now=T0 + due, started_at=T0)[rule].level >= 0


# Partial NEWS2: fewer parameters than the protocol's minimum is "not scored", never a score.


@pytest.mark.parametrize(
    ("systolic_age", "level", "value"),
    # SpO2 91 (3 points) and pulse 131 (3 points) an hour ago; systolic 120 (0 points) at the
    # 6 h lookback's edge. Two of five parameters: not scored, however high their points.
    [(6 * H, -1, math.nan), (6 * H - 1, 1, 6.0)],
)
def test_news2_needs_three_of_five_parameters_within_the_lookback(one, systolic_age, level, value):
    now = T0
    outcome = one(
        "covid19_home_oximetry",
        now=now,
        spo2=[(now - H, 91.0, True)],
        pulse_rate=[(now - H, 131.0, True)],
        systolic=[(now - systolic_age, 120.0, True)],
    )["news2_partial"]
    assert outcome.level == level
    if level < 0:
        assert (math.isnan(outcome.value), outcome.reason) == (True, "no_data")
    else:
        assert outcome.value == value


def test_a_partial_set_neither_clears_nor_opens_news2():
    opened_at = T0
    readings = {
        # A full set scoring 6 opens amber; seven hours later only two parameters, both scoring
        # 0: not a score of 0, the alert stays; then a full set scoring 0 clears it.
        "spo2": [(opened_at, 91.0), (opened_at + 7 * H, 97.0), (opened_at + 9 * H, 97.0)],
        "pulse_rate": [(opened_at, 131.0), (opened_at + 7 * H, 80.0), (opened_at + 9 * H, 78.0)],
        "systolic": [(opened_at, 120.0), (opened_at + 9 * H, 125.0)],
    }
    log = replay(COVID, "news2_partial", readings, until=opened_at + 10 * H)
    [first] = opened(log)
    # No second set came to confirm it: open, unconfirmed, once the confirm timeout (30 min) ran.
    assert first.now - opened_at <= 31 * MIN and first.unconfirmed
    partial = [p for p in log if opened_at + 7 * H < p.now < opened_at + 9 * H]
    assert partial and all(p.level == 1 and math.isnan(p.value) for p in partial)
    assert not any("cleared" in p.events for p in partial)
    [cleared] = [p.now for p in log if "cleared" in p.events]
    assert 0 <= cleared - (opened_at + 9 * H) <= MIN


def test_two_parameters_scoring_high_open_nothing():
    readings = {"spo2": [(T0, 88.0)], "pulse_rate": [(T0, 140.0)]}  # 3 + 3 points, 2 of 5
    log = replay(COVID, "news2_partial", readings, until=T0 + 6 * H)
    assert opened(log) == [] and all(p.level == 0 for p in log)
