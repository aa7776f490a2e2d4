"""Record Access Control Point (0x2A52) as the Glucose Service uses it (GLS v1.0.1 and
the GATT Specification Supplement); the Pulse Oximeter Service uses the subset without operands
(PLXS: "All records", and Null for Abort).

Every RACP value is Op Code (uint8), Operator (uint8), Operand. The gateway writes requests and
receives responses as indications; the simulated glucose meter does the reverse, so both
directions encode and decode. :func:`decode_racp` tells them apart by op code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import TypeVar

from gateway.gatt.datetime_field import SIZE as DATE_TIME_SIZE
from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.errors import DecodeError, EncodeError, InvalidField
from gateway.gatt.fields import enum_member
from gateway.gatt.model import Decoded
from gateway.gatt.reader import ByteReader
from gateway.gatt.uuids import CharacteristicUuid

E = TypeVar("E", bound=IntEnum)

CHARACTERISTIC = CharacteristicUuid.RECORD_ACCESS_CONTROL_POINT.label


class RacpOpCode(IntEnum):
    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class RacpOperator(IntEnum):
    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_THAN_OR_EQUAL_TO = 0x02
    GREATER_THAN_OR_EQUAL_TO = 0x03
    WITHIN_RANGE_OF = 0x04  # inclusive
    FIRST_RECORD = 0x05
    LAST_RECORD = 0x06


class RacpFilterType(IntEnum):
    SEQUENCE_NUMBER = 0x01  # uint16
    USER_FACING_TIME = 0x02  # base time + time offset, as a Date Time


class RacpResponseValue(IntEnum):
    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


# How many filter values each operator carries after the filter type (None: no filter at all).
_OPERAND_COUNT: MappingProxyType[RacpOperator, int | None] = MappingProxyType(
    {
        RacpOperator.NULL: None,
        RacpOperator.ALL_RECORDS: None,
        RacpOperator.LESS_THAN_OR_EQUAL_TO: 1,
        RacpOperator.GREATER_THAN_OR_EQUAL_TO: 1,
        RacpOperator.WITHIN_RANGE_OF: 2,
        RacpOperator.FIRST_RECORD: None,
        RacpOperator.LAST_RECORD: None,
    }
)

# Which operators each request op code accepts (GLS: abort takes only the Null operator).
_RECORD_OPERATORS = frozenset(_OPERAND_COUNT) - {RacpOperator.NULL}
_REQUEST_OPERATORS: MappingProxyType[RacpOpCode, frozenset[RacpOperator]] = MappingProxyType(
    {
        RacpOpCode.REPORT_STORED_RECORDS: _RECORD_OPERATORS,
        RacpOpCode.DELETE_STORED_RECORDS: _RECORD_OPERATORS,
        RacpOpCode.ABORT_OPERATION: frozenset({RacpOperator.NULL}),
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS: _RECORD_OPERATORS,
    }
)

FilterValue = int | GattDateTime


@dataclass(frozen=True, slots=True)
class RacpRequest:
    op_code: RacpOpCode
    operator: RacpOperator
    filter_type: RacpFilterType | None = None
    operand: tuple[FilterValue, ...] = ()

    @classmethod
    def report_all(cls) -> RacpRequest:
        return cls(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)

    @classmethod
    def report_from(cls, sequence_number: int) -> RacpRequest:
        """Report stored records with sequence number >= ``sequence_number``."""
        return cls(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.GREATER_THAN_OR_EQUAL_TO,
            RacpFilterType.SEQUENCE_NUMBER,
            (sequence_number,),
        )

    @classmethod
    def count_all(cls) -> RacpRequest:
        return cls(RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.ALL_RECORDS)

    @classmethod
    def count_from(cls, sequence_number: int) -> RacpRequest:
        return cls(
            RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
            RacpOperator.GREATER_THAN_OR_EQUAL_TO,
            RacpFilterType.SEQUENCE_NUMBER,
            (sequence_number,),
        )

    @classmethod
    def delete_all(cls) -> RacpRequest:
        return cls(RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.ALL_RECORDS)

    @classmethod
    def abort(cls) -> RacpRequest:
        return cls(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL)

    def encode(self) -> bytes:
        if self.operator not in _REQUEST_OPERATORS.get(self.op_code, frozenset()):
            raise EncodeError(f"{self.op_code.name} does not take operator {self.operator.name}")
        count = _OPERAND_COUNT[self.operator]
        head = bytes((self.op_code, self.operator))
        if count is None:
            if self.filter_type is not None or self.operand:
                raise EncodeError(f"operator {self.operator.name} takes no operand")
            return head
        if self.filter_type is None or len(self.operand) != count:
            raise EncodeError(
                f"operator {self.operator.name} takes a filter type and {count} value(s)"
            )
        return (
            head
            + bytes((self.filter_type,))
            + b"".join(_pack_filter_value(self.filter_type, value) for value in self.operand)
        )


@dataclass(frozen=True, slots=True)
class RacpRecordCount:
    """Number of Stored Records Response: op code 0x05, operator Null, uint16 count."""

    count: int

    def encode(self) -> bytes:
        if not 0 <= self.count <= 0xFFFF:
            raise EncodeError(f"record count {self.count} does not fit a uint16")
        return bytes((RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE, RacpOperator.NULL)) + (
            self.count.to_bytes(2, "little")
        )


@dataclass(frozen=True, slots=True)
class RacpResponse:
    """Response Code: op code 0x06, operator Null, the request op code and the response value.

    ``request_op_code`` stays a plain int when the device echoes an op code we do not know (the
    answer to one is 'Op Code not supported').
    """

    request_op_code: RacpOpCode | int
    value: RacpResponseValue

    @property
    def succeeded(self) -> bool:
        return self.value is RacpResponseValue.SUCCESS

    def encode(self) -> bytes:
        if not 0 <= self.request_op_code <= 0xFF:
            raise EncodeError(f"request op code {self.request_op_code} does not fit a uint8")
        return bytes(
            (RacpOpCode.RESPONSE_CODE, RacpOperator.NULL, self.request_op_code, self.value)
        )


RacpMessage = RacpRequest | RacpRecordCount | RacpResponse


def _pack_filter_value(filter_type: RacpFilterType, value: FilterValue) -> bytes:
    if filter_type is RacpFilterType.SEQUENCE_NUMBER and isinstance(value, int):
        if not 0 <= value <= 0xFFFF:
            raise EncodeError(f"sequence number {value} does not fit a uint16")
        return value.to_bytes(2, "little")
    if filter_type is RacpFilterType.USER_FACING_TIME and isinstance(value, GattDateTime):
        return value.pack()
    raise EncodeError(f"{value!r} is not a {filter_type.name} filter value")


def _enum_at(reader: ByteReader, enum_type: type[E], field: str) -> E:
    offset = reader.offset
    raw = reader.uint(1, field)
    try:
        return enum_member(enum_type, raw)
    except InvalidField as exc:
        raise DecodeError(CHARACTERISTIC, offset, f"field {field!r}: {exc}") from None


def _read_filter_value(reader: ByteReader, filter_type: RacpFilterType) -> FilterValue:
    if filter_type is RacpFilterType.SEQUENCE_NUMBER:
        return reader.uint(2, "sequence number")
    offset = reader.offset
    try:
        return GattDateTime.unpack(reader.take(DATE_TIME_SIZE, "user facing time"))
    except InvalidField as exc:
        raise DecodeError(CHARACTERISTIC, offset, f"field 'user facing time': {exc}") from None


def _decode_request(reader: ByteReader, op_code: RacpOpCode) -> RacpRequest:
    operator_offset = reader.offset
    operator = _enum_at(reader, RacpOperator, "operator")
    if operator not in _REQUEST_OPERATORS[op_code]:
        raise DecodeError(
            CHARACTERISTIC, operator_offset, f"{op_code.name} does not take {operator.name}"
        )
    count = _OPERAND_COUNT[operator]
    if count is None:
        return RacpRequest(op_code, operator)
    filter_type = _enum_at(reader, RacpFilterType, "filter type")
    operand = tuple(_read_filter_value(reader, filter_type) for _ in range(count))
    return RacpRequest(op_code, operator, filter_type, operand)


def _expect_null_operator(reader: ByteReader) -> None:
    if reader.uint(1, "operator") != RacpOperator.NULL:
        raise reader.error("responses carry the Null operator", offset=reader.offset - 1)


def _decode_record_count(reader: ByteReader, op_code: RacpOpCode) -> RacpRecordCount:
    _expect_null_operator(reader)
    return RacpRecordCount(reader.uint(2, "number of records"))


def _decode_response(reader: ByteReader, op_code: RacpOpCode) -> RacpResponse:
    _expect_null_operator(reader)
    request = reader.uint(1, "request op code")
    value = _enum_at(reader, RacpResponseValue, "response code value")
    known = request in set(RacpOpCode)
    return RacpResponse(RacpOpCode(request) if known else request, value)


_DECODERS: MappingProxyType[RacpOpCode, Callable[[ByteReader, RacpOpCode], RacpMessage]] = (
    MappingProxyType(
        {
            **dict.fromkeys(_REQUEST_OPERATORS, _decode_request),
            RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE: _decode_record_count,
            RacpOpCode.RESPONSE_CODE: _decode_response,
        }
    )
)


def decode_racp(payload: bytes) -> RacpMessage:
    reader = ByteReader(CHARACTERISTIC, payload)
    op_code = _enum_at(reader, RacpOpCode, "op code")
    message = _DECODERS[op_code](reader, op_code)
    reader.expect_end()
    return message


def interpret_racp(message: RacpMessage) -> Decoded[RacpMessage]:
    return Decoded(CHARACTERISTIC, message)
