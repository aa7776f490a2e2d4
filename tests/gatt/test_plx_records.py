"""PLX Features (0x2A60) and the stored spot check, byte by byte (PLXS v1.0.1)."""

from __future__ import annotations

from datetime import datetime

import pytest

from firmware_sim.devices.glucose_records import RacpRefusal
from firmware_sim.devices.plx_records import SUPPORTED_OP_CODES, as_stored, parse_plx_request
from gateway.gatt import (
    DecodeError,
    PlxFeatures,
    PlxMeasurementStatus,
    PlxSupportedFeatures,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpResponseValue,
    decode_all,
    decode_plx_features,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def test_features_with_storage_and_both_support_fields() -> None:
    # Supported Features 0x000F: status support fields present (bits 0, 1), spot-check storage
    # (bit 2), spot-check time stamp (bit 3); Measurement Status Support 0x0200 (storage bit 9);
    # Device and Sensor Status Support 0x000820 (low perfusion, sensor unconnected).
    payload = h("0F00 0002 200800")
    features = decode_plx_features(payload)
    assert features.stores_spot_checks
    assert PlxSupportedFeatures.SPOT_CHECK_TIMESTAMP in features.supported
    assert features.measurement_status_support == PlxMeasurementStatus(0x0200)
    assert int(features.device_sensor_status_support or 0) == 0x000820
    assert features.encode() == payload


def test_features_without_support_fields_is_two_bytes() -> None:
    features = decode_plx_features(h("0400"))  # storage only
    assert features.stores_spot_checks
    assert features.measurement_status_support is None
    assert features.encode() == h("0400")
    assert not decode_plx_features(h("0800")).stores_spot_checks


@pytest.mark.parametrize(
    ("payload", "field"),
    [("01", "supported features"), ("0100 00", "measurement status support"), ("0E00", None)],
)
def test_features_truncated_or_promised_fields_missing(payload: str, field: str | None) -> None:
    # 0x000E promises no Measurement Status Support but the Device and Sensor Status Support.
    with pytest.raises(DecodeError) as caught:
        decode_plx_features(h(payload))
    assert caught.value.characteristic == "plx_features"
    if field:
        assert field in str(caught.value)


def test_features_trailing_bytes_are_refused() -> None:
    with pytest.raises(DecodeError):
        decode_plx_features(h("0400 00"))


def test_a_stored_spot_check_gets_status_bit_9_and_keeps_its_timestamp() -> None:
    # Live: flags 0x01 (timestamp), SpO2 95, PR 61, 2024-03-05 06:30:00.
    live = h("01 5F00 3D00 E807 03 05 06 1E 00")
    stored = as_stored(live)
    # Flags 0x03 adds the Measurement Status field: 0x0200, Data from Measurement Storage.
    assert stored == h("03 5F00 3D00 E807 03 05 06 1E 00 0002")
    decoded = decode_all("2a5e", stored)
    assert {r.metric: r.value for r in decoded.readings} == {"spo2": 95.0, "pulse_rate": 61.0}
    assert decoded.readings[0].measured_at == datetime(2024, 3, 5, 6, 30)
    assert decoded.readings[0].flags == ("from_device_storage",)


def test_plx_racp_requests_are_op_code_and_operator() -> None:
    assert RacpRequest.count_all().encode() == h("0401")
    assert RacpRequest.report_all().encode() == h("0101")
    assert RacpRequest.delete_all().encode() == h("0201")
    assert RacpRequest.abort().encode() == h("0300")
    assert parse_plx_request(h("0201"), SUPPORTED_OP_CODES) == RacpRequest.delete_all()


@pytest.mark.parametrize(
    ("payload", "refusal"),
    [
        ("0103", RacpResponseValue.OPERATOR_NOT_SUPPORTED),  # ">=": no filter in PLXS
        ("0100", RacpResponseValue.INVALID_OPERATOR),  # Null for a record request
        ("0109", RacpResponseValue.INVALID_OPERATOR),  # not an operator
        ("0301", RacpResponseValue.INVALID_OPERATOR),  # abort takes Null
        ("010101", RacpResponseValue.INVALID_OPERAND),  # an operand where none is defined
        ("0701", RacpResponseValue.OP_CODE_NOT_SUPPORTED),
    ],
)
def test_plx_racp_refusals(payload: str, refusal: RacpResponseValue) -> None:
    with pytest.raises(RacpRefusal) as caught:
        parse_plx_request(h(payload), SUPPORTED_OP_CODES)
    assert caught.value.value is refusal


def test_a_unit_that_cannot_delete_says_so() -> None:
    keeps = SUPPORTED_OP_CODES - {RacpOpCode.DELETE_STORED_RECORDS}
    with pytest.raises(RacpRefusal) as caught:
        parse_plx_request(h("0201"), keeps)
    assert caught.value.value is RacpResponseValue.OP_CODE_NOT_SUPPORTED
    assert parse_plx_request(h("0101"), keeps).operator is RacpOperator.ALL_RECORDS


def test_features_round_trip() -> None:
    features = PlxFeatures(PlxSupportedFeatures.SPOT_CHECK_STORAGE)
    assert decode_plx_features(features.encode()) == features
