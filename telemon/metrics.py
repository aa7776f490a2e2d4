"""The metric catalogue: what we measure, how it is coded, and what is physiologically plausible.

Values travel and are stored in the canonical UCUM unit of their metric. Device units are
converted once, on the gateway, with :func:`to_canonical`.

Codes: LOINC as used by the FHIR R4 vital-signs profiles; MDC (ISO/IEEE 11073-10101) as used
by the HL7 Personal Health Device IG. See docs/reference in ``../shared/reference/anchors.md`` §4.1.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    id: int  # stable small integer used as the storage key; never reuse one
    loinc: str
    unit: str  # canonical UCUM unit
    mdc: int | None
    plausible_min: float
    plausible_max: float
    label_en: str
    label_it: str

    def is_plausible(self, value: float) -> bool:
        return self.plausible_min <= value <= self.plausible_max


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
    ),
    Metric(
        "pulse_rate", 2, "8867-4", "/min", 149530, 20.0, 300.0, "Pulse rate", "Frequenza cardiaca"
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
    ),
    Metric("glucose", 6, "2339-0", "mg/dL", 160184, 10.0, 1000.0, "Blood glucose", "Glicemia"),
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
    ),
    Metric("body_weight", 8, "29463-7", "kg", 188736, 2.0, 400.0, "Body weight", "Peso corporeo"),
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
    ),
)

METRICS: MappingProxyType[str, Metric] = MappingProxyType({m.key: m for m in _CATALOGUE})
METRICS_BY_ID: MappingProxyType[int, Metric] = MappingProxyType({m.id: m for m in _CATALOGUE})


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
