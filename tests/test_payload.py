import json
from datetime import UTC, datetime, timedelta

import pytest

from telemon.checks import InvalidValue
from telemon.metrics import METRICS
from telemon.observation import Observation
from telemon.payload import (
    MAX_BATCH,
    MAX_PAYLOAD_BYTES,
    DeviceHealth,
    GatewayConfig,
    GatewayStatus,
    PairedDevice,
    PayloadError,
    RejectReason,
    encode_observations,
    offline_will,
)
from telemon.payload_schema import ObservationItem, decode_observations, decode_status
from telemon.system_id import NO_SYSTEM_ID, from_eui48, is_known
from telemon.time_correction import TimeBasis, TimeCorrection
from telemon.topics import Channel, parse_topic, subscription, topic

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TOPIC = "telemon/v1/gw/gw-0001/obs"


def item(**overrides):
    base = {
        "seq": 1,
        "device_id": "C0:FF:EE:00:00:01",
        "patient_id": "P0001",
        "metric": "spo2",
        "value": 96.0,
        "unit": "%",
        "measured_at": "2026-11-23T11:59:00Z",
    }
    base.update(overrides)
    return base


def message(*items, **envelope):
    body = {"v": 1, "gateway_id": "gw-0001", "observations": list(items)}
    body.update(envelope)
    return json.dumps(body).encode()


def test_round_trip_of_every_metric_at_both_plausibility_edges():
    observations = [
        Observation(
            gateway_id="gw-0001",
            seq=i,
            device_id="dev-1",
            patient_id="P0001",
            metric=m.key,
            value=value,
            unit=m.unit,
            measured_at=NOW - timedelta(minutes=i),
            flags=("gateway_time",),
            context={"meal": "preprandial"},
        )
        for i, (m, value) in enumerate(
            (m, v) for m in METRICS.values() for v in (m.plausible_min, m.plausible_max)
        )
    ]
    decoded = decode_observations(TOPIC, encode_observations("gw-0001", observations), now=NOW)
    assert decoded.rejected == []
    # Items of the message: the observations less the gateway id, which the envelope carries.
    assert decoded.gateway_id == "gw-0001"
    assert all(isinstance(o, ObservationItem) for o in decoded.observations)
    assert [o.wire_item() for o in decoded.observations] == [o.wire_item() for o in observations]


def test_gateway_time_flag_is_exposed():
    decoded = decode_observations(TOPIC, message(item(flags=["gateway_time"])), now=NOW)
    assert decoded.observations[0].time_from_gateway


@pytest.mark.parametrize(
    ("bad_item", "reason", "fragment"),
    [
        (item(value="ninety"), RejectReason.INVALID_OBSERVATION, "value"),
        (item(seq=-1), RejectReason.INVALID_OBSERVATION, "seq"),
        (item(measured_at="yesterday"), RejectReason.INVALID_OBSERVATION, "measured_at"),
        (item(measured_at="2026-11-23T11:59:00"), RejectReason.INVALID_OBSERVATION, "timezone"),
        (
            {k: v for k, v in item().items() if k != "patient_id"},
            RejectReason.INVALID_OBSERVATION,
            "patient_id",
        ),
        (item(metric="mood"), RejectReason.UNKNOWN_METRIC, "'mood'"),
        (item(unit="mmHg"), RejectReason.WRONG_UNIT, "'%'"),
        (item(value=101.0), RejectReason.OUT_OF_RANGE, "[50, 100]"),
        (item(metric="glucose", unit="mg/dL", value=1e300), RejectReason.OUT_OF_RANGE, "glucose"),
        (item(measured_at="2026-11-23T12:30:00Z"), RejectReason.FUTURE_TIMESTAMP, "ahead"),
        (item(measured_at="2000-01-01T00:00:00Z"), RejectReason.IMPLAUSIBLE_TIMESTAMP, "clock"),
        (item(flags=["feels_bad"]), RejectReason.INVALID_OBSERVATION, "feels_bad"),
        (item(extra_field=1), RejectReason.INVALID_OBSERVATION, "extra_field"),
        (item(gateway_id="gw-0002"), RejectReason.INVALID_OBSERVATION, "envelope"),
        ("not an object", RejectReason.INVALID_OBSERVATION, "expected an object"),
        (item(device_id="bad id with spaces"), RejectReason.INVALID_OBSERVATION, "device_id"),
        (item(context={"meal": "a\u0000b"}), RejectReason.INVALID_OBSERVATION, "context"),
        (item(metric={"not": "hashable"}), RejectReason.UNKNOWN_METRIC, "unknown metric"),
        (item(seq=True), RejectReason.INVALID_OBSERVATION, "seq"),
        (item(value="97"), RejectReason.INVALID_OBSERVATION, "value"),
        (item(measured_at=1763895600), RejectReason.INVALID_OBSERVATION, "measured_at"),
    ],
)
def test_bad_item_is_rejected_with_reason_and_neighbours_are_kept(bad_item, reason, fragment):
    decoded = decode_observations(TOPIC, message(item(seq=1), bad_item, item(seq=3)), now=NOW)
    assert [o.seq for o in decoded.observations] == [1, 3]
    (rejected,) = decoded.rejected
    assert rejected.index == 1
    assert rejected.reason is reason
    assert fragment in rejected.detail
    assert rejected.detail.startswith("observations[1]")


