"""A finding's reason in words, in Italian or English, from its evidence (``telemon.findings``).

One sentence per finding, the same in the nurse's queue, on the alert page, in the API and, folded
into GSM-7, in the SMS: 'SpO2 88 % (≤ 92 %), confermata da 2 misure in 20 min'. Values read as a
clinician writes them (short labels, display units, the language's decimal mark); the templates
are data, one per kind, case and language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from telemon.findings import Evidence, Mean, Missing, Score, Threshold, Trend
from telemon.gsm7 import to_gsm7
from telemon.metrics import METRICS, Language, group_of

__all__ = ["Language", "describe", "duration", "number", "reading", "to_sms", "value"]

Gender = Literal["f", "m"]


@dataclass(frozen=True, slots=True)
class _Template:
    full: str
    short: str  # for an SMS that has no room for the full sentence


def _t(full: str, short: str | None = None) -> _Template:
    return _Template(full, short if short is not None else full)


# Keyed by evidence kind, then by the case the evidence is in (see the ``_case_*`` functions).
TEMPLATES: Mapping[Language, Mapping[str, _Template]] = MappingProxyType(
    {
        "it": MappingProxyType(
            {
                "threshold": _t("{reading} ({limit})"),
                "threshold.confirmed": _t(
                    "{reading} ({limit}), {confirmed} da {count} misure in {span}",
                    "{reading} ({limit})",
                ),
                "threshold.unconfirmed": _t(
                    "{reading} ({limit}), {unconfirmed} (nessuna seconda misura entro {timeout})",
                    "{reading} ({limit}), {unconfirmed}",
                ),
                "threshold.unconfirmed_untimed": _t(
                    "{reading} ({limit}), {unconfirmed}", "{reading} ({limit})"
                ),
                "trend.fell": _t("{label} {fell} di {change} {unit} in {window}"),
                "trend.rose": _t("{label} {rose} di {change} {unit} in {window}"),
                "trend.delta": _t("{label} {signed} {unit} in {window}"),
                "aggregate": _t(
                    "Media domiciliare {days}: {reading} ({limit})", "Media {days}: {reading}"
                ),
                "score.total": _t(
                    "NEWS2 parziale {total}: {parameters} ({present} parametri su {of}{oxygen})",
                    "NEWS2 parziale {total}",
                ),
                "score.max_parameter": _t(
                    "NEWS2 parziale {total}: {parameters} ({present} parametri su {of}{oxygen}), "
                    "un parametro a {threshold}",
                    "NEWS2 parziale {total}, un parametro a {threshold}",
                ),
                "missing_data": _t("Nessuna misura di {label} da {since}"),
                "missing_data.expected": _t(
                    "Nessuna misura di {label} da {since} (attesa ogni {every})",
                    "Nessuna misura di {label} da {since}",
                ),
                "missing_data.never": _t(
                    "Nessuna misura di {label} dall'inizio del monitoraggio",
                    "Nessuna misura di {label}",
                ),
            }
        ),
        "en": MappingProxyType(
            {
                "threshold": _t("{reading} ({limit})"),
                "threshold.confirmed": _t(
                    "{reading} ({limit}), {confirmed} by {count} readings in {span}",
                    "{reading} ({limit})",
                ),
                "threshold.unconfirmed": _t(
                    "{reading} ({limit}), {unconfirmed} (no second reading within {timeout})",
                    "{reading} ({limit}), {unconfirmed}",
                ),
                "threshold.unconfirmed_untimed": _t(
                    "{reading} ({limit}), {unconfirmed}", "{reading} ({limit})"
                ),
                "trend.fell": _t("{label} {fell} by {change} {unit} in {window}"),
                "trend.rose": _t("{label} {rose} by {change} {unit} in {window}"),
                "trend.delta": _t("{label} {signed} {unit} in {window}"),
                "aggregate": _t(
                    "Home mean over {days}: {reading} ({limit})", "Mean over {days}: {reading}"
                ),
                "score.total": _t(
                    "Partial NEWS2 {total}: {parameters} ({present} of {of} parameters{oxygen})",
                    "Partial NEWS2 {total}",
                ),
                "score.max_parameter": _t(
                    "Partial NEWS2 {total}: {parameters} ({present} of {of} parameters{oxygen}), "
                    "one parameter at {threshold}",
                    "Partial NEWS2 {total}, one parameter at {threshold}",
                ),
                "missing_data": _t("No {label} reading for {since}"),
                "missing_data.expected": _t(
                    "No {label} reading for {since} (expected every {every})",
                    "No {label} reading for {since}",
                ),
                "missing_data.never": _t(
                    "No {label} reading since monitoring began", "No {label} reading"
                ),
            }
        ),
    }
)

# Italian participles agree with what they describe: "SpO2 scesa", "peso sceso".
GENDER_IT: Mapping[str, Gender] = MappingProxyType(
    {
        "spo2": "f",  # la saturazione
        "pulse_rate": "f",
        "systolic": "f",
        "diastolic": "f",
        "mean_arterial_pressure": "f",
        "glucose": "f",
        "body_temperature": "f",
        "body_weight": "m",
        "respiratory_rate": "f",
        "blood_pressure": "f",
    }
)

AGREEING: Mapping[Language, Mapping[str, Mapping[Gender, str]]] = MappingProxyType(
    {
        "it": MappingProxyType(
            {
                "confirmed": MappingProxyType({"f": "confermata", "m": "confermato"}),
                "unconfirmed": MappingProxyType({"f": "non confermata", "m": "non confermato"}),
                "fell": MappingProxyType({"f": "scesa", "m": "sceso"}),
                "rose": MappingProxyType({"f": "salita", "m": "salito"}),
            }
        ),
        "en": MappingProxyType(
            {
                "confirmed": MappingProxyType({"f": "confirmed", "m": "confirmed"}),
                "unconfirmed": MappingProxyType({"f": "unconfirmed", "m": "unconfirmed"}),
                "fell": MappingProxyType({"f": "fell", "m": "fell"}),
                "rose": MappingProxyType({"f": "rose", "m": "rose"}),
            }
        ),
    }
)

# A change of a percentage is in percentage points, not per cent.
CHANGE_UNITS: Mapping[Language, Mapping[str, str]] = MappingProxyType(
    {
        "it": MappingProxyType({"spo2": "punti"}),
        "en": MappingProxyType({"spo2": "points"}),
    }
)

# A per cent sign follows every number ("≤ 92 %"); other units are written once per phrase.
UNIT_ON_EVERY_NUMBER = frozenset({"%"})

CHANGE_DECIMALS = 1

OPS: Mapping[str, str] = MappingProxyType({"<": "<", "<=": "≤", ">": ">", ">=": "≥"})

SCORE_NOTES: Mapping[Language, Mapping[str, str]] = MappingProxyType(
    {
        "it": MappingProxyType({"scale_2": " (scala 2)", "oxygen": ", in ossigeno"}),
        "en": MappingProxyType({"scale_2": " (scale 2)", "oxygen": ", on oxygen"}),
    }
)

# What an SMS cannot carry (GSM-7 has no °, ≤ or ≥), said in the language's plain words.
SMS_WORDS: Mapping[Language, Mapping[str, str]] = MappingProxyType(
    {
        "it": MappingProxyType({"°C": "gradi", "≤": "<=", "≥": ">="}),
        "en": MappingProxyType({"°C": "degrees C", "≤": "<=", "≥": ">="}),
    }
)


@dataclass(frozen=True, slots=True)
class _DurationWords:
    under_minute: str
    day: str
    days: str
    joiner: str  # between days and hours


DURATION_WORDS: Mapping[Language, _DurationWords] = MappingProxyType(
    {
        "it": _DurationWords("meno di 1 min", "giorno", "giorni", " e "),
        "en": _DurationWords("under 1 min", "day", "days", " "),
    }
)


def _days(count: int, words: _DurationWords) -> str:
    return f"{count} {words.day if count == 1 else words.days}"


def _hours_minutes(minutes: int, words: _DurationWords) -> str:
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _days_hours(hours: int, words: _DurationWords) -> str:
    days, rest = divmod(hours, 24)
    return f"{_days(days, words)}{words.joiner}{rest} h" if rest else _days(days, words)


# The unit a duration is said in grows with it, and so does the rounding: a confirmation takes
# "20 min", a gap "14 h", a window "3 giorni". Each step: below this many seconds, say it so.
_DURATION_LADDER: tuple[tuple[float, Callable[[float, _DurationWords], str]], ...] = (
    (60, lambda s, w: w.under_minute),
    (120 * 60, lambda s, w: f"{round(s / 60)} min"),
    (6 * 3600, lambda s, w: _hours_minutes(round(s / 60), w)),
    (48 * 3600, lambda s, w: f"{round(s / 3600)} h"),
    (7 * 86400, lambda s, w: _days_hours(round(s / 3600), w)),
    (float("inf"), lambda s, w: _days(round(s / 86400), w)),
)


def duration(seconds: float, language: Language) -> str:
    """'20 min', '2 h 30 min', '14 h', '3 giorni', '2 days 6 h': as a clinician would say it."""
    words = DURATION_WORDS[language]
    say = next(say for limit, say in _DURATION_LADDER if seconds < limit)
    return say(seconds, words)


def number(
    value: float, language: Language, *, decimals: int | None = None, signed: bool = False
) -> str:
    """A comma in Italian: '38,5', '88', '+2,3'.

    ``decimals`` fixes the decimals (a reading, as its metric is written); without it one at
    most, none when it is zero (a threshold of 92 or of 92.5 says exactly that).
    """
    rounded = round(value, 1 if decimals is None else decimals) + 0.0  # no "-0"
    places = (0 if rounded == int(rounded) else 1) if decimals is None else decimals
    text = f"{rounded:.{places}f}"
    if signed and rounded > 0:
        text = "+" + text
    return text.replace(".", ",") if language == "it" else text


@dataclass(frozen=True, slots=True)
class _Part:
    """What a phrase names: one metric, or a group written as one ("PA 182/95 mmHg")."""

    key: str
    label: str
    unit: str
    members: tuple[str, ...]
    grouped: bool


def _parts(channels: list[str], language: Language) -> list[_Part]:
    parts: list[_Part] = []
    for channel in channels:
        group = group_of(channel)
        if group is not None and all(m in channels for m in group.members):
            if all(p.key != group.key for p in parts):
                unit = METRICS[group.members[0]].display_unit(language)
                label = group.short_label(language)
                parts.append(_Part(group.key, label, unit, group.members, grouped=True))
            continue
        metric = METRICS[channel]
        label, unit = metric.short_label(language), metric.display_unit(language)
        parts.append(_Part(channel, label, unit, (channel,), grouped=False))
    return parts


def value(metric: str, amount: float, language: Language) -> str:
    """A reading's number as its metric is written: '38,0', '88', '82,4'."""
    return number(amount, language, decimals=METRICS[metric].display_decimals)


