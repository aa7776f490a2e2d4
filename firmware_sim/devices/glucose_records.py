"""A glucose meter's memory and how it answers Record Access Control Point requests.

Pure: no Bluetooth. Records carry 16-bit sequence numbers that go up by one per reading and
survive reconnections (GLS). A request the meter cannot carry out is refused with the response
code GLS assigns to the problem, checked in the order the specification lists them: op code,
operator, filter type, operand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from gateway.gatt import (
    DecodeError,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    RacpFilterType,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseValue,
    decode_racp,
)

__all__ = ["GlucoseRecord", "GlucoseRecordStore", "RacpRefusal", "parse_request"]

SEQUENCE_MODULUS = 1 << 16

# Deleting records is optional in GLS; like many meters, this one keeps its memory.
SUPPORTED_OP_CODES = frozenset(
    {
        RacpOpCode.REPORT_STORED_RECORDS,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
        RacpOpCode.ABORT_OPERATION,
    }
)
SUPPORTED_FILTERS = frozenset({RacpFilterType.SEQUENCE_NUMBER})
_FILTERED = frozenset(
    {
        RacpOperator.LESS_THAN_OR_EQUAL_TO,
        RacpOperator.GREATER_THAN_OR_EQUAL_TO,
        RacpOperator.WITHIN_RANGE_OF,
    }
)


@dataclass(frozen=True, slots=True)
class GlucoseRecord:
    measurement: GlucoseMeasurement
    context: GlucoseMeasurementContext | None = None

    @property
    def sequence_number(self) -> int:
        return self.measurement.sequence_number


class RacpRefusal(Exception):
    """A request answered with a Response Code other than Success."""

    def __init__(self, op_code: int, value: RacpResponseValue) -> None:
        super().__init__(f"op code {op_code}: {value.name}")
        self.op_code = op_code
        self.value = value


def parse_request(payload: bytes) -> RacpRequest:
    """The request in ``payload``, or :class:`RacpRefusal` saying why the meter cannot do it."""
    op_code = payload[0] if payload else 0
    if op_code not in SUPPORTED_OP_CODES:
        raise RacpRefusal(op_code, RacpResponseValue.OP_CODE_NOT_SUPPORTED)
    operator = payload[1] if len(payload) > 1 else None
    # Abort takes the Null operator and nothing else; record requests any operator but Null.
    takes_null = op_code == RacpOpCode.ABORT_OPERATION
    if operator not in set(RacpOperator) or (operator == RacpOperator.NULL) != takes_null:
        raise RacpRefusal(op_code, RacpResponseValue.INVALID_OPERATOR)
    if operator in _FILTERED:
        if len(payload) < 3:
            raise RacpRefusal(op_code, RacpResponseValue.INVALID_OPERAND)
        if payload[2] not in SUPPORTED_FILTERS:
            raise RacpRefusal(op_code, RacpResponseValue.OPERAND_NOT_SUPPORTED)
    try:
        request = decode_racp(payload)
    except DecodeError:
        raise RacpRefusal(op_code, RacpResponseValue.INVALID_OPERAND) from None
    assert isinstance(request, RacpRequest)
    if request.operator is RacpOperator.WITHIN_RANGE_OF:
        low, high = request.operand[0], request.operand[1]
        # Sequence numbers, the one filter supported (checked above).
        assert isinstance(low, int) and isinstance(high, int)
        if low > high:
            raise RacpRefusal(op_code, RacpResponseValue.INVALID_OPERAND)
    return request


Selector = Callable[[Sequence[GlucoseRecord], tuple[int, ...]], Sequence[GlucoseRecord]]

_SELECTORS: MappingProxyType[RacpOperator, Selector] = MappingProxyType(
    {
        RacpOperator.ALL_RECORDS: lambda records, _: records,
        RacpOperator.LESS_THAN_OR_EQUAL_TO: lambda records, operand: [
            r for r in records if r.sequence_number <= operand[0]
        ],
        RacpOperator.GREATER_THAN_OR_EQUAL_TO: lambda records, operand: [
            r for r in records if r.sequence_number >= operand[0]
        ],
        RacpOperator.WITHIN_RANGE_OF: lambda records, operand: [
            r for r in records if operand[0] <= r.sequence_number <= operand[1]
        ],
        RacpOperator.FIRST_RECORD: lambda records, _: records[:1],
        RacpOperator.LAST_RECORD: lambda records, _: records[-1:],
    }
)


class GlucoseRecordStore:
    """The meter's memory, oldest first; when full the oldest record is overwritten."""

    def __init__(self, capacity: int = 500, first_sequence_number: int = 0) -> None:
        self._records: deque[GlucoseRecord] = deque(maxlen=capacity)
        self._next = first_sequence_number % SEQUENCE_MODULUS

    def __len__(self) -> int:
        return len(self._records)

    def take_sequence_number(self) -> int:
        number = self._next
        # A uint16 on the wire; a meter would need 65,536 readings to wrap around.
        self._next = (number + 1) % SEQUENCE_MODULUS
        return number

    def restart_numbering(self, first_sequence_number: int = 0, *, clear: bool = True) -> None:
        """What a reset or a firmware update does to some meters: the counter starts again
        (lower), and the memory is wiped unless ``clear`` is False."""
        if clear:
            self._records.clear()
        self._next = first_sequence_number % SEQUENCE_MODULUS

    def add(self, record: GlucoseRecord) -> None:
        self._records.append(record)

    def select(self, request: RacpRequest) -> Sequence[GlucoseRecord]:
        operand = tuple(value for value in request.operand if isinstance(value, int))
        return _SELECTORS[request.operator](list(self._records), operand)
