"""Rejected input, kept with its reason where an operator can see it (table ``dead_letters``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

MAX_STORED_PAYLOAD = 64 * 1024
MAX_DETAIL = 1000

# Not a contract reason: the database refused a message that passed validation (for instance a
# NUL character that jsonb cannot hold). Kept apart so that one such message cannot block a batch.
STORE_ERROR = "store_error"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str | None
    gateway_code: str | None
    reason: str
    detail: str
    payload: bytes
    item_index: int | None = None

    @classmethod
    def for_item(
        cls,
        topic: str,
        gateway_code: str,
        index: int,
        reason: str,
        detail: str,
        item: Any,
    ) -> DeadLetter:
        raw = json.dumps(item, separators=(",", ":"), default=str).encode()
        return cls(topic, gateway_code, reason, detail, raw, index)

    def row(self) -> tuple[object, ...]:
        stored = self.payload[:MAX_STORED_PAYLOAD]
        return (
            self.topic,
            self.gateway_code,
            self.item_index,
            self.reason,
            printable(self.detail[:MAX_DETAIL]),
            stored,
            len(self.payload),
            len(stored) < len(self.payload),
        )


def printable(text: str) -> str:
    """``text`` as PostgreSQL can store it: a detail may quote the input it rejects, and a NUL
    or a lone surrogate in there would make the database refuse the dead letter itself."""
    escaped = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return escaped.replace("\x00", "\\x00")


def write_dead_letters(conn: psycopg.Connection, letters: Sequence[DeadLetter]) -> None:
    if not letters:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO dead_letters (source, topic, gateway_code, item_index, reason, detail, "
            "payload, payload_size, payload_truncated) "
            "VALUES ('mqtt', %s, %s, %s, %s, %s, %s, %s, %s)",
            [letter.row() for letter in letters],
        )
