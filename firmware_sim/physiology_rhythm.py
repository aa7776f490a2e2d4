"""The day's rhythm of the vitals: circadian swings, and the glucose rise after each meal."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import time, timedelta
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Cosinor:
    """A 24-hour cosine: ``amplitude`` above the mean at ``peak_hour`` (local), as far below
    twelve hours later."""

    amplitude: float
    peak_hour: float

    def offset(self, local_hour: float) -> float:
        return self.amplitude * math.cos(2.0 * math.pi * (local_hour - self.peak_hour) / 24.0)


# Blood pressure and pulse dip during sleep and peak in the afternoon; core temperature peaks
# in the early evening; weight is lowest on waking and gains through the day with food and
# fluid; glucose shows the dawn rise. Saturation dips slightly at night.
CIRCADIAN: MappingProxyType[str, Cosinor] = MappingProxyType(
    {
        "spo2": Cosinor(0.5, 14.0),
        "pulse_rate": Cosinor(7.0, 15.0),
        "systolic": Cosinor(8.0, 15.0),
        "diastolic": Cosinor(5.0, 15.0),
        "body_temperature": Cosinor(0.3, 18.0),
        "body_weight": Cosinor(0.4, 19.0),
        "glucose": Cosinor(5.0, 6.0),
        "respiratory_rate": Cosinor(1.0, 14.0),
    }
)

# How long each metric's within-patient variability stays correlated. Weight changes from day
# to day; pulse from minute to minute.
VARIABILITY_TIMESCALE: MappingProxyType[str, timedelta] = MappingProxyType(
    {
        "spo2": timedelta(hours=3),
        "pulse_rate": timedelta(minutes=30),
        "systolic": timedelta(hours=2),
        "diastolic": timedelta(hours=2),
        "body_temperature": timedelta(hours=4),
        "body_weight": timedelta(days=1),
        "glucose": timedelta(hours=6),
        "respiratory_rate": timedelta(hours=2),
    }
)

MEALS: MappingProxyType[str, time] = MappingProxyType(
    {"breakfast": time(8, 0), "lunch": time(13, 0), "dinner": time(19, 30)}
)

# Post-prandial glucose: a gamma-shaped rise peaking about 45 minutes after eating, largely gone
# by the next meal. Its height scales with the fasting level, because the
# impaired insulin response that raises one raises the other.
_MEAL_PEAK = timedelta(minutes=45)
MEAL_RISE_PER_FASTING_LEVEL = 0.5


def meal_response(since_meal: timedelta) -> float:
    """Fraction of the peak post-prandial rise, ``since_meal`` after eating (0 before it)."""
    if since_meal <= timedelta(0):
        return 0.0
    x = since_meal / _MEAL_PEAK
    return x * math.exp(1.0 - x)