def reading(values: Mapping[str, float], language: Language) -> str:
    """'SpO2 88 %', 'PA 182/95 mmHg', 'FC 120 bpm, SpO2 90 %': values as a clinician writes them."""
    return ", ".join(
        f"{part.label} {'/'.join(value(m, values[m], language) for m in part.members)} {part.unit}"
        for part in _parts(list(values), language)
    )


def _limit(
    thresholds: Mapping[str, float], op: str, channels: list[str], language: Language
) -> str:
    """What the values were compared with: '≤ 92 %', '≥ 135/85', 'sistolica ≥ 180'."""
    parts = _parts(channels, language)
    phrases = []
    for part in parts:
        crossed = [m for m in part.members if m in thresholds]
        if not crossed:
            continue
        if len(crossed) == len(part.members):
            limit = "/".join(number(thresholds[m], language) for m in crossed)
            if part.unit in UNIT_ON_EVERY_NUMBER:
                limit = f"{limit} {part.unit}"
            phrase = f"{OPS[op]} {limit}"
        else:
            group = group_of(crossed[0])
            assert group is not None  # a partial part is always a group's
            phrase = ", ".join(
                f"{group.member_word(m, language)} {OPS[op]} {number(thresholds[m], language)}"
                for m in crossed
            )
        phrases.append(f"{part.label} {phrase}" if len(parts) > 1 else phrase)
    return ", ".join(phrases)


