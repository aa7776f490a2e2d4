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


def test_italian_red_alert_names_initials_finding_and_link() -> None:
    text = render_sms(summary(), "opened", "it", PUBLIC_URL)

    assert text == (
        "Telemon: allerta ROSSA, paziente M.R., saturazione di ossigeno 86%. "
        "Apri: https://telemon.example.it/episodes/42"
    )


def test_english_amber_escalation() -> None:
    text = render_sms(
        summary(severity=1, metric="pulse_rate", value=128), "escalated", "en", PUBLIC_URL + "/"
    )

    assert text == (
        "Telemon: AMBER alert not yet acknowledged, patient M.R., pulse rate 128 per minute. "
        "Open: https://telemon.example.it/episodes/42"
    )


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "it",
            "Telemon: allerta GIALLA ancora aperta dopo la presa in carico, paziente M.R., "
            "frequenza cardiaca 128 al minuto. Apri: https://telemon.example.it/episodes/42",
        ),
        (
            "en",
            "Telemon: AMBER alert still open after acknowledgement, patient M.R., "
            "pulse rate 128 per minute. Open: https://telemon.example.it/episodes/42",
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

    assert "temperatura corporea 38,5 gradi" in render_sms(fever, "opened", "it", PUBLIC_URL)
    assert "body temperature 38.5 degrees C" in render_sms(fever, "opened", "en", PUBLIC_URL)


def test_alert_without_a_metric_still_says_something() -> None:
    text = render_sms(summary(metric=None, value=None), "worsened", "it", PUBLIC_URL)

    assert "aggravata a ROSSA" in text
    assert "valori fuori soglia" in text


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
    for language, wording, severity, metric in itertools.product(
        TEMPLATES, WORDINGS, (1, 2), [*METRICS, None]
    ):
        text = render_sms(
            summary(episode_id=episode_id, severity=severity, metric=metric, value=188.75),
            wording,
            language,
            url,
        )
        assert is_gsm7(text), text
        assert gsm7_length(text) <= MAX_SMS_LENGTH
        assert sms_segments(text) <= 2
        assert text.endswith(f"{url}/episodes/{episode_id}")


def test_a_long_public_url_drops_the_finding_before_the_link() -> None:
    url = "https://" + "x" * 180 + ".example.it"

    text = render_sms(summary(), "escalated", "it", url)

    assert text.endswith(f"{url}/episodes/42")
    assert "valori fuori soglia" in text
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