@pytest.mark.parametrize("bad", [None, item(seq=9, measured_at="2026-11-23T12:30:00Z")])
def test_span_is_the_earliest_and_latest_valid_measurement(bad):
    items = [
        item(seq=1, measured_at="2026-11-23T11:40:00Z"),
        item(seq=2, measured_at="2026-11-23T11:00:00Z"),
        item(seq=3, measured_at="2026-11-23T11:50:00Z"),
    ]
    decoded = decode_observations(TOPIC, message(*items, *([bad] if bad else [])), now=NOW)
    assert [o.seq for o in decoded.observations] == [1, 2, 3]
    assert decoded.span == (
        datetime(2026, 11, 23, 11, 0, tzinfo=UTC),
        datetime(2026, 11, 23, 11, 50, tzinfo=UTC),
    )


@pytest.mark.parametrize(
    ("payload", "topic_name", "reason", "fragment"),
    [
        (b"{not json", TOPIC, RejectReason.MALFORMED_JSON, ""),
        (
            b'{"v":1,"gateway_id":"gw-0001","observations":[{"value":NaN}]}',
            TOPIC,
            RejectReason.MALFORMED_JSON,
            "NaN",
        ),
        (b"[]", TOPIC, RejectReason.INVALID_SCHEMA, "(root)"),
        (message(item(), v=3), TOPIC, RejectReason.UNSUPPORTED_VERSION, "speaks 1, 2"),
        # An unhashable version once escaped as a TypeError (a set lookup), not a reason.
        (message(item(), v={"major": 2}), TOPIC, RejectReason.UNSUPPORTED_VERSION, "major"),
        (message(item(), v=[2]), TOPIC, RejectReason.UNSUPPORTED_VERSION, "[2]"),
        (message(item(), gateway_id="gw-0002"), TOPIC, RejectReason.TOPIC_MISMATCH, "gw-0002"),
        (message(item()), "telemon/v1/gw/gw-0001/status", RejectReason.TOPIC_MISMATCH, "obs"),
        (message(item()), "other/topic", RejectReason.TOPIC_MISMATCH, "not a telemon"),
        (message(), TOPIC, RejectReason.INVALID_SCHEMA, "empty"),
        (
            json.dumps({"v": 1, "gateway_id": "gw-0001"}).encode(),
            TOPIC,
            RejectReason.INVALID_SCHEMA,
            "observations",
        ),
        (
            message(*[item(seq=i) for i in range(MAX_BATCH + 1)]),
            TOPIC,
            RejectReason.BATCH_TOO_LARGE,
            str(MAX_BATCH),
        ),
        (b" " * (MAX_PAYLOAD_BYTES + 1), TOPIC, RejectReason.PAYLOAD_TOO_LARGE, "bytes"),
        (b"[" * 100_000 + b"]" * 100_000, TOPIC, RejectReason.MALFORMED_JSON, ""),
    ],
)
def test_unusable_message_raises_precise_error(payload, topic_name, reason, fragment):
    with pytest.raises(PayloadError) as caught:
        decode_observations(topic_name, payload, now=NOW)
    assert caught.value.reason is reason
    assert fragment in caught.value.detail


CORRECTED = {
    "basis": "corrected",
    "device_time": "2026-11-23T11:29:00",
    "zone": "Europe/Rome",
    "utc_offset_min": 60,
    "dst": False,
    "clock_offset_s": -1800,
    "clock_source": "current_time",
    "applied_s": -1800,
}


