"""The glucose meter: records fetched through the Record Access Control Point."""

from __future__ import annotations

import pytest
from bleak import BleakClient
from bleak.exc import BleakGATTProtocolError

from firmware_sim.devices import SimulatedGlucometer
from gateway.gatt import (
    RacpOpCode,
    RacpRecordCount,
    RacpRequest,
    RacpResponse,
    RacpResponseValue,
    decode_all,
    decode_racp,
)
from telemon.device_kinds import DeviceKind

from .central import Inbox, assert_delivered, connect, uuid
from .conftest import readings_of

GLUCOMETER = DeviceKind.GLUCOMETER
MEASUREMENT = uuid(0x2A18)
CONTEXT = uuid(0x2A34)
RACP = uuid(0x2A52)
CCCD_IMPROPERLY_CONFIGURED = 0xFD
PROCEDURE_ALREADY_IN_PROGRESS = 0xFE


class Session:
    """A connected client subscribed to the meter as a collector does."""

    def __init__(self, client: BleakClient) -> None:
        self.client = client
        self.records = Inbox()
        self.responses = Inbox()

    async def subscribe(self) -> Session:
        await self.client.start_notify(MEASUREMENT, self.records)
        await self.client.start_notify(CONTEXT, self.records)
        await self.client.start_notify(RACP, self.responses)
        return self

    async def ask(self, request: RacpRequest | bytes):
        payload = request if isinstance(request, bytes) else request.encode()
        await self.client.write_gatt_char(RACP, payload, response=True)
        return decode_racp((await self.responses.next())[1])


async def meter_with(link, make, count: int, **options):
    meter = await make(GLUCOMETER, SimulatedGlucometer, **options)
    measurements = readings_of(GLUCOMETER, count)
    for measurement in measurements:
        await meter.record(measurement)
    session = await Session(await connect(link, meter)).subscribe()
    return meter, measurements, session


async def test_report_all_then_from_a_sequence_number(link, make) -> None:
    meter, measurements, session = await meter_with(link, make, 4)
    assert await session.ask(RacpRequest.report_all()) == RacpResponse(
        RacpOpCode.REPORT_STORED_RECORDS, RacpResponseValue.SUCCESS
    )
    for number, measurement in enumerate(measurements):
        record = decode_all(*await session.records.next())
        context = decode_all(*await session.records.next())
        assert record.record.sequence_number == context.record.sequence_number == number
        (reading,) = record.readings
        assert_delivered([reading], measurement, meter)
        assert reading.context["glucose_type"] == "capillary_plasma"
        assert context.record.as_context() == {"meal": "preprandial"}

    assert await session.ask(RacpRequest.report_from(2)) == RacpResponse(
        RacpOpCode.REPORT_STORED_RECORDS, RacpResponseValue.SUCCESS
    )
    numbers = [decode_all(*await session.records.next()).record.sequence_number for _ in "abcd"]
    assert numbers == [2, 2, 3, 3]  # each measurement with its context
    assert session.records.empty()
    await session.client.disconnect()


async def test_counts_and_no_records_found(link, make) -> None:
    _, _, session = await meter_with(link, make, 3)
    assert await session.ask(RacpRequest.count_all()) == RacpRecordCount(3)
    assert await session.ask(RacpRequest.count_from(1)) == RacpRecordCount(2)
    assert await session.ask(RacpRequest.count_from(9)) == RacpRecordCount(0)
    assert await session.ask(RacpRequest.report_from(9)) == RacpResponse(
        RacpOpCode.REPORT_STORED_RECORDS, RacpResponseValue.NO_RECORDS_FOUND
    )
    assert session.records.empty()
    await session.client.disconnect()


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        (b"\x02\x01", RacpResponse(RacpOpCode.DELETE_STORED_RECORDS, 2)),  # delete: unsupported
        (b"\x09\x01", RacpResponse(0x09, RacpResponseValue.OP_CODE_NOT_SUPPORTED)),
        (b"\x01\x00", RacpResponse(RacpOpCode.REPORT_STORED_RECORDS, 3)),  # Null operator
        (b"\x01\x07", RacpResponse(RacpOpCode.REPORT_STORED_RECORDS, 3)),  # unknown operator
        (b"\x03\x01", RacpResponse(RacpOpCode.ABORT_OPERATION, 3)),  # abort takes Null only
        # Filtering on user facing time is optional; this meter filters on sequence numbers.
        (b"\x01\x03\x02\xe9\x07\x03\x03\x00\x00\x00", RacpResponse(1, 9)),
        (b"\x01\x03\x01\x05", RacpResponse(RacpOpCode.REPORT_STORED_RECORDS, 5)),  # truncated
        (b"\x04\x04\x01\x05\x00\x01\x00", RacpResponse(4, 5)),  # range upside down
    ],
)
async def test_requests_it_cannot_serve_get_the_right_response_code(
    link, make, payload: bytes, answer: RacpResponse
) -> None:
    _, _, session = await meter_with(link, make, 1)
    response = await session.ask(payload)
    assert response == RacpResponse(answer.request_op_code, RacpResponseValue(answer.value))
    await session.client.disconnect()


async def test_abort_stops_a_report(link, make) -> None:
    _, _, session = await meter_with(link, make, 20, record_interval=0.05)
    await session.client.write_gatt_char(RACP, RacpRequest.report_all().encode(), response=True)
    await session.records.next()
    # Another request while the report runs is refused at the ATT level ...
    with pytest.raises(BleakGATTProtocolError) as refused:
        await session.client.write_gatt_char(RACP, RacpRequest.count_all().encode(), True)
    assert refused.value.code == PROCEDURE_ALREADY_IN_PROGRESS
    # ... but an abort is taken, and answered instead of the report.
    assert await session.ask(RacpRequest.abort()) == RacpResponse(
        RacpOpCode.ABORT_OPERATION, RacpResponseValue.SUCCESS
    )
    sent = 1
    while not session.records.empty():
        await session.records.next()
        sent += 1
    assert sent < 40  # 20 measurements and their contexts were not all sent
    assert session.responses.empty()
    await session.client.disconnect()


async def test_control_point_needs_its_subscriptions(link, make) -> None:
    meter = await make(GLUCOMETER)
    client = await connect(link, meter)
    with pytest.raises(BleakGATTProtocolError) as refused:
        await client.write_gatt_char(RACP, RacpRequest.report_all().encode(), response=True)
    assert refused.value.code == CCCD_IMPROPERLY_CONFIGURED
    await client.disconnect()


async def test_records_survive_reconnection_and_are_not_pushed(link, make) -> None:
    meter, _, session = await meter_with(link, make, 2)
    assert await session.ask(RacpRequest.report_all()) == RacpResponse(1, 1)
    await session.client.disconnect()
    await meter.wait_disconnected(timeout=5)

    (later,) = readings_of(GLUCOMETER, 3)[2:]
    await meter.record(later)
    session = await Session(await connect(link, meter)).subscribe()
    assert session.records.empty()
    assert await session.ask(RacpRequest.count_all()) == RacpRecordCount(3)
    assert await session.ask(RacpRequest.report_from(2)) == RacpResponse(1, 1)
    record = decode_all(*await session.records.next())
    assert record.record.sequence_number == 2
    assert_delivered(list(record.readings), later, meter)
    await session.client.disconnect()
