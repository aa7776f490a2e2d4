"""Glucose meter record sync: which records to ask for, and joining each record's context.

The meter numbers its records; the gateway remembers, per meter, the last sequence number whose
readings are in the outbox, and on every connection asks only for the ones after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gateway.gatt import Decoded, GlucoseMeasurement, GlucoseMeasurementContext, RacpRequest
from gateway.identity import write_private_json

SYNC_FILE = "glucose_sync.json"
MAX_SEQUENCE = 0xFFFF


def next_request(last_seq: int | None) -> RacpRequest:
    """The RACP request for the records this gateway has not stored yet.

    Never synced: everything the meter holds. Otherwise the records after ``last_seq``; a counter
    at its uint16 end cannot say "after", so the meter is asked for everything (and records
    already stored are dropped by sequence number on arrival).
    """
    if last_seq is None or last_seq >= MAX_SEQUENCE:
        return RacpRequest.report_all()
    return RacpRequest.report_from(last_seq + 1)


def already_stored(sequence_number: int, last_seq: int | None) -> bool:
    return last_seq is not None and last_seq < MAX_SEQUENCE and sequence_number <= last_seq


@dataclass(frozen=True, slots=True)
class GlucoseRecord:
    measurement: Decoded[GlucoseMeasurement]
    context: dict[str, str] = field(default_factory=dict)

    @property
    def sequence_number(self) -> int:
        return self.measurement.record.sequence_number


class ContextJoiner:
    """Pairs a measurement flagged "context follows" with the 0x2A34 of the same number.

    GLS sends the context right after its measurement. A measurement is released when its context
    arrives, or (without context) when the next measurement arrives or the transfer ends, so a
    context that never comes does not hold a reading back.
    """

    def __init__(self) -> None:
        self._waiting: Decoded[GlucoseMeasurement] | None = None

    def measurement(self, decoded: Decoded[GlucoseMeasurement]) -> list[GlucoseRecord]:
        released = self.flush()
        if decoded.record.context_follows:
            self._waiting = decoded
        else:
            released.append(GlucoseRecord(decoded))
        return released

    def context(self, context: GlucoseMeasurementContext) -> list[GlucoseRecord]:
        waiting = self._waiting
        if waiting is None or waiting.record.sequence_number != context.sequence_number:
            return []  # a context for no pending measurement: nothing to attach it to
        self._waiting = None
        return [GlucoseRecord(waiting, context.as_context())]

    def flush(self) -> list[GlucoseRecord]:
        waiting, self._waiting = self._waiting, None
        return [GlucoseRecord(waiting)] if waiting is not None else []


class SyncStore:
    """Last stored sequence number per meter, in the state directory (atomic, fsynced)."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / SYNC_FILE
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {}
        self._last: dict[str, int] = {k.upper(): int(v) for k, v in data.items()}

    def last(self, address: str) -> int | None:
        return self._last.get(address.upper())

    def advance(self, address: str, sequence_number: int) -> None:
        """Remember ``sequence_number``; call only once its readings are in the outbox."""
        key = address.upper()
        if self._last.get(key) == sequence_number:
            return
        self._last[key] = sequence_number
        write_private_json(self.path, dict(sorted(self._last.items())))

    def snapshot(self) -> dict[str, int]:
        return dict(self._last)
