"""The metric catalogue: what we measure, how it is coded, and what is physiologically plausible.

Values travel and are stored in the canonical UCUM unit of their metric. Device units are
converted once, on the gateway, with :func:`to_canonical`.

For people, values read as clinicians write them: a short label (SpO2, FC, PA) and a display unit
(°C, mmHg, bpm); UCUM codes stay in FHIR and in the API's structured fields.

Codes: LOINC as used by the FHIR R4 vital-signs profiles; MDC (ISO/IEEE 11073-10101) as used
by the HL7 Personal Health Device IG. Codes, their sources, and why the plausible ranges are what
they are: docs/clinical-references.md#metric-codes-and-plausible-ranges.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, get_args

Language = Literal["it", "en"]

# The catalogue's keys as a type: a field of this type is checked by pydantic-core itself (no
# Python validator per reading) and by the type checker. Each key has one catalogue entry (below).
MetricKey = Literal[
    "spo2",
    "pulse_rate",
    "systolic",
    "diastolic",
    "mean_arterial_pressure",
    "glucose",
    "body_temperature",
    "body_weight",
    "respiratory_rate",
]


@dataclass(frozen=True, slots=True)
class Metric:
    key: MetricKey
    id: int  # stable small integer used as the storage key; never reuse one
    loinc: str
    unit: str  # canonical UCUM unit
    mdc: int | None
    plausible_min: float
    plausible_max: float
    label_en: str
    label_it: str
    short_label_en: str  # as a clinician writes it in a note: "HR", "BP"
    short_label_it: str  # "FC", "PA"
    display_unit_en: str  # as a clinician writes it: "°C", not "Cel"
    display_unit_it: str
    # Decimals a reading is written with: a temperature "38,0", a saturation "88".
    display_decimals: int

    def is_plausible(self, value: float) -> bool:
        return self.plausible_min <= value <= self.plausible_max

    def label(self, language: Language) -> str:
        return self.label_it if language == "it" else self.label_en

    def short_label(self, language: Language) -> str:
        return self.short_label_it if language == "it" else self.short_label_en

    def display_unit(self, language: Language) -> str:
        return self.display_unit_it if language == "it" else self.display_unit_en


_CATALOGUE = (
    Metric(
        "spo2",
        1,
        "59408-5",
        "%",
        150456,
        50.0,
        100.0,
        "Oxygen saturation",
        "Saturazione di ossigeno",
        short_label_en="SpO2",
        short_label_it="SpO2",
        display_unit_en="%",
        display_unit_it="%",
        display_decimals=0,
    ),
    Metric(
        "pulse_rate",
        2,
        "8867-4",
        "/min",
        149530,
        20.0,
        300.0,
        "Pulse rate",
        "Frequenza cardiaca",
        short_label_en="HR",
        short_label_it="FC",
        display_unit_en="bpm",
        display_unit_it="bpm",
        display_decimals=0,
    ),
    Metric(
        "systolic",
        3,
        "8480-6",
        "mm[Hg]",
        150021,
        50.0,
        300.0,
        "Systolic blood pressure",
        "Pressione sistolica",
        short_label_en="SBP",
        short_label_it="PAS",
        display_unit_en="mmHg",
        display_unit_it="mmHg",
        display_decimals=0,
    ),
    Metric(
        "diastolic",
        4,
        "8462-4",
        "mm[Hg]",
        150022,
        20.0,
        200.0,
        "Diastolic blood pressure",
        "Pressione diastolica",
        short_label_en="DBP",
        short_label_it="PAD",
        display_unit_en="mmHg",
        display_unit_it="mmHg",
        display_decimals=0,
    ),
    Metric(
        "mean_arterial_pressure",
        5,
        "8478-0",
        "mm[Hg]",
        150023,
        30.0,
        250.0,
        "Mean arterial pressure",
        "Pressione arteriosa media",
        short_label_en="MAP",
        short_label_it="PAM",
        display_unit_en="mmHg",
        display_unit_it="mmHg",
        display_decimals=0,
    ),
    Metric(
        "glucose",
        6,
        "2339-0",
        "mg/dL",
        160184,
        10.0,
        1000.0,
        "Blood glucose",
        "Glicemia",
        short_label_en="Glucose",
        short_label_it="Glicemia",
        display_unit_en="mg/dL",
        display_unit_it="mg/dL",
        display_decimals=0,
    ),
    Metric(
        "body_temperature",
        7,
        "8310-5",
        "Cel",
        150364,
        30.0,
        45.0,
        "Body temperature",
        "Temperatura corporea",
        short_label_en="T",
        short_label_it="T",
        display_unit_en="°C",
        display_unit_it="°C",
        display_decimals=1,
    ),
    Metric(
        "body_weight",
        8,
        "29463-7",
        "kg",
        188736,
        2.0,
        400.0,
        "Body weight",
        "Peso corporeo",
        short_label_en="Weight",
        short_label_it="Peso",
        display_unit_en="kg",
        display_unit_it="kg",
        display_decimals=1,
    ),
    Metric(
        "respiratory_rate",
        9,
        "9279-1",
        "/min",
        151562,
        2.0,
        80.0,
        "Respiratory rate",
        "Frequenza respiratoria",
        short_label_en="RR",
        short_label_it="FR",
        display_unit_en="breaths/min",
        display_unit_it="atti/min",
        display_decimals=0,
    ),
)

METRICS: MappingProxyType[str, Metric] = MappingProxyType({m.key: m for m in _CATALOGUE})
METRICS_BY_ID: MappingProxyType[int, Metric] = MappingProxyType({m.id: m for m in _CATALOGUE})
if set(METRICS) != set(get_args(MetricKey)):
    raise RuntimeError("MetricKey and the metric catalogue must name the same metrics")


@dataclass(frozen=True, slots=True)
class MetricGroup:
    """Metrics read together and written as one: blood pressure is "PA 142/88 mmHg"."""

    key: str
    members: tuple[str, ...]  # in the order they are written, joined by "/"
    short_label_en: str
    short_label_it: str
    # How a member is named inside the group's phrase: "(sistolica ≥ 180)".
    member_words_en: Mapping[str, str]
    member_words_it: Mapping[str, str]

    def short_label(self, language: Language) -> str:
        return self.short_label_it if language == "it" else self.short_label_en

    def member_word(self, metric: str, language: Language) -> str:
        return (self.member_words_it if language == "it" else self.member_words_en)[metric]


GROUPS: tuple[MetricGroup, ...] = (
    MetricGroup(
        "blood_pressure",
        ("systolic", "diastolic"),
        short_label_en="BP",
        short_label_it="PA",
        member_words_en=MappingProxyType({"systolic": "systolic", "diastolic": "diastolic"}),
        member_words_it=MappingProxyType({"systolic": "sistolica", "diastolic": "diastolica"}),
    ),
)


def group_of(metric: str) -> MetricGroup | None:
    return next((g for g in GROUPS if metric in g.members), None)


class UnknownMetricError(KeyError):
    pass


class UnitConversionError(ValueError):
    pass


def get_metric(key: str) -> Metric:
    try:
        return METRICS[key]
    except KeyError:
        raise UnknownMetricError(f"unknown metric {key!r}; known: {', '.join(METRICS)}") from None


# Linear conversions into each canonical unit: canonical = value * scale + offset.
# Glucose molar mass 180.156 g/mol: 1 mmol/L = 18.0156 mg/dL.
_CONVERSIONS: MappingProxyType[tuple[str, str], tuple[float, float]] = MappingProxyType(
    {
        ("mm[Hg]", "kPa"): (760.0 / 101.325, 0.0),
        ("mg/dL", "mmol/L"): (18.0156, 0.0),
        ("mg/dL", "mol/L"): (18015.6, 0.0),
        ("mg/dL", "kg/L"): (1.0e5, 0.0),
        ("mg/dL", "g/L"): (100.0, 0.0),
        ("Cel", "[degF]"): (5.0 / 9.0, -32.0 * 5.0 / 9.0),
        ("kg", "g"): (1.0e-3, 0.0),
        ("kg", "[lb_av]"): (0.45359237, 0.0),
    }
)


def to_canonical(metric: str | Metric, value: float, unit: str) -> float:
    """Convert ``value`` expressed in ``unit`` into the metric's canonical unit."""
    m = metric if isinstance(metric, Metric) else get_metric(metric)
    if unit == m.unit:
        return float(value)
    try:
        scale, offset = _CONVERSIONS[(m.unit, unit)]
    except KeyError:
        raise UnitConversionError(
            f"cannot convert {unit!r} to {m.unit!r} for metric {m.key!r}"
        ) from None
    return float(value) * scale + offset


# Values a device measures at once and stores a reading each: a cuff's systolic, diastolic and
# mean pressure (its pulse rate is a measurement of its own). FHIR writes them as ONE
# Observation (LOINC's blood-pressure panel); a patient hiding one hides them all, for each can
# be worked out from the others (mean ≈ diastolic + a third of the pulse pressure).
PANELS: tuple[tuple[MetricKey, ...], ...] = (("systolic", "diastolic", "mean_arterial_pressure"),)


def panel_of(metric: str) -> tuple[MetricKey, ...] | None:
    return next((p for p in PANELS if metric in p), None)
