"""What a clinician reads must be words: the patterns of codes a program reads instead.

A rule, metric or protocol key (spo2_low, body_weight), an i18n key (outcome.reached), a reason
code (spo2:red) or a UCUM code (mm[Hg], Cel, /min) in a page's visible text or an SMS is a
defect, whichever page or template lets it through.
"""

from __future__ import annotations

import html
import re

RAW = re.compile(
    r"\b[a-z0-9]+_[a-z0-9_]+\b"  # a rule, metric or protocol key: spo2_low, body_weight
    r"|\b(?:outcome|state|event|device|role|ago|recipient)\.[a-z_]+\b"  # an i18n key
    r"|\b[a-z0-9]+:(?:red|amber)\b"  # a reason key: spo2:red
    r"|mm\[Hg\]|\bCel\b|\[degF\]|(?<![A-Za-z])/min"  # UCUM codes
)


def visible_text(page: str) -> str:
    """What a browser shows of ``page``: no markup, scripts or styles; entities decoded."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def raw_codes(text: str) -> list[str]:
    return [m.group(0) for m in RAW.finditer(text)]
