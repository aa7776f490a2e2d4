"""What an alert SMS says, in Italian or English.

An SMS leaves our servers over networks we do not control and lands on phones other people may
read, so it names the patient by initials only and never the diagnosis or protocol: enough to
triage, with a link to the dashboard (behind a login) for everything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from telemon.findings import Evidence
from telemon.gsm7 import gsm7_length, is_gsm7, sms_segments, to_ascii, to_gsm7
from telemon.metrics import METRICS, Language
from telemon.reasons import describe, reading, to_sms

__all__ = [
    "MAX_SMS_LENGTH",
    "TEMPLATES",
    "AlertSummary",
    "Language",
    "MessageTooLongError",
    "Wording",
    "gsm7_length",
    "initials",
    "is_gsm7",
    "render_sms",
    "sms_segments",
]

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
    # What the finding rests on (alerts.details['evidence']); None for rows from before it was
    # kept, which then say the metric and its value.
    evidence: Evidence | None = None


TEMPLATES: Mapping[Language, Mapping[Wording, str]] = MappingProxyType(
    {
        "it": MappingProxyType(
            {
                "opened": "Telemon: allerta {severity}, paziente {initials} {finding}. "
                "Apri: {link}",
                "worsened": "Telemon: allerta aggravata a {severity}, paziente {initials} "
                "{finding}. Apri: {link}",
                "escalated": "Telemon: allerta {severity} non ancora presa in carico, "
                "paziente {initials} {finding}. Apri: {link}",
                "reminded": "Telemon: allerta {severity} ancora aperta dopo la presa in carico, "
                "paziente {initials} {finding}. Apri: {link}",
            }
        ),
        "en": MappingProxyType(
            {
                "opened": "Telemon: {severity} alert, patient {initials} {finding}. Open: {link}",
                "worsened": "Telemon: alert worsened to {severity}, patient {initials} "
                "{finding}. Open: {link}",
                "escalated": "Telemon: {severity} alert not yet acknowledged, "
                "patient {initials} {finding}. Open: {link}",
                "reminded": "Telemon: {severity} alert still open after acknowledgement, "
                "patient {initials} {finding}. Open: {link}",
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

NO_FINDING: Mapping[Language, str] = MappingProxyType(
    {"it": "Valori fuori soglia", "en": "Readings out of range"}
)


def initials(given_name: str, family_name: str) -> str:
    """'Maria Luisa', 'De Rossi' -> 'M.D.': one letter per name, folded to plain ASCII."""
    letters = [_first_letter(given_name), _first_letter(family_name)]
    return "".join(f"{letter}." for letter in letters if letter)


def episode_link(public_url: str, episode_id: int) -> str:
    return f"{public_url.rstrip('/')}/episodes/{episode_id}"


def finding(summary: AlertSummary, language: Language, *, short: bool = False) -> str:
    """The reason in words, as the pages say it, in GSM-7: 'SpO2 88 % (<= 92 %), confermata ...'.

    ``short`` leaves out how the finding was confirmed, for an SMS with no room for it.
    """
    if summary.evidence is not None:
        return describe(summary.evidence, language, sms=True, short=short)
    if summary.metric is not None and summary.metric in METRICS and summary.value is not None:
        return to_sms(reading({summary.metric: summary.value}, language), language)
    return NO_FINDING[language]


def render_sms(summary: AlertSummary, wording: Wording, language: Language, public_url: str) -> str:
    """The SMS text; at most two GSM-7 segments, or :class:`MessageTooLongError`."""
    template = TEMPLATES[language][wording]
    fields = {
        "severity": SEVERITY_WORDS[language][summary.severity],
        "initials": summary.initials or "?",
        "link": episode_link(public_url, summary.episode_id),
    }
    # The full reason, then a shorter one, then none: the link gets through whatever the room.
    findings = (finding(summary, language), finding(summary, language, short=True))
    for finding_text in (*findings, NO_FINDING[language]):
        text = to_gsm7(template.format(finding=finding_text, **fields))
        if gsm7_length(text) <= MAX_SMS_LENGTH:
            return text
    raise MessageTooLongError(
        f"alert SMS is {gsm7_length(text)} characters, more than {MAX_SMS_LENGTH}: "
        "shorten TELEMON_PUBLIC_URL"
    )


def _first_letter(name: str) -> str:
    for char in to_ascii(name):
        if char.isalpha():
            return char.upper()
    return ""
