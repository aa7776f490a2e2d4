"""What an alert SMS says, in Italian or English.

An SMS leaves our servers over networks we do not control and lands on phones other people may
read, so it names the patient by initials only and never the diagnosis or protocol: enough to
triage, with a link to the dashboard (behind a login) for everything else.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from telemon.metrics import METRICS

Language = Literal["it", "en"]
Reason = Literal["opened", "escalated", "worsened"]
# What an SMS says: its reason's text, except a reminder after an acknowledgement's snooze
# lapsed, which goes out for an escalation's reason but must not say "not yet acknowledged".
# The stage kinds of ``alerts.notify.stages``, which cannot be imported here (it imports us).
Wording = Literal["opened", "escalated", "worsened", "reminded"]

MAX_SMS_LENGTH = 306  # two concatenated GSM-7 segments of 153 characters


class MessageTooLongError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AlertSummary:
    """The facts an SMS may carry: nothing here identifies the patient or their condition."""

    episode_id: int
    severity: int  # 1 amber, 2 red
    initials: str
    metric: str | None  # a key of telemon.metrics.METRICS
    value: float | None


TEMPLATES: Mapping[Language, Mapping[Wording, str]] = MappingProxyType(
    {
        "it": MappingProxyType(
            {
                "opened": "Telemon: allerta {severity}, paziente {initials}, {finding}. "
                "Apri: {link}",
                "worsened": "Telemon: allerta aggravata a {severity}, paziente {initials}, "
                "{finding}. Apri: {link}",
                "escalated": "Telemon: allerta {severity} non ancora presa in carico, "
                "paziente {initials}, {finding}. Apri: {link}",
                "reminded": "Telemon: allerta {severity} ancora aperta dopo la presa in carico, "
                "paziente {initials}, {finding}. Apri: {link}",
            }
        ),
        "en": MappingProxyType(
            {
                "opened": "Telemon: {severity} alert, patient {initials}, {finding}. Open: {link}",
                "worsened": "Telemon: alert worsened to {severity}, patient {initials}, "
                "{finding}. Open: {link}",
                "escalated": "Telemon: {severity} alert not yet acknowledged, "
                "patient {initials}, {finding}. Open: {link}",
                "reminded": "Telemon: {severity} alert still open after acknowledgement, "
                "patient {initials}, {finding}. Open: {link}",
            }
        ),
    }
)

SEVERITY_WORDS: Mapping[Language, Mapping[int, str]] = MappingProxyType(
    {
        "it": MappingProxyType({1: "GIALLA", 2: "ROSSA"}),
        "en": MappingProxyType({1: "AMBER", 2: "RED"}),
    }
)

# Plain words for the canonical UCUM units; '°' is not in the GSM-7 alphabet.
UNIT_WORDS: Mapping[Language, Mapping[str, str]] = MappingProxyType(
    {
        "it": MappingProxyType(
            {
                "%": "%",
                "/min": "al minuto",
                "mm[Hg]": "mmHg",
                "mg/dL": "mg/dL",
                "Cel": "gradi",
                "kg": "kg",
            }
        ),
        "en": MappingProxyType(
            {
                "%": "%",
                "/min": "per minute",
                "mm[Hg]": "mmHg",
                "mg/dL": "mg/dL",
                "Cel": "degrees C",
                "kg": "kg",
            }
        ),
    }
)

NO_FINDING: Mapping[Language, str] = MappingProxyType(
    {"it": "valori fuori soglia", "en": "readings out of range"}
)

# GSM 03.38: the basic alphabet costs one septet per character, the extension table two.
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

# Latin letters that Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSABLE = str.maketrans("ŁłĐđØøÆæŒœßÞþĦħı", "LlDdOoAaOosTtHhi")


def is_gsm7(text: str) -> bool:
    return all(c in _GSM7_BASIC or c in _GSM7_EXTENSION for c in text)


def gsm7_length(text: str) -> int:
    """Septets the text takes on the air; the length that decides the number of segments."""
    return sum(2 if c in _GSM7_EXTENSION else 1 for c in text)


def sms_segments(text: str) -> int:
    length = gsm7_length(text)
    return 1 if length <= 160 else -(-length // 153)


def initials(given_name: str, family_name: str) -> str:
    """'Maria Luisa', 'De Rossi' -> 'M.D.': one letter per name, folded to plain ASCII."""
    letters = [_first_letter(given_name), _first_letter(family_name)]
    return "".join(f"{letter}." for letter in letters if letter)


def episode_link(public_url: str, episode_id: int) -> str:
    return f"{public_url.rstrip('/')}/episodes/{episode_id}"


def format_value(value: float, language: Language) -> str:
    rounded = round(value, 1)
    text = f"{rounded:.0f}" if rounded == int(rounded) else f"{rounded:.1f}"
    return text.replace(".", ",") if language == "it" else text


def finding(summary: AlertSummary, language: Language) -> str:
    """'saturazione di ossigeno 86%': the metric and its value in words."""
    metric = METRICS.get(summary.metric) if summary.metric else None
    if metric is None or summary.value is None:
        return NO_FINDING[language]
    label = metric.label_it if language == "it" else metric.label_en
    label = label[:1].lower() + label[1:]  # it follows a comma
    unit = UNIT_WORDS[language].get(metric.unit, metric.unit)
    separator = "" if unit == "%" else " "
    return f"{label} {format_value(summary.value, language)}{separator}{unit}"


def render_sms(summary: AlertSummary, wording: Wording, language: Language, public_url: str) -> str:
    """The SMS text; at most two GSM-7 segments, or :class:`MessageTooLongError`."""
    template = TEMPLATES[language][wording]
    fields = {
        "severity": SEVERITY_WORDS[language][summary.severity],
        "initials": summary.initials or "?",
        "link": episode_link(public_url, summary.episode_id),
    }
    # Without the finding the link still gets through when a long public URL leaves no room.
    for finding_text in (finding(summary, language), NO_FINDING[language]):
        text = to_gsm7(template.format(finding=finding_text, **fields))
        if gsm7_length(text) <= MAX_SMS_LENGTH:
            return text
    raise MessageTooLongError(
        f"alert SMS is {gsm7_length(text)} characters, more than {MAX_SMS_LENGTH}: "
        "shorten TELEMON_PUBLIC_URL"
    )


def _first_letter(name: str) -> str:
    for char in _to_ascii(name):
        if char.isalpha():
            return char.upper()
    return ""


def _to_ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSABLE))
    return folded.encode("ascii", "ignore").decode()


def to_gsm7(text: str) -> str:
    # A single character outside GSM-7 would switch the whole SMS to UCS-2 (70 per segment).
    return "".join(c if c in _GSM7_BASIC or c in _GSM7_EXTENSION else _to_ascii(c) for c in text)
