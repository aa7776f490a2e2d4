"""Glucose meter record sync: which records to ask for, and joining each record's context.

The meter numbers its records; the gateway remembers, per meter, the last sequence number whose
readings are in the outbox and what that record said (its *anchor*), and on every connection asks
for the records from that one on. The first record back must be the anchor again: then the rest
are new. Anything else (another record under that number, a higher number first, or no record at
all) means the meter's numbering restarted lower, after a reset or a firmware update, and its
newer records may carry numbers the gateway thinks it has: the gateway then reads the meter's
whole memory, and the readings' identifiers (telemon.identifier) drop what the outbox holds
already, so nothing is lost and nothing stored twice (issue 19).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.gatt import Decoded, GlucoseMeasurement, GlucoseMeasurementContext, RacpRequest
from gateway.outbox import Outbox

MAX_SEQUENCE = 0xFFFF


def next_request(last_seq: int | None, *, anchored: bool = False) -> RacpRequest:
    """The RACP request for the records this gateway has not stored yet.

    Never synced: everything the meter holds. Otherwise the records after ``last_seq``, from
    ``last_seq`` itself when its anchor is known (to check it is still the same record); a counter
    at its uint16 end cannot say "after", so the meter is asked for everything (and records
    already stored are dropped by sequence number on arrival).
    """
    if last_seq is None or last_seq >= MAX_SEQUENCE:
        return RacpRequest.report_all()
    return RacpRequest.report_from(last_seq if anchored else last_seq + 1)


def anchor_of(measurement: Decoded[GlucoseMeasurement]) -> str:
    """What a record says, but for its number: its readings' kinds, values and device stamps."""
    return ";".join(
        f"{r.metric}={r.value!r}@{'' if r.measured_at is None else r.measured_at.isoformat()}"
        for r in measurement.readings
    )


def is_anchor(
    measurement: Decoded[GlucoseMeasurement], last_seq: int | None, anchor: str | None
) -> bool:
    """Whether the first record of an anchored transfer is the last one stored, unchanged."""
    return measurement.record.sequence_number == last_seq and anchor_of(measurement) == anchor


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
    lose a record nor make the gateway fetch a stored one again. Beside it, the record's anchor
    (:func:`anchor_of`); a position written before anchors existed has none, and is asked from
    the record after it, as then.
    """

    PREFIX = "glucose_seq:"
    ANCHOR_PREFIX = "glucose_anchor:"

    def __init__(self, outbox: Outbox) -> None:
        self._last: dict[str, int] = {
            key.removeprefix(self.PREFIX): int(value)
            for key, value in outbox.state(self.PREFIX).items()
        }
        self._anchors: dict[str, str] = {
            key.removeprefix(self.ANCHOR_PREFIX): value
            for key, value in outbox.state(self.ANCHOR_PREFIX).items()
        }

    def last(self, address: str) -> int | None:
        return self._last.get(address.upper())

    def anchor(self, address: str) -> str | None:
        return self._anchors.get(address.upper())

    def entry(
        self, address: str, sequence_number: int, anchor: str | None = None
    ) -> dict[str, str]:
        entry = {f"{self.PREFIX}{address.upper()}": str(sequence_number)}
        if anchor is not None:
            entry[f"{self.ANCHOR_PREFIX}{address.upper()}"] = anchor
        return entry

    def stored(self, address: str, sequence_number: int, anchor: str | None = None) -> None:
        """Note a position the outbox has committed."""
        self._last[address.upper()] = sequence_number
        if anchor is not None:
            self._anchors[address.upper()] = anchor

    def snapshot(self) -> dict[str, int]:
        return dict(self._last)