def test_version_2_carries_the_time_correction_and_version_1_is_still_read():
    obs = Observation(
        gateway_id="gw-0001",
        **item(measured_at=NOW - timedelta(minutes=1), received_at=NOW),
        time=TimeCorrection.from_wire(CORRECTED),
    )
    wire = json.loads(encode_observations("gw-0001", [obs]))
    assert wire["v"] == 2 and wire["observations"][0]["time"] == CORRECTED
    [back] = decode_observations(TOPIC, json.dumps(wire).encode(), now=NOW).observations
    assert back.time.wire() == CORRECTED and back.time.basis is TimeBasis.CORRECTED
    # An older gateway's message: no time record, every reading kept.
    old = decode_observations(TOPIC, message(item(), item(seq=2)), now=NOW)
    assert [o.time for o in old.observations] == [None, None] and not old.rejected
    # A version 1 message cannot carry what only version 2 has: that item alone is refused.
    mixed = decode_observations(TOPIC, message(item(), item(seq=2, time=CORRECTED)), now=NOW)
    assert [o.seq for o in mixed.observations] == [1]
    [refused] = mixed.rejected
    assert refused.reason is RejectReason.INVALID_OBSERVATION and "version 2" in refused.detail


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"basis": "guessed"}, "basis"),
        ({"utc_offset_min": 24 * 60}, "utc_offset_min"),
        ({"device_time": "2026-11-23T11:29:00\u0000"}, "device_time"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_bad_time_record_rejects_its_item_only(change, fragment):
    bad = item(seq=2, time=CORRECTED | change)
    decoded = decode_observations(TOPIC, message(item(), bad, v=2), now=NOW)
    assert [o.seq for o in decoded.observations] == [1]
    [refused] = decoded.rejected
    assert refused.reason is RejectReason.INVALID_OBSERVATION and fragment in refused.detail


def test_encoder_refuses_foreign_observations():
    obs = Observation(
        gateway_id="gw-0002",
        seq=1,
        device_id="d",
        patient_id="P",
        metric="spo2",
        value=97,
        unit="%",
        measured_at=NOW,
    )
    with pytest.raises(ValueError, match="gw-0002"):
        encode_observations("gw-0001", [obs])


def test_status_round_trip_and_last_will():
    status = GatewayStatus(
        gateway_id="gw-0001",
        state="online",
        version="0.1.0",
        outbox_depth=3,
        recoveries={"scanner_restart": 1},
    )
    topic_name = topic("gw-0001", Channel.STATUS)
    assert _dumped(decode_status(topic_name, status.encode())) == json.loads(status.encode())
    assert decode_status(topic_name, offline_will("gw-0001")).state == "offline"
    with pytest.raises(PayloadError) as caught:
        decode_status("telemon/v1/gw/gw-0009/status", status.encode())
    assert caught.value.reason is RejectReason.TOPIC_MISMATCH


def test_status_carries_the_phg_and_device_identities_and_older_ones_still_decode():
    topic_name = topic("gw-0001", Channel.STATUS)
    status = GatewayStatus(
        gateway_id="gw-0001",
        state="online",
        system_id="00-1A-7D-FF-FE-DA-71-13",
        devices=[
            DeviceHealth(
                device_id="C0:FF:EE:00:00:01",
                kind="glucometer",
                system_id="02-4D-53-FF-FE-00-00-01",
                manufacturer_name="Medisim",
                model_number="MS-GL50",
                serial_number="GL50EE000001",
                firmware_revision="3.0.2",
            )
        ],
    )
    assert _dumped(decode_status(topic_name, status.encode())) == json.loads(status.encode())
    # A gateway from before issue 19 sends none of them.
    older = (
        b'{"v":1,"gateway_id":"gw-0001","state":"online","devices":[{"device_id":'
        b'"C0:FF:EE:00:00:01","kind":"glucometer","battery_pct":80}]}'
    )
    decoded = decode_status(topic_name, older)
    assert decoded.system_id is None and decoded.devices[0].serial_number is None
    # A system id not written as the IG writes it is refused, saying where.
    bad = json.loads(status.encode())
    bad["devices"][0]["system_id"] = "024d53fffe000001"
    with pytest.raises(PayloadError) as caught:
        decode_status(topic_name, json.dumps(bad).encode())
    assert caught.value.reason is RejectReason.INVALID_SCHEMA
    assert "devices.0.system_id" in caught.value.detail


def test_system_id_from_an_eui48_inserts_ff_fe():
    assert from_eui48("00:1a:7d:da:71:13") == "00-1A-7D-FF-FE-DA-71-13"
    assert from_eui48("00-1A-7D-DA-71-13") == "00-1A-7D-FF-FE-DA-71-13"
    with pytest.raises(ValueError, match="48-bit"):
        from_eui48("00:1A:7D:DA:71")
    assert not is_known(NO_SYSTEM_ID) and not is_known(None) and is_known("00-1A-7D-FF-FE-DA-71-13")


def test_topics():
    assert topic("gw-0001", Channel.OBS) == TOPIC
    assert parse_topic(TOPIC).gateway_id == "gw-0001"
    assert subscription(Channel.OBS, shared_group="ingest") == "$share/ingest/telemon/v1/gw/+/obs"
    with pytest.raises(ValueError):
        topic("gw/+/#", Channel.OBS)


def _dumped(status):
    return json.loads(status.model_dump_json(exclude_none=True))


def test_gateway_config_round_trip_and_limits():
    config = GatewayConfig(
        gateway_id="gw-0001",
        revision=2,
        devices=[PairedDevice(address="C0:FF:EE:00:00:01", kind="glucometer", patient_id="P1")],
    )
    assert GatewayConfig.decode(config.encode()) == config
    with pytest.raises(InvalidValue, match="kind"):
        PairedDevice(address="C0:FF:EE:00:00:01", kind="toaster", patient_id="P1")
    with pytest.raises(InvalidValue, match="revision"):
        GatewayConfig(gateway_id="gw-0001", revision=-1)
