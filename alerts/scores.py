"""NEWS2 (Royal College of Physicians, 2017, chart 1) as lookup tables.

Home monitoring has neither the level of consciousness (ACVPU) nor, usually, the respiratory
rate, so the score computed here is partial: a low total does not rule out deterioration. The
"air or oxygen" row is taken from the rule (``supplemental_oxygen``), not from the readings.

Each table lists the upper edge of every band except the last, inclusive, and the points per
band: a reading ``v`` scores ``points[i]`` where ``edges[i-1] < v <= edges[i]``. Chart values
are integers (temperature to 0.1 °C), so inclusive upper edges reproduce the chart exactly and
put fractional readings in the band below the next chart value.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np


@dataclass(frozen=True, slots=True)
class ScoreTable:
    upper_edges: tuple[float, ...]
    points: tuple[int, ...]

    def __post_init__(self) -> None:
        assert len(self.points) == len(self.upper_edges) + 1
        assert list(self.upper_edges) == sorted(self.upper_edges)

    def score(self, values: np.ndarray) -> np.ndarray:
        """Points per value; -1 where the value is NaN (parameter not measured)."""
        values = np.asarray(values, dtype=np.float64)
        # The band is how many upper edges lie below the value: a few comparisons are several
        # times faster than a binary search per value.
        band = np.zeros(values.shape, dtype=np.intp)
        for edge in self.upper_edges:
            band += values > edge
        points = np.asarray(self.points, dtype=np.int64)[band]
        points[np.isnan(values)] = -1
        return points

    def score_one(self, value: float) -> int:
        for edge, points in zip(self.upper_edges, self.points, strict=False):
            if value <= edge:
                return points
        return self.points[-1]


# RCP NEWS2 chart 1 (docs/clinical-references.md#news2). Row: ≤8 | 9–11 | 12–20 | 21–24 | ≥25
RESPIRATORY_RATE = ScoreTable((8, 11, 20, 24), (3, 1, 0, 2, 3))
# SpO2 scale 1: ≤91 | 92–93 | 94–95 | ≥96
SPO2_SCALE_1 = ScoreTable((91, 93, 95), (3, 2, 1, 0))
# SpO2 scale 2 (target 88–92 %, hypercapnic respiratory failure), on air: ≤83 | 84–85 | 86–87 | ≥88
SPO2_SCALE_2_AIR = ScoreTable((83, 85, 87), (3, 2, 1, 0))
# Scale 2 on oxygen: ... | 88–92 | 93–94 | 95–96 | ≥97
SPO2_SCALE_2_OXYGEN = ScoreTable((83, 85, 87, 92, 94, 96), (3, 2, 1, 0, 1, 2, 3))
# Systolic: ≤90 | 91–100 | 101–110 | 111–219 | ≥220
SYSTOLIC = ScoreTable((90, 100, 110, 219), (3, 2, 1, 0, 3))
# Pulse: ≤40 | 41–50 | 51–90 | 91–110 | 111–130 | ≥131
PULSE = ScoreTable((40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3))
# Temperature: ≤35.0 | 35.1–36.0 | 36.1–38.0 | 38.1–39.0 | ≥39.1
TEMPERATURE = ScoreTable((35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2))
# "Air or oxygen?" row: oxygen scores 2.
OXYGEN_POINTS = 2

NEWS2_TABLES: MappingProxyType[str, ScoreTable] = MappingProxyType(
    {
        "respiratory_rate": RESPIRATORY_RATE,
        "systolic": SYSTOLIC,
        "pulse_rate": PULSE,
        "body_temperature": TEMPERATURE,
    }
)


def spo2_table(scale: int, oxygen: bool) -> ScoreTable:
    if scale == 1:
        return SPO2_SCALE_1
    return SPO2_SCALE_2_OXYGEN if oxygen else SPO2_SCALE_2_AIR


def news2_points(
    metric: str, values: np.ndarray, scale: np.ndarray | int = 1, oxygen: np.ndarray | bool = False
) -> np.ndarray:
    """Points of one NEWS2 parameter per patient; ``scale``/``oxygen`` may vary per patient."""
    if metric != "spo2":
        return NEWS2_TABLES[metric].score(values)
    values = np.asarray(values, dtype=np.float64)
    scale = np.broadcast_to(scale, values.shape)
    oxygen = np.broadcast_to(oxygen, values.shape)
    if np.all(scale == 1):
        return SPO2_SCALE_1.score(values)
    return np.select(
        [scale == 1, oxygen],
        [SPO2_SCALE_1.score(values), SPO2_SCALE_2_OXYGEN.score(values)],
        SPO2_SCALE_2_AIR.score(values),
    )
