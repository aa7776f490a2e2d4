"""Vitals charts drawn on the server as SVG: no charting script, nothing for the CSP to allow.

Only presentation attributes are used (no ``style``), so a strict ``style-src`` holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape

from markupsafe import Markup

from dashboard.models import Series
from dashboard.wording import language_of
from telemon.reasons import OPS, number, value

WIDTH, HEIGHT = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 28
BAND_FILL = {"amber": "#f59e0b", "red": "#dc2626"}
BAND_OPACITY = {"amber": "0.16", "red": "0.20"}


# Axis steps a reader counts in without thinking: 1, 2 or 5 times a power of ten.
_STEP_MULTIPLES = (1, 2, 5, 10)


def nice_ticks(lo: float, hi: float, count: int = 5) -> tuple[list[float], int]:
    """Round ticks covering [lo, hi], as near ``count`` of them as a round step gives, and the
    decimals that step needs: written with them, labels all differ (0.5 shows '37.5', not '38')."""
    span = hi - lo or 1.0
    magnitude = 10 ** math.floor(math.log10(span / count))
    steps = [m * magnitude for m in _STEP_MULTIPLES]
    step = min(steps, key=lambda s: abs(len(_multiples(lo, hi, s)) - count))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    return [round(i * step, decimals) for i in _multiples(lo, hi, step)], decimals


def _multiples(lo: float, hi: float, step: float) -> range:
    # Whole multiples of the step, so the ticks do not drift by repeated float additions.
    return range(math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9) + 1)


def tick_label(tick: float, decimals: int, language: str) -> str:
    text = f"{tick:.{decimals}f}"
    return text.replace(".", ",") if language == "it" else text


@dataclass(frozen=True, slots=True)
class EpisodeMark:
    """An episode on the time axis: when it opened, when it ended (None: still open), its
    severity (2 red, 1 amber) and what the mark says to a screen reader and on hover."""

    opened_at: datetime
    resolved_at: datetime | None
    severity: int
    label: str


# Severity is never told by colour alone: a red episode's mark is also taller and carries "!!".
_MARK = {2: ("#dc2626", 7, "!!"), 1: ("#b45309", 4, "!")}


def _episode_marks(
    marks: list[EpisodeMark], x: Callable[[datetime], float], start: datetime, now: datetime
) -> list[str]:
    parts = []
    axis = TOP + (HEIGHT - TOP - BOTTOM)
    for m in marks:
        if (m.resolved_at or now) < start or m.opened_at > now:
            continue
        x0, x1 = x(max(m.opened_at, start)), x(min(m.resolved_at or now, now))
        colour, height, glyph = _MARK.get(m.severity, _MARK[1])
        parts.append(
            f'<g class="episode-mark sev-{m.severity}"><title>{escape(m.label)}</title>'
            f'<rect x="{x0:.1f}" y="{axis - height:.1f}" width="{max(x1 - x0, 2):.1f}" '
            f'height="{height}" fill="{colour}"/>'
            f'<text x="{x0:.1f}" y="{axis - height - 2:.1f}" font-size="10" font-weight="bold" '
            f'fill="{colour}">{glyph}</text></g>'
        )
    return parts


def render(
    series: Series,
    *,
    now: datetime,
    empty_text: str,
    language: str = "en",
    episodes: list[EpisodeMark] | None = None,
) -> Markup:
    lang = language_of(language)
    start = now - timedelta(days=series.days)
    values = [p.value for p in series.points]
    values += [p.low for p in series.points if p.low is not None]
    values += [p.high for p in series.points if p.high is not None]
    thresholds = [b.value for b in series.bands]
    data_span = values or thresholds or [0.0, 1.0]
    lo, hi = min(data_span + thresholds), max(data_span + thresholds)
    # Leave room beyond each threshold so the band itself is visible, not a sliver at the edge.
    reach = (hi - lo) * 0.35 or 1.0
    if any(b.op in ("<", "<=") and b.value <= lo for b in series.bands):
        lo -= reach
    if any(b.op in (">", ">=") and b.value >= hi for b in series.bands):
        hi += reach
    pad = (hi - lo) * 0.12 or max(abs(hi) * 0.05, 1.0)
    lo, hi = lo - pad, hi + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return LEFT + plot_w * (at - start).total_seconds() / (now - start).total_seconds()

    def y(value: float) -> float:
        return TOP + plot_h * (1 - (value - lo) / (hi - lo))

    title = f"{series.label} ({series.display_unit}), {series.days} d"
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="xMidYMid meet" '
        f'data-metric="{escape(series.metric)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#ffffff" '
        'stroke="#e2e8f0"/>',
    ]
    # Bands first, so readings are drawn over them.
    for band in sorted(series.bands, key=lambda b: b.level):
        edge = min(max(y(band.value), TOP), TOP + plot_h)
        top, bottom = (edge, TOP + plot_h) if band.op in ("<", "<=") else (TOP, edge)
        parts.append(
            f'<rect class="band band-{band.level}" x="{LEFT}" y="{top:.1f}" width="{plot_w}" '
            f'height="{max(bottom - top, 0):.1f}" fill="{BAND_FILL[band.level]}" '
            f'fill-opacity="{BAND_OPACITY[band.level]}"><title>{escape(band.rule)}: '
            f"{escape(OPS[band.op])} {number(band.value, lang)}</title></rect>"
        )
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{edge:.1f}" y2="{edge:.1f}" '
            f'stroke="{BAND_FILL[band.level]}" stroke-width="1" stroke-dasharray="4 3"/>'
        )
    ticks, decimals = nice_ticks(lo, hi)
    for tick in ticks:
        ty = y(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}" '
            'stroke="#eef2f7"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#64748b">{tick_label(tick, decimals, lang)}</text>'
        )
    day_step = {7: 1, 30: 5, 90: 15}.get(series.days, max(series.days // 6, 1))
    day = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    while day < now:
        if (day - start).days % day_step == 0 or series.days <= 7:
            dx = x(day)
            parts.append(
                f'<line x1="{dx:.1f}" x2="{dx:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
                'stroke="#f1f5f9"/>'
                f'<text x="{dx:.1f}" y="{HEIGHT - 9}" text-anchor="middle" font-size="11" '
                f'fill="#64748b">{day:%d/%m}</text>'
            )
        day += timedelta(days=1)
    if series.aggregated and series.points:
        upper = " ".join(f"{x(p.at):.1f},{y(p.high or p.value):.1f}" for p in series.points)
        lower = " ".join(
            f"{x(p.at):.1f},{y(p.low or p.value):.1f}" for p in reversed(series.points)
        )
        parts.append(f'<polygon points="{upper} {lower}" fill="#2563eb" fill-opacity="0.12"/>')
    reliable = [p for p in series.points if p.reliable]
    if len(reliable) > 1:
        line = " ".join(f"{x(p.at):.1f},{y(p.value):.1f}" for p in reliable)
        parts.append(
            f'<polyline points="{line}" fill="none" stroke="#2563eb" stroke-width="1.8" '
            'stroke-linejoin="round"/>'
        )
    if not series.aggregated:
        for p in series.points:
            fill = "#2563eb" if p.reliable else "#ffffff"
            parts.append(
                f'<circle class="reading" cx="{x(p.at):.1f}" cy="{y(p.value):.1f}" r="2.6" '
                f'fill="{fill}" stroke="#2563eb" stroke-width="1"><title>{p.at:%d/%m %H:%M} '
                f"{value(series.metric, p.value, lang)} {escape(series.display_unit)}"
                "</title></circle>"
            )
    parts += _episode_marks(episodes or [], x, start, now)
    if not series.points:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle" '
            f'font-size="13" fill="#94a3b8">{escape(empty_text)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
