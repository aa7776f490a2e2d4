"""An oximeter's spot-check memory and how it reads Record Access Control Point requests.

Pure: no Bluetooth. PLXS stored spot checks carry no sequence number, so its RACP knows one
operator, "All records" (the Null operator for Abort), and no filter: every request is an op
code and an operator, two bytes. A request the oximeter cannot carry out is refused with the
response code the RACP assigns to the problem: op code, then operator, then operand.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

from firmware_sim.devices.glucose_records import RacpRefusal
from gateway.gatt import (
    PlxMeasurementStatus,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseValue,
    decode_plx_spot_check,
)

__all__ = ["PlxRecordStore", "as_stored", "parse_plx_request"]

SUPPORTED_OP_CODES = frozenset(
    {
        RacpOpCode.REPORT_STORED_RECORDS,
        RacpOpCode.DELETE_STORED_RECORDS,
        RacpOpCode.ABORT_OPERATION,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
    }
)
REQUEST_SIZE = 2  # op code, operator: PLXS defines no operand


def parse_plx_request(payload: bytes, op_codes: frozenset[RacpOpCode]) -> RacpRequest:
    """The request in ``payload``, or :class:`RacpRefusal` saying why the oximeter cannot do it."""
    op_code = payload[0] if payload else 0
    if op_code not in op_codes:
        raise RacpRefusal(op_code, RacpResponseValue.OP_CODE_NOT_SUPPORTED)
    operator = payload[1] if len(payload) > 1 else None
    abort = op_code == RacpOpCode.ABORT_OPERATION
    wanted = RacpOperator.NULL if abort else RacpOperator.ALL_RECORDS
    if operator != wanted:
        # An operator the RACP defines but PLXS does not use, or no operator at all.
        known = operator is not None and operator in set(RacpOperator)
        if known and operator != RacpOperator.NULL and wanted is RacpOperator.ALL_RECORDS:
            raise RacpRefusal(op_code, RacpResponseValue.OPERATOR_NOT_SUPPORTED)
        raise RacpRefusal(op_code, RacpResponseValue.INVALID_OPERATOR)
    if len(payload) != REQUEST_SIZE:
        raise RacpRefusal(op_code, RacpResponseValue.INVALID_OPERAND)
    return RacpRequest(RacpOpCode(op_code), RacpOperator(operator))


def as_stored(payload: bytes) -> bytes:
    """A spot check as it comes out of memory: Measurement Status bit 9, "Data from Measurement
    Storage", set (the field added if the live value had none)."""
    measurement = decode_plx_spot_check(payload)
    status = measurement.measurement_status or PlxMeasurementStatus(0)
    return replace(
        measurement, measurement_status=status | PlxMeasurementStatus.DATA_FROM_MEASUREMENT_STORAGE
    ).encode()


class PlxRecordStore:
    """Stored spot checks, oldest first; when full the oldest is overwritten."""

    def __init__(self, capacity: int) -> None:
        self._records: deque[bytes] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._records)

    def add(self, payload: bytes) -> None:
        self._records.append(as_stored(payload))

    def all(self) -> list[bytes]:
        return list(self._records)

    def clear(self) -> None:
        self._records.clear()