def _subject_gender(channels: list[str], language: Language) -> Gender:
    return GENDER_IT[_parts(channels, language)[0].key]


def _agreeing(language: Language, gender: Gender) -> dict[str, str]:
    return {word: forms[gender] for word, forms in AGREEING[language].items()}


def _mid_sentence(label: str) -> str:
    """'Glicemia' inside a sentence is 'glicemia'; an acronym ('SpO2', 'PA') stays as it is."""
    return label[:1].lower() + label[1:] if label[1:].islower() else label


# Each kind: the template case its evidence is in, and the fields its template reads.


def _threshold(e: Threshold, language: Language) -> tuple[str, dict[str, object]]:
    values = {**e.values, e.metric: e.value} if e.values else {e.metric: e.value}
    channels = list(values)
    if e.unconfirmed:
        case = "threshold.unconfirmed" if e.confirm_timeout_s else "threshold.unconfirmed_untimed"
    else:
        case = "threshold.confirmed" if e.confirmed_by > 1 else "threshold"
    return case, {
        "reading": reading(values, language),
        "limit": _limit({e.metric: e.threshold}, e.op, channels, language),
        "count": e.confirmed_by,
        "span": duration(e.confirm_span_s, language),
        "timeout": duration(e.confirm_timeout_s or 0, language),
        **_agreeing(language, _subject_gender(channels, language)),
    }


