"""A finding's reason in words: every kind, both languages, the SMS form, and no raw codes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telemon.findings import Mean, Missing, Parameter, Score, Threshold, Trend, parse_evidence
from telemon.gsm7 import is_gsm7
from telemon.metrics import GROUPS, METRICS
from telemon.reasons import GENDER_IT, TEMPLATES, describe, duration, number
from tests.evidence_examples import (
    AT,
    BP_SEVERE,
    DAY,
    HOME_BP,
    HOUR,
    REASONS,
    WEIGHT_GAIN,
    news2,
    not_measuring,
    spo2_low,
)


@pytest.mark.parametrize("case", REASONS)
def test_every_kind_reads_as_a_clinician_writes_it(case: str) -> None:
    evidence, italian, english = REASONS[case]

    assert describe(evidence, "it") == italian
    assert describe(evidence, "en") == english


@pytest.mark.parametrize("case", REASONS)
def test_the_reason_survives_the_json_it_is_kept_as(case: str) -> None:
    evidence, italian, _ = REASONS[case]

    assert describe(parse_evidence(evidence.model_dump_json()), "it") == italian


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        (88.0, "it", "88"),
        (92.5, "it", "92,5"),
        (38.46, "it", "38,5"),
        (38.46, "en", "38.5"),
        (2.04, "en", "2"),
        (-0.04, "en", "0"),  # never "-0"
    ],
)
def test_numbers_keep_a_decimal_only_when_it_says_something(
    value: float, language: str, expected: str
) -> None:
    assert number(value, language) == expected  # type: ignore[arg-type]


def test_readings_keep_their_metric_decimals_and_changes_their_first() -> None:
    fever = Threshold(
        rule="fever",
        protocol="p",
        level=1,
        at=AT,
        metric="body_temperature",
        value=38.0,
        op=">=",
        threshold=38.1,
    )
    flat = WEIGHT_GAIN.model_copy(update={"change": 2.0})

    assert describe(fever, "it") == "T 38,0 °C (≥ 38,1)"
    assert describe(flat, "it") == "Peso +2,0 kg in 3 giorni"
    assert describe(flat.model_copy(update={"change": -1.0}), "en") == "Weight -1.0 kg in 3 days"


@pytest.mark.parametrize(
    ("seconds", "italian", "english"),
    [
        (40, "meno di 1 min", "under 1 min"),
        (20 * 60, "20 min", "20 min"),
        (90 * 60, "90 min", "90 min"),
        (2 * HOUR + 30 * 60, "2 h 30 min", "2 h 30 min"),
        (14 * HOUR, "14 h", "14 h"),
        (24 * HOUR, "24 h", "24 h"),
        (50 * HOUR, "2 giorni e 2 h", "2 days 2 h"),
        (3 * DAY, "3 giorni", "3 days"),
        (9 * DAY + 5 * HOUR, "9 giorni", "9 days"),
    ],
)
def test_durations_grow_their_unit(seconds: int, italian: str, english: str) -> None:
    assert (duration(seconds, "it"), duration(seconds, "en")) == (italian, english)


def test_italian_participles_agree_with_the_metric() -> None:
    falling = WEIGHT_GAIN.model_copy(update={"method": "ols", "change": -1.5})
    heavy = Threshold(
        rule="w", protocol="p", level=1, at=AT, metric="body_weight", value=98.2, op=">",
        threshold=95, confirmed_by=3, confirm_span_s=2 * DAY,
    )  # fmt: skip

    assert describe(falling, "it") == "Peso sceso di 1,5 kg in 3 giorni"
    assert describe(heavy, "it") == "Peso 98,2 kg (> 95), confermato da 3 misure in 2 giorni"
    assert describe(falling.model_copy(update={"change": 1.5}), "en") == (
        "Weight rose by 1.5 kg in 3 days"
    )


def test_two_channels_name_the_one_that_crossed() -> None:
    diastolic = BP_SEVERE.model_copy(update={"metric": "diastolic", "value": 112, "threshold": 110})
    only_systolic = BP_SEVERE.model_copy(update={"values": {"systolic": 182}})
    one_mean = HOME_BP.model_copy(update={"thresholds": {"systolic": 150}})
    two_metrics = Threshold(
        rule="x", protocol="p", level=1, at=AT, metric="pulse_rate", value=121,
        values={"spo2": 95, "pulse_rate": 121}, op=">=", threshold=110,
    )  # fmt: skip

    assert describe(diastolic, "it") == "PA 182/112 mmHg (diastolica ≥ 110)"
    assert describe(only_systolic, "en") == "SBP 182 mmHg (≥ 180)"
    assert describe(one_mean, "it") == (
        "Media domiciliare 7 giorni: PA 142/88 mmHg (sistolica ≥ 150)"
    )
    assert describe(two_metrics, "en") == "SpO2 95 %, HR 121 bpm (HR ≥ 110)"


def test_a_score_names_a_single_parameter_scale_2_and_oxygen() -> None:
    single = news2(on="max_parameter", total=4, threshold=3)
    copd = news2(spo2_scale=2, supplemental_oxygen=True, total=8)

    assert describe(single, "it") == (
        "NEWS2 parziale 4: SpO2 3, FC 2, T 1 (3 parametri su 5), un parametro a 3"
    )
    assert describe(copd, "en") == (
        "Partial NEWS2 8: SpO2 3 (scale 2), HR 2, T 1 (3 of 5 parameters, on oxygen)"
    )


def test_missing_readings_name_what_the_patient_measures() -> None:
    bp = not_measuring(metric="systolic", hours=200.0, expected_every_s=7 * DAY)
    weight = not_measuring(metric="body_weight", hours=50.0, expected_every_s=None)

    assert describe(bp, "it") == "Nessuna misura di PA da 8 giorni (attesa ogni 7 giorni)"
    assert describe(weight, "it") == "Nessuna misura di peso da 2 giorni e 2 h"
    assert describe(weight, "en") == "No weight reading for 2 days 2 h"


def test_the_sms_form_is_gsm7_and_says_symbols_in_words() -> None:
    fever = Threshold(
        rule="fever", protocol="p", level=1, at=AT, metric="body_temperature", value=38.46,
        op=">=", threshold=38.1, confirmed_by=2, confirm_span_s=HOUR,
    )  # fmt: skip

    assert describe(fever, "it", sms=True) == (
        "T 38,5 gradi (>= 38,1), confermata da 2 misure in 60 min"
    )
    assert describe(fever, "en", sms=True, short=True) == "T 38.5 degrees C (>= 38.1)"
    assert describe(spo2_low(), "it", sms=True) == (
        "SpO2 88 % (<= 92 %), confermata da 2 misure in 20 min"
    )


def test_every_template_and_gender_is_there_in_both_languages() -> None:
    assert set(TEMPLATES["it"]) == set(TEMPLATES["en"])
    assert set(GENDER_IT) == set(METRICS) | {g.key for g in GROUPS}


# Anything that looks like a code a program reads, not a word a clinician reads.
_RAW = re.compile(
    r"[a-z0-9]+_[a-z0-9_]+"  # a rule or metric key: spo2_low, body_weight
    r"|\b[a-z]+\.[a-z_]+\b"  # an i18n key: outcome.auto_resolved
    r"|\b[a-z0-9]+:(?:red|amber)\b"  # an old reason key: spo2:red
    r"|mm\[Hg\]|\bCel\b|\[degF\]|(?<![A-Za-z])/min"  # UCUM codes
    r"|[{}]"  # a template field left unfilled
)

_metrics = st.sampled_from(sorted(METRICS))
_ops = st.sampled_from(["<", "<=", ">", ">="])
_values = st.floats(min_value=-500, max_value=500, allow_nan=False)
_seconds = st.integers(min_value=0, max_value=60 * DAY)
_base = {"rule": st.just("spo2_low_override"), "protocol": st.just("covid19_home_oximetry")}


def _common() -> dict:
    return _base | {"level": st.sampled_from([1, 2]), "at": st.just(AT)}


_evidence = st.one_of(
    st.builds(
        Threshold, **_common(), metric=_metrics, value=_values, op=_ops, threshold=_values,
        values=st.dictionaries(_metrics, _values, max_size=3),
        confirmed_by=st.integers(1, 5), confirm_span_s=_seconds, unconfirmed=st.booleans(),
        confirm_timeout_s=st.none() | _seconds,
    ),
    st.builds(
        Trend, **_common(), metric=_metrics, change=_values, window_s=_seconds,
        method=st.sampled_from(["ols", "theil_sen", "delta"]), points=st.integers(2, 30),
        span_s=_seconds, op=_ops, threshold=_values,
    ),
    st.builds(
        Mean, **_common(), metric=_metrics,
        means=st.dictionaries(_metrics, _values, min_size=1, max_size=3), op=_ops,
        thresholds=st.dictionaries(_metrics, _values, max_size=3),
        days=st.integers(1, 60), days_measured=st.integers(1, 60),
    ),
    st.builds(
        Score, **_common(), total=st.integers(0, 20),
        on=st.sampled_from(["total", "max_parameter"]), op=_ops, threshold=st.integers(0, 20),
        of=st.integers(1, 5),
        min_parameters=st.integers(1, 5), spo2_scale=st.sampled_from([1, 2]),
        supplemental_oxygen=st.booleans(),
        parameters=st.lists(
            st.builds(
                Parameter, metric=_metrics, value=_values, points=st.integers(0, 3),
                age_s=_seconds,
            ),
            max_size=5,
        ).map(tuple),
    ),
    st.builds(
        Missing, **_common(), metric=_metrics,
        hours=st.none() | st.floats(min_value=0, max_value=2000), op=_ops,
        threshold=st.floats(min_value=0, max_value=200), expected_every_s=st.none() | _seconds,
    ),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(evidence=_evidence, language=st.sampled_from(["it", "en"]), sms=st.booleans())
def test_no_reason_shows_a_key_or_a_code(evidence, language, sms) -> None:
    for short in (False, True):
        text = describe(evidence, language, sms=sms, short=short)

        assert text and text[0].isupper(), text
        assert not _RAW.search(text), text
        assert evidence.rule not in text
        if sms:
            assert is_gsm7(text), text
