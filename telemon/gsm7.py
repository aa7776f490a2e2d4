"""The GSM-7 alphabet an SMS is billed and split in, and folding text into it.

A single character outside GSM-7 switches a whole SMS to UCS-2 (70 characters a segment instead
of 160), so every text meant for an SMS goes through :func:`to_gsm7` before it is measured.
"""

from __future__ import annotations

import unicodedata

# GSM 03.38: the basic alphabet costs one septet per character, the extension table two.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

# Latin letters that Unicode does not decompose into a base letter and an accent.
_UNDECOMPOSABLE = str.maketrans("ŁłĐđØøÆæŒœßÞþĦħı", "LlDdOoAaOosTtHhi")


def is_gsm7(text: str) -> bool:
    return all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)


def gsm7_length(text: str) -> int:
    """Septets the text takes on the air; the length that decides the number of segments."""
    return sum(2 if c in GSM7_EXTENSION else 1 for c in text)


def sms_segments(text: str) -> int:
    length = gsm7_length(text)
    return 1 if length <= 160 else -(-length // 153)


def to_ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(_UNDECOMPOSABLE))
    return folded.encode("ascii", "ignore").decode()


def to_gsm7(text: str) -> str:
    """Characters outside GSM-7 folded to their plain letter (or dropped), the rest kept."""
    return "".join(c if c in GSM7_BASIC or c in GSM7_EXTENSION else to_ascii(c) for c in text)
