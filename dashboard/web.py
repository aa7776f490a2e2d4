"""Rendering server-side pages: the template environment and what every page gets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from dashboard.authz import Principal
from dashboard.i18n import event_label, metric_label, translator
from dashboard.time_notes import amount as clock_amount
from dashboard.time_notes import clock_facts, time_note
from dashboard.wording import language_of, protocol_title, reason_text
from telemon import __version__
from telemon.metrics import METRICS
from telemon.reasons import OPS, number, value

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
# The templates ship with the package: checking each one's file on every include of every row
# costs a tenth of a long list's rendering.
TEMPLATES.env.auto_reload = False
# The cooperatives are in Lombardy: times are shown in Italian local time.
LOCAL_TZ = ZoneInfo("Europe/Rome")


def local(at: datetime | None, fmt: str = "%d/%m %H:%M") -> str:
    return at.astimezone(LOCAL_TZ).strftime(fmt) if at else "–"


def age_text(t: Callable[..., str], at: datetime | None, now: datetime) -> str:
    if at is None:
        return "–"
    minutes = max(int((now - at).total_seconds() // 60), 0)
    if minutes < 120:
        return t("ago.m", n=minutes)
    if minutes < 48 * 60:
        return t("ago.h", n=minutes // 60)
    return t("ago.d", n=minutes // 1440)


def value_text(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if abs(value) >= 20 else f"{value:.1f}"


def reason(item: Any, language: str) -> str:
    """An alert's reason in words: from its evidence, else its rule's title; never a rule key."""
    return reason_text(
        item.evidence, item.protocol, item.rule, item.metric, item.trigger_value, language
    )


def reading_text(metric: str | None, amount: float | None, language: str) -> str:
    """A reading's number as its metric is written, with the language's decimal mark."""
    if amount is None:
        return "–"
    if metric is None or metric not in METRICS:
        return value_text(amount)
    return value(metric, amount, language_of(language))


def unit_text(metric: str | None, language: str) -> str:
    if metric is None or metric not in METRICS:
        return ""
    return METRICS[metric].display_unit(language_of(language))


def render(
    request: Request,
    template: str,
    context: dict[str, Any],
    *,
    user: Principal | None,
    status_code: int = 200,
    language: str | None = None,
) -> HTMLResponse:
    lang = language or (user.language if user else None) or request.app.state.language
    base = helpers(lang, datetime.now(UTC)) | {
        "user": user,
        "csrf": user.csrf_token if user else "",
        "path": request.url.path,
    }
    return TEMPLATES.TemplateResponse(request, template, base | context, status_code=status_code)


def helpers(lang: str, now: datetime) -> dict[str, Any]:
    """What every template writes with, in the reader's language: pages, and documents rendered
    outside a request (the period report's PDF)."""
    t = translator(lang)
    return {
        "lang": lang,
        "t": t,
        "now": now,
        "version": __version__,
        "local": local,
        "age": lambda at: age_text(t, at, now),
        "num": value_text,
        "metric_label": lambda key: metric_label(key, lang),
        "reason": lambda item: reason(item, lang),
        "value": lambda metric, amount: reading_text(metric, amount, lang),
        "unit": lambda metric: unit_text(metric, lang),
        "op": lambda symbol: OPS.get(symbol, symbol),
        "number": lambda amount: number(amount, language_of(lang)),
        "event": lambda kind: event_label(kind, lang),
        "protocol_title": lambda key: protocol_title(key, lang),
        "time_note": lambda time: time_note(time, t),
        "clock_amount": lambda seconds: clock_amount(t, seconds),
        "clock_facts": lambda ignores_dst, zone_min, dst_min: clock_facts(
            t, ignores_dst, zone_min, dst_min
        ),
    }