def _trend(e: Trend, language: Language) -> tuple[str, dict[str, object]]:
    metric = METRICS[e.metric]
    # A fitted slope is a change over the whole window; a delta, between the two readings.
    case, seconds = (
        ("trend.delta", e.span_s)
        if e.method == "delta"
        else ("trend.fell" if e.change < 0 else "trend.rose", e.window_s)
    )
    return case, {
        "label": metric.short_label(language),
        # A change is worth its first decimal even where readings are whole: '3,8 punti'.
        "change": number(abs(e.change), language, decimals=CHANGE_DECIMALS),
        "signed": number(e.change, language, decimals=CHANGE_DECIMALS, signed=True),
        "unit": CHANGE_UNITS[language].get(e.metric, metric.display_unit(language)),
        "window": duration(seconds, language),
        **_agreeing(language, GENDER_IT[e.metric]),
    }


def _mean(e: Mean, language: Language) -> tuple[str, dict[str, object]]:
    return "aggregate", {
        "days": duration(e.days * 86400, language),
        "reading": reading(e.means, language),
        "limit": _limit(e.thresholds, e.op, list(e.means), language),
    }


def _score(e: Score, language: Language) -> tuple[str, dict[str, object]]:
    notes = SCORE_NOTES[language]
    parameters = ", ".join(
        f"{METRICS[p.metric].short_label(language)} {p.points}"
        + (notes["scale_2"] if p.metric == "spo2" and e.spo2_scale == 2 else "")
        for p in e.parameters
    )
    return f"score.{e.on}", {
        "total": e.total,
        "parameters": parameters,
        "present": len(e.parameters),
        "of": e.of,
        "oxygen": notes["oxygen"] if e.supplemental_oxygen else "",
        "threshold": number(e.threshold, language),
    }


def _missing(e: Missing, language: Language) -> tuple[str, dict[str, object]]:
    # A reading is missing as the patient takes it: a blood pressure, not its systolic value.
    group = group_of(e.metric)
    subject = group or METRICS[e.metric]
    if e.hours is None:
        case = "missing_data.never"
    else:
        case = "missing_data.expected" if e.expected_every_s else "missing_data"
    return case, {
        "label": _mid_sentence(subject.short_label(language)),
        "since": duration((e.hours or 0) * 3600, language),
        "every": duration(e.expected_every_s or 0, language),
    }


_FIELDS: Mapping[str, Callable[[Evidence, Language], tuple[str, dict[str, object]]]] = (
    MappingProxyType(
        {
            "threshold": _threshold,  # type: ignore[dict-item]
            "trend": _trend,  # type: ignore[dict-item]
            "aggregate": _mean,  # type: ignore[dict-item]
            "score": _score,  # type: ignore[dict-item]
            "missing_data": _missing,  # type: ignore[dict-item]
        }
    )
)


def to_sms(text: str, language: Language) -> str:
    """The text in GSM-7: symbols an SMS cannot carry said in words, the rest folded."""
    for symbol, words in SMS_WORDS[language].items():
        text = text.replace(symbol, words)
    return to_gsm7(text)


def describe(
    evidence: Evidence, language: Language, *, sms: bool = False, short: bool = False
) -> str:
    """The reason in words: 'SpO2 88 % (≤ 92 %), confermata da 2 misure in 20 min'.

    ``sms`` gives the GSM-7 form ('<=', 'gradi'); ``short`` the form for an SMS without room for
    the whole sentence (the reading and its limit, without how it was confirmed).
    """
    case, fields = _FIELDS[evidence.kind](evidence, language)
    template = TEMPLATES[language][case]
    text = (template.short if short else template.full).format(**fields)
    return to_sms(text, language) if sms else text
