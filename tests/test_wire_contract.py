"""The gateway's dataclasses and the server's pydantic models describe the same wire shapes.

The gateway makes its payloads without pydantic (telemon.observation, telemon.time_correction,
telemon.payload: issue 19) and the server validates them with it (telemon.payload_schema). Both
declare the fields, so these tests pin them together: the same names and defaults; whatever the
gateway encodes, the server accepts and gives back unchanged; and whatever item the server
refuses, the gateway refuses too, naming the same field, so the gateway never puts in its outbox
a reading the server would reject for its shape.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from telemon.checks import InvalidValue
from telemon.observation import Observation
from telemon.payload import (
    DeviceHealth,
    GatewayStatus,
    RejectReason,
    encode_observations,
    offline_will,
)
from telemon.payload_schema import (
    DeviceHealthModel,
    GatewayStatusModel,
    ObservationItem,
    TimeCorrectionModel,
    decode_observations,
    decode_status,
)
from telemon.time_correction import ClockSource, LocalTimeIssue, TimeBasis, TimeCorrection
from telemon.topics import Channel, topic

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
GATEWAY = "gw-0001"
OBS_TOPIC = topic(GATEWAY, Channel.OBS)
STATUS_TOPIC = topic(GATEWAY, Channel.STATUS)


def _defaults_of_dataclass(cls: type) -> dict[str, Any]:
    return {
        f.name: _plain(
            f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        )
        for f in dataclasses.fields(cls)
    }


def _defaults_of_model(cls: type[BaseModel]) -> dict[str, Any]:
    return {
        name: _plain(
            dataclasses.MISSING if f.is_required() else f.get_default(call_default_factory=True)
        )
        for name, f in cls.model_fields.items()
    }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value  # () on one side, [] on the other


@pytest.mark.parametrize(
    ("gateway_side", "server_side", "envelope_only"),
    [
        (Observation, ObservationItem, {"gateway_id"}),
        (TimeCorrection, TimeCorrectionModel, set()),
        (DeviceHealth, DeviceHealthModel, set()),
        (GatewayStatus, GatewayStatusModel, set()),
    ],
)
def test_the_same_fields_in_the_same_order_with_the_same_defaults(
    gateway_side: type, server_side: type[BaseModel], envelope_only: set[str]
) -> None:
    ours = {k: v for k, v in _defaults_of_dataclass(gateway_side).items() if k not in envelope_only}
    assert list(ours) == list(server_side.model_fields)
    assert ours == _defaults_of_model(server_side)


EVERY_TIME_FIELD = TimeCorrection(
    basis=TimeBasis.CORRECTED,
    device_time="2026-11-23T11:19:00",
    device_zone_min=60,
    device_dst_min=0,
    device_time_offset_min=-30,
    zone="Europe/Rome",
    utc_offset_min=60,
    dst=False,
    ignores_dst=True,
    local_issue=LocalTimeIssue.REPEATED,
    clock_offset_s=-2400,
    clock_source=ClockSource.CURRENT_TIME,
    applied_s=-2400,
)


def _observations() -> list[Observation]:
    base = {
        "gateway_id": GATEWAY,
        "device_id": "C0:FF:EE:00:00:01",
        "patient_id": "P0001",
        "metric": "spo2",
        "unit": "%",
    }
    return [
        Observation(**base, seq=1, value=96.0, measured_at=NOW - timedelta(minutes=5)),
        Observation(
            **base,
            seq=2,
            value=97,
            measured_at=NOW - timedelta(minutes=4, microseconds=-123456),
            received_at=NOW.astimezone(timezone(timedelta(hours=1))),
            flags=("device_clock_skew", "from_device_storage"),
            context={"device_kind": "pulse_oximeter", "source": "continuous"},
            time=EVERY_TIME_FIELD,
            identifier="0123456789abcdef0123456789abcdef",
        ),
        Observation(
            **base,
            seq=2**63 - 1,
            value=50.0,
            measured_at=NOW,
            flags=("gateway_time",),
            time=TimeCorrection(basis=TimeBasis.GATEWAY),
        ),
    ]


def test_every_observation_the_gateway_encodes_is_accepted_and_round_trips() -> None:
    observations = _observations()
    payload = encode_observations(GATEWAY, observations, sent_at=NOW)
    decoded = decode_observations(OBS_TOPIC, payload, now=NOW)
    assert decoded.rejected == []
    assert [o.wire_item() for o in decoded.observations] == json.loads(payload)["observations"]
    back = [Observation.from_wire_item(o.wire_item(), GATEWAY) for o in decoded.observations]
    assert back == observations
    assert decoded.observations[1].time == TimeCorrectionModel(
        **dataclasses.asdict(EVERY_TIME_FIELD)
    )


def test_every_status_the_gateway_encodes_is_accepted_and_round_trips() -> None:
    device = DeviceHealth(
        device_id="C0:FF:EE:00:00:01",
        kind="glucometer",
        battery_pct=100,
        last_seen_at=NOW,
        last_reading_at=NOW - timedelta(seconds=1, microseconds=5),
        rssi=-70,
        connected=True,
        clock_skew_s=-3,
        clock_set_at=NOW.astimezone(timezone(timedelta(hours=-5))),
        clock_set_from_s=2400,
        clock_ignores_dst=True,
        clock_zone_min=-210,
        clock_dst_min=60,
        system_id="02-4D-53-FF-FE-00-00-01",
        manufacturer_name="Medisim",
        model_number="MS-GL50",
        serial_number="GL50EE000001",
        firmware_revision="3.0.2",
    )
    status = GatewayStatus(
        gateway_id=GATEWAY,
        state="online",
        system_id="00-1A-7D-FF-FE-DA-71-13",
        version="0.1.0",
        started_at=NOW,
        uptime_s=12.5,
        outbox_depth=0,
        outbox_oldest_at=NOW,
        recoveries={"scanner_restart": 1},
        devices=(device, DeviceHealth(device_id="AA:BB", kind="thermometer")),
    )
    for payload in (status.encode(), offline_will(GATEWAY)):
        decoded = decode_status(STATUS_TOPIC, payload)
        assert json.loads(decoded.model_dump_json(exclude_none=True)) == json.loads(payload)


GOOD_ITEM = {
    "seq": 1,
    "device_id": "C0:FF:EE:00:00:01",
    "patient_id": "P0001",
    "metric": "spo2",
    "value": 96.0,
    "unit": "%",
    "measured_at": "2026-11-23T11:59:00Z",
}
TIME = {"basis": "device"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("seq", -1),
        ("seq", True),
        ("seq", 2**63),
        ("seq", "1"),
        ("device_id", ""),
        ("device_id", "C0 FF"),
        ("device_id", "x" * 65),
        ("patient_id", "-P1"),
        ("metric", "heart"),
        ("value", "97"),
        ("value", True),
        ("value", None),
        ("unit", "x" * 17),
        ("measured_at", "2026-11-23T11:59:00"),
        ("measured_at", 1_795_000_000),
        ("measured_at", "yesterday"),
        ("received_at", "2026-11-23T11:59:00"),
        ("flags", ["made_up"]),
        ("flags", "gateway_time"),
        ("flags", ["gateway_time"] * 33),
        ("context", {"Bad": "x"}),
        ("context", {"note": "a\u0000b"}),
        ("context", {"note": "x" * 65}),
        ("context", {f"k{i}": "v" for i in range(17)}),
        ("context", {"note": 1}),
        ("identifier", "0123456789ABCDEF0123456789ABCDEF"),
        ("identifier", "0" * 31),
        ("time", {"basis": "guessed"}),
        ("time", {}),
        ("time", TIME | {"utc_offset_min": 24 * 60}),
        ("time", TIME | {"device_time": "2026-11-23T11:29:00\u0000"}),
        ("time", TIME | {"zone": "Europe/Rome!"}),
        ("time", TIME | {"applied_s": 1.5}),
        ("time", TIME | {"clock_offset_s": 369 * 86400}),
        ("time", TIME | {"device_time_offset_min": 0x8000}),
        ("time", TIME | {"clock_source": "sundial"}),
        ("time", TIME | {"surprise": 1}),
        ("surprise", 1),
    ],
)
def test_an_item_the_server_refuses_the_gateway_refuses_too(field: str, value: object) -> None:
    bad = GOOD_ITEM | {field: value}
    message = json.dumps({"v": 2, "gateway_id": GATEWAY, "observations": [GOOD_ITEM, bad]})
    decoded = decode_observations(OBS_TOPIC, message.encode(), now=NOW)
    [refused] = decoded.rejected
    assert refused.index == 1 and field in refused.detail
    assert refused.reason in (RejectReason.INVALID_OBSERVATION, RejectReason.UNKNOWN_METRIC)
    with pytest.raises(InvalidValue) as caught:
        Observation.from_wire_item(bad, GATEWAY)
    assert field in [name for name, _ in caught.value.problems]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("device_id", "C0 FF"),
        ("kind", "toaster"),
        ("battery_pct", 101),
        ("battery_pct", -1),
        ("system_id", "024d53fffe000001"),
        ("manufacturer_name", ""),
        ("serial_number", "x" * 129),
        ("last_seen_at", "2026-11-23T11:59:00"),
        ("clock_ignores_dst", "yes"),
        ("clock_ignores_dst", 1),
        ("clock_zone_min", 15 * 60),
        ("clock_zone_min", -13 * 60),
        ("clock_zone_min", 60.0),
        ("clock_zone_min", "60"),
        ("clock_dst_min", 45),
        ("clock_dst_min", True),
        ("clock_dst_min", False),
        ("clock_dst_min", "60"),
    ],
)
def test_a_device_health_the_server_refuses_the_gateway_refuses_too(
    field: str, value: object
) -> None:
    device = {"device_id": "C0:FF:EE:00:00:01", "kind": "glucometer", field: value}
    status = {"v": 1, "gateway_id": GATEWAY, "state": "online", "devices": [device]}
    with pytest.raises(ValueError, match=field):
        decode_status(STATUS_TOPIC, json.dumps(status).encode())
    if field.endswith("_at"):
        value = datetime.fromisoformat(str(value))  # the gateway holds datetimes, not text
    with pytest.raises(InvalidValue) as caught:
        DeviceHealth(**(device | {field: value}))
    assert [name for name, _ in caught.value.problems] == [field]
