"""SMS texts: initials and link, never the name; Italian and English; two segments at most."""

from __future__ import annotations

import itertools
from typing import get_args

import pytest

from alerts.notify.texts import (
    MAX_SMS_LENGTH,
    TEMPLATES,
    AlertSummary,
    MessageTooLongError,
    Wording,
    gsm7_length,
    initials,
    is_gsm7,
    render_sms,
    sms_segments,
)
from telemon.metrics import METRICS
from tests.evidence_examples import REASONS, spo2_low

PUBLIC_URL = "https://telemon.example.it"
WORDINGS = get_args(Wording)


def summary(**changes: object) -> AlertSummary:
    fields: dict[str, object] = {
        "episode_id": 42,
        "severity": 2,
        "initials": initials("Maria", "Rossi"),
        "metric": "spo2",
        "value": 86.0,
    }
    return AlertSummary(**(fields | changes))  # type: ignore[arg-type]


def test_italian_red_alert_gives_initials_the_reason_in_words_and_link() -> None:
    text = render_sms(summary(evidence=spo2_low()), "opened", "it", PUBLIC_URL)

    assert text == (
        "Telemon: allerta ROSSA, paziente M.R. SpO2 88 % (<= 92 %), confermata da 2 misure "
        "in 20 min. Apri: https://telemon.example.it/episodes/42"
    )


def test_english_amber_escalation_of_an_alert_kept_before_its_evidence() -> None:
    text = render_sms(
        summary(severity=1, metric="pulse_rate", value=128), "escalated", "en", PUBLIC_URL + "/"
    )

    assert text == (
        "Telemon: AMBER alert not yet acknowledged, patient M.R. HR 128 bpm. "
        "Open: https://telemon.example.it/episodes/42"
    )


@pytest.mark.parametrize("case", REASONS)
@pytest.mark.parametrize("language", ["it", "en"])
def test_every_kind_of_reason_goes_out_as_the_pages_say_it(case: str, language: str) -> None:
    evidence, italian, english = REASONS[case]
    reason = {"it": italian, "en": english}[language]
    sms_form = reason.replace("≤", "<=").replace("≥", ">=")

    text = render_sms(summary(evidence=evidence), "opened", language, PUBLIC_URL)  # type: ignore[arg-type]

    assert f". {sms_form}. " in text
    assert is_gsm7(text) and sms_segments(text) <= 2


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "it",
            "Telemon: allerta GIALLA ancora aperta dopo la presa in carico, paziente M.R. "
            "FC 128 bpm. Apri: https://telemon.example.it/episodes/42",
        ),
        (
            "en",
            "Telemon: AMBER alert still open after acknowledgement, patient M.R. "
            "HR 128 bpm. Open: https://telemon.example.it/episodes/42",
        ),
    ],
)
def test_a_reminder_after_a_lapsed_snooze_does_not_deny_the_acknowledgement(
    language: str, expected: str
) -> None:
    text = render_sms(
        summary(severity=1, metric="pulse_rate", value=128),
        "reminded",
        language,  # type: ignore[arg-type]
        PUBLIC_URL,
    )
    escalation = render_sms(summary(), "escalated", language, PUBLIC_URL)  # type: ignore[arg-type]

    assert text == expected
    assert "non ancora" in escalation or "not yet" in escalation
    assert "non ancora" not in text and "not yet" not in text


def test_values_read_as_words_with_the_language_decimal_mark() -> None:
    fever = summary(metric="body_temperature", value=38.46)

    assert "M.R. T 38,5 gradi. Apri" in render_sms(fever, "opened", "it", PUBLIC_URL)
    assert "M.R. T 38.5 degrees C. Open" in render_sms(fever, "opened", "en", PUBLIC_URL)


def test_alert_without_a_metric_still_says_something() -> None:
    text = render_sms(summary(metric=None, value=None), "worsened", "it", PUBLIC_URL)

    assert "aggravata a ROSSA" in text
    assert "Valori fuori soglia" in text


@pytest.mark.parametrize(
    ("given", "family", "expected"),
    [
        ("Maria", "Rossi", "M.R."),
        ("Maria Luisa", "De Rossi", "M.D."),
        ("Łucja", "Żak", "L.Z."),
        ("Ébe", "d'Ònofrio", "E.D."),
        ("", "Rossi", "R."),
    ],
)
def test_initials(given: str, family: str, expected: str) -> None:
    assert initials(given, family) == expected
    assert is_gsm7(expected)


def test_the_full_name_never_appears() -> None:
    for language, templates in TEMPLATES.items():
        for wording in templates:
            text = render_sms(summary(), wording, language, PUBLIC_URL)
            assert "Maria" not in text
            assert "Rossi" not in text


def test_every_template_fits_two_gsm7_segments() -> None:
    # A long but plausible public address of a cooperative's dashboard.
    url = "https://telemonitoraggio.cooperativa-medici-lombardia.example.it/dashboard"
    episode_id = 9_999_999_999
    evidence = [None, *(e for e, _, _ in REASONS.values())]
    for language, wording, severity, metric, finding in itertools.product(
        TEMPLATES, WORDINGS, (1, 2), [*METRICS, None], evidence
    ):
        text = render_sms(
            summary(
                episode_id=episode_id,
                severity=severity,
                metric=metric,
                value=188.75,
                evidence=finding,
            ),
            wording,
            language,
            url,
        )
        assert is_gsm7(text), text
        assert gsm7_length(text) <= MAX_SMS_LENGTH
        assert sms_segments(text) <= 2
        assert text.endswith(f"{url}/episodes/{episode_id}")


def test_a_long_public_url_shortens_then_drops_the_finding_before_the_link() -> None:
    unconfirmed, _, _ = REASONS["unconfirmed"]
    texts = {
        length: render_sms(
            summary(evidence=unconfirmed), "escalated", "it", "https://" + "x" * length + ".it"
        )
        for length in (80, 140, 180)
    }

    assert "non confermata (nessuna seconda misura entro 30 min). Apri" in texts[80]
    assert "M.R. SpO2 88 % (<= 92 %), non confermata. Apri" in texts[140]
    assert "M.R. Valori fuori soglia. Apri" in texts[180]
    for length, text in texts.items():
        assert text.endswith("x" * length + ".it/episodes/42")
        assert gsm7_length(text) <= MAX_SMS_LENGTH


def test_an_absurd_public_url_is_refused() -> None:
    with pytest.raises(MessageTooLongError, match="TELEMON_PUBLIC_URL"):
        render_sms(summary(), "opened", "it", "https://" + "x" * 400)


def test_segments_count_gsm7_septets() -> None:
    assert sms_segments("a" * 160) == 1
    assert sms_segments("a" * 161) == 2
    assert sms_segments("a" * 306) == 2
    assert sms_segments("€" * 80) == 1  # extension table: two septets each
    assert not is_gsm7("°")
