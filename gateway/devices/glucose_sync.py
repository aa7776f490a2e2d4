"""Glucose meter record sync: which records to ask for, and joining each record's context.

The meter numbers its records; the gateway remembers, per meter, the last sequence number whose
readings are in the outbox, and on every connection asks only for the ones after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.gatt import Decoded, GlucoseMeasurement, GlucoseMeasurementContext, RacpRequest
from gateway.outbox import Outbox

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
    """Last stored sequence number per meter, kept in the outbox.

    Each position is written in the same transaction as the readings of its record
    (:meth:`entry` gives what to pass as the outbox append's ``state``), so a crash can neither
    lose a record nor make the gateway fetch a stored one again.
    """

    PREFIX = "glucose_seq:"

    def __init__(self, outbox: Outbox) -> None:
        self._last: dict[str, int] = {
            key.removeprefix(self.PREFIX): int(value)
            for key, value in outbox.state(self.PREFIX).items()
        }

    def last(self, address: str) -> int | None:
        return self._last.get(address.upper())

    def entry(self, address: str, sequence_number: int) -> dict[str, str]:
        return {f"{self.PREFIX}{address.upper()}": str(sequence_number)}

    def stored(self, address: str, sequence_number: int) -> None:
        """Note a position the outbox has committed."""
        self._last[address.upper()] = sequence_number

    def snapshot(self) -> dict[str, int]:
        return dict(self._last)
