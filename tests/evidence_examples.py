"""Evidence of every kind, as the engine keeps it, with the reasons a clinician should read.

Shared by the wording tests (telemon.reasons), the SMS texts and the dashboard's pages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from telemon.findings import Evidence, Mean, Missing, Parameter, Score, Threshold, Trend

AT = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
HOUR, DAY = 3600, 86400


def _base(rule: str, protocol: str, level: int = 2) -> dict[str, Any]:
    return {"rule": rule, "protocol": protocol, "level": level, "at": AT}


def spo2_low(**changes: Any) -> Threshold:
    fields = _base("spo2_low", "covid19_home_oximetry") | {
        "metric": "spo2",
        "value": 88.0,
        "op": "<=",
        "threshold": 92.0,
        "confirmed_by": 2,
        "confirm_span_s": 20 * 60,
    }
    return Threshold(**(fields | changes))


def news2(**changes: Any) -> Score:
    fields = _base("news2_partial", "covid19_home_oximetry", level=1) | {
        "total": 6,
        "on": "total",
        "op": ">=",
        "threshold": 5,
        "parameters": (
            Parameter(metric="spo2", value=91, points=3, age_s=600),
            Parameter(metric="pulse_rate", value=118, points=2, age_s=900),
            Parameter(metric="body_temperature", value=38.4, points=1, age_s=3 * HOUR),
        ),
        "of": 5,
        "min_parameters": 3,
    }
    return Score(**(fields | changes))


def not_measuring(**changes: Any) -> Missing:
    fields = _base("spo2_not_measuring", "covid19_home_oximetry", level=1) | {
        "metric": "spo2",
        "hours": 14.2,
        "op": ">",
        "threshold": 12.0,
        "expected_every_s": 8 * HOUR,
    }
    return Missing(**(fields | changes))


SPO2_FALLING = Trend(
    **_base("spo2_falling", "covid19_home_oximetry", level=1),
    metric="spo2",
    change=-3.8,
    window_s=DAY,
    method="ols",
    points=6,
    span_s=20 * HOUR,
    op="<=",
    threshold=-3,
)
WEIGHT_GAIN = Trend(
    **_base("weight_gain", "heart_failure", level=1),
    metric="body_weight",
    change=2.3,
    window_s=3 * DAY,
    method="delta",
    points=2,
    span_s=3 * DAY,
    op=">",
    threshold=2.0,
    first_value=80.1,
    last_value=82.4,
)
HOME_BP = Mean(
    **_base("home_bp_mean", "hypertension", level=1),
    metric="systolic",
    means={"systolic": 142.4, "diastolic": 87.6},
    op=">=",
    thresholds={"systolic": 135, "diastolic": 85},
    days=7,
    days_measured=6,
)
BP_SEVERE = Threshold(
    **_base("bp_severe", "hypertension"),
    metric="systolic",
    value=182,
    values={"systolic": 182, "diastolic": 95},
    op=">=",
    threshold=180,
)
HYPO = Threshold(
    **_base("glucose_low", "diabetes"), metric="glucose", value=52, op="<", threshold=54
)

# Every kind and case, with what it reads in Italian and in English.
REASONS: dict[str, tuple[Evidence, str, str]] = {
    "confirmed": (
        spo2_low(),
        "SpO2 88 % (≤ 92 %), confermata da 2 misure in 20 min",
        "SpO2 88 % (≤ 92 %), confirmed by 2 readings in 20 min",
    ),
    "unconfirmed": (
        spo2_low(confirmed_by=1, confirm_span_s=0, unconfirmed=True, confirm_timeout_s=30 * 60),
        "SpO2 88 % (≤ 92 %), non confermata (nessuna seconda misura entro 30 min)",
        "SpO2 88 % (≤ 92 %), unconfirmed (no second reading within 30 min)",
    ),
    "fitted trend": (
        SPO2_FALLING,
        "SpO2 scesa di 3,8 punti in 24 h",
        "SpO2 fell by 3.8 points in 24 h",
    ),
    "delta trend": (WEIGHT_GAIN, "Peso +2,3 kg in 3 giorni", "Weight +2.3 kg in 3 days"),
    "partial NEWS2": (
        news2(),
        "NEWS2 parziale 6: SpO2 3, FC 2, T 1 (3 parametri su 5)",
        "Partial NEWS2 6: SpO2 3, HR 2, T 1 (3 of 5 parameters)",
    ),
    "home mean, two channels": (
        HOME_BP,
        "Media domiciliare 7 giorni: PA 142/88 mmHg (≥ 135/85)",
        "Home mean over 7 days: BP 142/88 mmHg (≥ 135/85)",
    ),
    "one reading, two channels": (
        BP_SEVERE,
        "PA 182/95 mmHg (sistolica ≥ 180)",
        "BP 182/95 mmHg (systolic ≥ 180)",
    ),
    "one reading": (HYPO, "Glicemia 52 mg/dL (< 54)", "Glucose 52 mg/dL (< 54)"),
    "not measuring": (
        not_measuring(),
        "Nessuna misura di SpO2 da 14 h (attesa ogni 8 h)",
        "No SpO2 reading for 14 h (expected every 8 h)",
    ),
    "never measured": (
        not_measuring(hours=None),
        "Nessuna misura di SpO2 dall'inizio del monitoraggio",
        "No SpO2 reading since monitoring began",
    ),
}
