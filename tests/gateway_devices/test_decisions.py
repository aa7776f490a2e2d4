"""The pure decisions: backoff, RACP request, context join, time stamps, watchdog, config."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bleak.uuids import normalize_uuid_16

from gateway.clock_check import TimePolicy, skew_from_reading, stamp
from gateway.devices import Backoff, ContextJoiner, kind_for_services, next_request, table_problem
from gateway.devices.manager import MAX_REVISION_STEP
from gateway.devices.recovery import (
    CommandAdapterControl,
    RecoveryStep,
    WatchdogPolicy,
    WatchdogView,
    decide,
)
from gateway.gatt import (
    GattDateTime,
    GlucoseMeasurement,
    GlucoseMeasurementContext,
    Meal,
    RacpRequest,
    decode_all,
)
from gateway.pairing import PairingTable
from telemon.payload import PairedDevice

ROME = TimePolicy(tz=ZoneInfo("Europe/Rome"))
RECEIVED = datetime(2025, 7, 1, 10, 0, tzinfo=UTC)  # 12:00 in Rome (CEST)


def test_backoff_grows_with_equal_jitter_and_caps() -> None:
    backoff = Backoff(base=1.0, factor=2.0, cap=60.0)
    assert [backoff.delay(n, lambda: 0.0) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert [backoff.delay(n, lambda: 1.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]
    assert backoff.delay(30, lambda: 1.0) == 60.0


def test_racp_asks_for_the_records_after_the_last_stored() -> None:
    assert next_request(None) == RacpRequest.report_all()
    assert next_request(41) == RacpRequest.report_from(42)
    assert next_request(0xFFFF) == RacpRequest.report_all()


def glucose(seq: int, *, context_follows: bool):
    record = GlucoseMeasurement(
        seq,
        GattDateTime.from_datetime(datetime(2025, 7, 1, 8)),
        context_follows=context_follows,
    )
    return decode_all("2a18", record.encode())


def test_context_is_joined_by_sequence_number() -> None:
    joiner = ContextJoiner()
    assert joiner.measurement(glucose(7, context_follows=True)) == []
    [joined] = joiner.context(GlucoseMeasurementContext(7, meal=Meal.FASTING))
    assert joined.sequence_number == 7 and joined.context["meal"] == "fasting"
    # A context that never comes does not hold the reading back.
    assert joiner.measurement(glucose(8, context_follows=True)) == []
    [alone, plain] = joiner.measurement(glucose(9, context_follows=False))
    assert (alone.sequence_number, alone.context, plain.sequence_number) == (8, {}, 9)
    assert joiner.context(GlucoseMeasurementContext(3, meal=Meal.FASTING)) == []


def test_time_stamps() -> None:
    local_noon = datetime(2025, 7, 1, 12, 0)
    kept = stamp(local_noon, RECEIVED, ROME)
    assert kept.measured_at == RECEIVED and kept.flags == ()
    none = stamp(None, RECEIVED, ROME)
    assert none.measured_at == RECEIVED and none.flags == ("gateway_time",)
    stored = stamp(local_noon - timedelta(hours=5), RECEIVED, ROME, from_storage=True)
    assert stored.flags == ("from_device_storage",)
    # Clock never set (2000-01-01): not storable, replaced by the receive time.
    unset = stamp(datetime(2000, 1, 1), RECEIVED, ROME)
    assert unset.measured_at == RECEIVED
    assert set(unset.flags) == {"gateway_time", "device_clock_skew"}
    assert unset.context == {"device_time": "2000-01-01T00:00:00"}
    # Two hours ahead with the skew known: corrected, flagged, original kept.
    ahead = stamp(local_noon + timedelta(hours=2), RECEIVED, ROME, skew=timedelta(hours=2))
    assert ahead.measured_at == RECEIVED and ahead.flags == ("device_clock_skew",)


def test_skew_needs_a_fresh_value_unless_the_stamp_is_in_the_future() -> None:
    behind = datetime(2025, 7, 1, 9, 0)  # three hours behind Rome's noon
    assert skew_from_reading(behind, RECEIVED, ROME, fresh=False) is None
    assert skew_from_reading(behind, RECEIVED, ROME, fresh=True) == timedelta(hours=-3)
    ahead = datetime(2025, 7, 1, 13, 0)
    assert skew_from_reading(ahead, RECEIVED, ROME, fresh=False) == timedelta(hours=1)


def view(**changes) -> WatchdogView:
    base = dict(
        now=10_000.0,
        devices_expected=True,
        last_known_advert=9_990.0,
        last_action=0.0,
        restarts_without_advert=0,
        consecutive_connect_failures=0,
        connected_devices=0,
    )
    return WatchdogView(**(base | changes))


def test_watchdog_decisions() -> None:
    policy = WatchdogPolicy(silence_limit=100.0, restarts_before_reset=2, failure_limit=3)
    assert decide(view(), policy) is RecoveryStep.NONE
    assert decide(view(last_known_advert=0.0), policy) is RecoveryStep.RESTART_SCANNER
    assert decide(view(last_known_advert=0.0, devices_expected=False), policy) is RecoveryStep.NONE
    assert (
        decide(view(last_known_advert=0.0, restarts_without_advert=2), policy)
        is RecoveryStep.RESET_ADAPTER
    )
    assert decide(view(consecutive_connect_failures=3), policy) is RecoveryStep.RESET_ADAPTER
    # Never pull the adapter from under a device that is sending.
    assert (
        decide(view(consecutive_connect_failures=3, connected_devices=1), policy)
        is RecoveryStep.NONE
    )


async def test_adapter_reset_runs_commands_and_falls_back() -> None:
    assert await CommandAdapterControl([[["false"]], [["true"], ["true"]]], pause=0).reset()
    assert not await CommandAdapterControl([[["false"]], [["no-such-tool-here"]]]).reset()


async def test_adapter_address_from_what_bluetoothctl_shows() -> None:
    # `bluetoothctl show`'s first line, as BlueZ prints it; the gateway's system id comes of it.
    shown = "Controller b8:27:eb:12:34:56 (public)\n\tName: telemon-gw\n\tPowered: yes\n"
    control = CommandAdapterControl(show=["printf", shown])
    assert await control.address() == "B8:27:EB:12:34:56"
    assert (
        await CommandAdapterControl(show=["printf", "No default controller available\n"]).address()
        is None
    )
    assert await CommandAdapterControl(show=["false"]).address() is None


def test_kind_from_advertised_services() -> None:
    assert kind_for_services([normalize_uuid_16(0x1810)]) == "blood_pressure"
    assert kind_for_services([normalize_uuid_16(0x180F)]) is None


def test_config_must_be_newer_and_unambiguous() -> None:
    device = PairedDevice(address="AA:BB:CC:DD:EE:01", kind="thermometer", patient_id="P1")
    current = PairingTable(4, ())
    assert table_problem(PairingTable(5, (device,)), current) is None
    assert "not newer" in table_problem(PairingTable(4, (device,)), current)
    twice = PairingTable(5, (device, replace(device, kind="glucometer")))
    assert "twice" in table_problem(twice, current)


def test_config_may_not_jump_far_ahead_of_the_current_revision() -> None:
    """Issue 15: an applied revision 10**15 made every later real config look old."""
    current = PairingTable(4, ())
    assert table_problem(PairingTable(4 + MAX_REVISION_STEP, ()), current) is None
    assert "ahead" in table_problem(PairingTable(5 + MAX_REVISION_STEP, ()), current)
    assert "ahead" in table_problem(PairingTable(10**15, ()), current)
    # A gateway that never had a config from the server is bound the same way.
    assert "ahead" in table_problem(PairingTable(10**15, ()), PairingTable())
