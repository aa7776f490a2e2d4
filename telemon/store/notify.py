"""Telling the alerts engine which patients have new observations (PostgreSQL NOTIFY).

Sent inside the transaction that stores the observations, so a listener hears of them only once
they are committed, and never of a batch that was rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import psycopg

CHANNEL = "telemon_new_observations"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more.
MAX_PAYLOAD_BYTES = 7999


def notification_payloads(
    patient_ids: Iterable[int], *, limit: int = MAX_PAYLOAD_BYTES
) -> list[str]:
    """``{"patient_ids": [...]}`` documents, each under ``limit`` bytes, covering every id once."""
    head, tail = '{"patient_ids":[', "]}"
    payloads: list[str] = []
    current: list[str] = []
    size = len(head) + len(tail)
    for patient_id in sorted(set(patient_ids)):
        text = str(patient_id)
        extra = len(text) + (1 if current else 0)
        if current and size + extra > limit:
            payloads.append(head + ",".join(current) + tail)
            current, size, extra = [], len(head) + len(tail), len(text)
        current.append(text)
        size += extra
    if current:
        payloads.append(head + ",".join(current) + tail)
    return payloads


def parse_notification(payload: str) -> list[int]:
    """The patient ids of one notification, for listeners."""
    return [int(i) for i in json.loads(payload)["patient_ids"]]


def notify_new_observations(conn: psycopg.Connection, patient_ids: Iterable[int]) -> None:
    for payload in notification_payloads(patient_ids):
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
