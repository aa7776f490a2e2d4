"""What a page says about an alert: its reason in the reader's language, never a rule key.

The reason comes from the finding's evidence (``alerts.details['evidence']``); an alert kept
before evidence was, or whose evidence no longer validates, is named by its rule's title, then by
its metric and value, then by a plain word.
"""

from __future__ import annotations

from alerts.protocol import rule_title
from dashboard.bands import protocols
from telemon.findings import Evidence
from telemon.metrics import METRICS, Language
from telemon.reasons import describe, reading

_ALERT = {"it": "Allerta", "en": "Alert"}


def language_of(code: str | None) -> Language:
    return "it" if code == "it" else "en"


def title_of(protocol: str, rule: str, language: str) -> str | None:
    found = protocols().get(protocol)
    if found is None:
        return None
    try:
        return rule_title(found.rule(rule), language)
    except KeyError:
        return None


def protocol_title(protocol: str, language: str) -> str:
    """A care protocol by its title in the reader's language; one no longer shipped, by its key."""
    found = protocols().get(protocol)
    return rule_title(found, language) if found is not None else protocol


def reason_text(
    evidence: Evidence | None,
    protocol: str,
    rule: str,
    metric: str | None,
    value: float | None,
    language: str,
) -> str:
    lang = language_of(language)
    if evidence is not None:
        return describe(evidence, lang)
    title = title_of(protocol, rule, lang)
    if title is not None:
        return title
    if metric is not None and metric in METRICS and value is not None:
        return reading({metric: value}, lang)
    return _ALERT[lang]
