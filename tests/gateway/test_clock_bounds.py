"""Device time stamps that cannot be a time (fuzzing found 9999-12-31) never raise, never poison.

A GATT Date Time may say anything from 1582 to 9999. Such a stamp is no usable device time: the
reading is kept with the receive time, ``gateway_time`` and ``device_clock_skew``, the original in
context ``device_time``, and the device's skew estimate is left as it was. Each test names the
overflow point it guards: localise() west/east of UTC, the skew estimate, stamp()'s correction,
delivered_late()'s correction, and the recorder that chains them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.clock_check import (
    DEFAULT_MAX_CLOCK_AHEAD,
    DEFAULT_MAX_CLOCK_BEHIND,
    TimePolicy,
    is_skewed,
    localise,
    skew_from_reading,
    stamp,
)
from gateway.devices.glucose_sync import SyncStore
from gateway.devices.recorder import Recorder, delivered_late
from gateway.devices.recovery import Recoveries
from gateway.devices.rejected import REJECTED_FILE, RejectedLog
from gateway.devices.state import DeviceState
from gateway.gatt import (
    BloodPressureMeasurement,
    CharacteristicUuid,
    DecodeError,
    GattDateTime,
    Reading,
    decode_all,
)
from gateway.outbox import Outbox
from telemon.observation import Observation
from telemon.payload import EARLIEST_MEASUREMENT, FUTURE_TOLERANCE, PairedDevice

RECEIVED = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)  # 10:00 in Rome (CEST)
ROME = TimePolicy(now=lambda: RECEIVED)
NEW_YORK = TimePolicy(tz=ZoneInfo("America/New_York"), now=lambda: RECEIVED)

LAST_GATT_MINUTE = datetime(9999, 12, 31, 23, 59)
FIRST_GATT_DAY = datetime(1582, 1, 1)
EIGHT_MILLENNIA = datetime(9999, 12, 31, 23, 59, 59) - datetime(2025, 6, 2, 10, 0)
DEVICE_TIME_UNUSABLE = frozenset({"gateway_time", "device_clock_skew"})

BP = CharacteristicUuid.BLOOD_PRESSURE_MEASUREMENT
GATEWAY_ID = "gw-clock-bounds"
ADDRESS = "C0:FF:EE:00:00:42"


# -- the decoder's range: year 0 is "not known", years before 1582 are refused ------------------


def cuff(at: GattDateTime, systolic: float = 120.0) -> tuple[Reading, ...]:
    payload = BloodPressureMeasurement(systolic, 80.0, 93.0, timestamp=at).encode()
    return decode_all(BP.full, payload).readings


def test_the_decoder_gives_no_year_0_or_1_but_does_give_9999() -> None:
    # So year 1 reaches clock_check only from elsewhere; it is covered below all the same.
    assert {r.measured_at for r in cuff(GattDateTime(0, 1, 1))} == {None}
    payload = bytearray(BloodPressureMeasurement(120.0, 80.0, 93.0, timestamp=None).encode())
    payload[0] |= 0x02  # time stamp present
    payload[7:7] = (1, 0, 1, 1, 0, 0, 0)  # year 1
    with pytest.raises(DecodeError):
        decode_all(BP.full, bytes(payload))
    assert {r.measured_at for r in cuff(GattDateTime(9999, 12, 31, 23, 59, 59))} == {
        datetime(9999, 12, 31, 23, 59, 59)
    }


# -- localise(): the datetime range ends before the zone offset is applied ---------------------


@pytest.mark.parametrize(
    ("device_time", "zone"),
    [
        (LAST_GATT_MINUTE, "America/New_York"),  # west of UTC: past 9999-12-31 in UTC
        (datetime(9999, 12, 31, 23, 59, 59), "Etc/GMT+12"),
        (datetime(1, 1, 1), "Europe/Rome"),  # east of UTC: before year 1 in UTC
        (datetime.min, "Asia/Tokyo"),  # local mean time then: +9:18
    ],
)
def test_localise_gives_none_instead_of_overflowing(device_time: datetime, zone: str) -> None:
    assert localise(device_time, ZoneInfo(zone)) is None


def test_a_west_of_utc_gateway_stamps_9999_12_31_23_59_with_its_own_time() -> None:
    when = stamp(LAST_GATT_MINUTE, RECEIVED, NEW_YORK)
    assert when.measured_at == RECEIVED
    assert set(when.flags) == DEVICE_TIME_UNUSABLE
    assert when.context == {"device_time": "9999-12-31T23:59:00"}
    assert skew_from_reading(LAST_GATT_MINUTE, RECEIVED, NEW_YORK, fresh=True) is None
    assert not delivered_late(LAST_GATT_MINUTE, RECEIVED, NEW_YORK, None)


# -- the skew estimate: bounded, so no later arithmetic can overflow ---------------------------


@pytest.mark.parametrize(
    "device_time",
    [
        datetime(9999, 12, 31, 23, 59, 59),
        RECEIVED.replace(tzinfo=None) + DEFAULT_MAX_CLOCK_AHEAD + timedelta(days=1),
        FIRST_GATT_DAY,
        datetime(1, 1, 1),
    ],
)
@pytest.mark.parametrize("fresh", [True, False])
def test_a_stamp_that_is_no_time_estimates_no_skew(device_time: datetime, fresh: bool) -> None:
    assert skew_from_reading(device_time, RECEIVED, ROME, fresh=fresh) is None
    when = stamp(device_time, RECEIVED, ROME)
    assert (when.measured_at, set(when.flags)) == (RECEIVED, DEVICE_TIME_UNUSABLE)
    assert when.context == {"device_time": device_time.isoformat()}


def test_clocks_that_are_wrong_but_running_still_give_a_skew() -> None:
    utc = TimePolicy(tz=ZoneInfo("UTC"))
    naive = RECEIVED.replace(tzinfo=None)
    reset_to_epoch = datetime(1970, 1, 1)  # never set, counting from the firmware's epoch
    assert skew_from_reading(reset_to_epoch, RECEIVED, utc, fresh=True) == reset_to_epoch - naive
    year_typed_one_too_far = naive.replace(year=2026)
    assert skew_from_reading(year_typed_one_too_far, RECEIVED, utc, fresh=False) == timedelta(
        days=365
    )
    # The bounds themselves are still a clock; a second beyond is not.
    for bound in (DEFAULT_MAX_CLOCK_AHEAD, -DEFAULT_MAX_CLOCK_BEHIND):
        assert skew_from_reading(naive + bound, RECEIVED, utc, fresh=True) == bound
        beyond = bound + (timedelta(seconds=1) if bound > timedelta(0) else -timedelta(seconds=1))
        assert skew_from_reading(naive + beyond, RECEIVED, utc, fresh=True) is None


# -- stamp() and delivered_late(): a skew the state holds is used only if a clock can have it ---


POISONED = EIGHT_MILLENNIA  # what the gateway estimated before this fix


def test_stamp_ignores_a_skew_no_clock_can_have() -> None:
    ordinary = datetime(2025, 6, 2, 9, 55)
    when = stamp(ordinary, RECEIVED, ROME, skew=POISONED)
    assert (when.measured_at, when.flags) == (RECEIVED - timedelta(minutes=5), ())
    # Unset clock + poisoned skew: the correction would have overflowed, or been nonsense.
    unset = stamp(datetime(2000, 1, 1), RECEIVED, ROME, skew=-POISONED)
    assert (unset.measured_at, set(unset.flags)) == (RECEIVED, DEVICE_TIME_UNUSABLE)


def test_delivered_late_ignores_a_skew_no_clock_can_have() -> None:
    an_hour_old = datetime(2025, 6, 2, 9, 0)
    assert delivered_late(an_hour_old, RECEIVED, ROME, POISONED)  # was OverflowError
    assert delivered_late(an_hour_old, RECEIVED, ROME, None)
    assert not delivered_late(an_hour_old, RECEIVED, ROME, timedelta(hours=-1))
    assert not delivered_late(datetime(9999, 12, 31, 23, 59, 59), RECEIVED, ROME, None)


def test_no_device_value_makes_the_time_decisions_raise() -> None:
    """Every extreme a device (or a stale state) can bring, in zones from UTC-12 to UTC+14."""
    zones = ("UTC", "Europe/Rome", "America/New_York", "Etc/GMT+12", "Pacific/Kiritimati")
    device_times = (
        datetime.min,
        datetime(1, 1, 1, 12),
        FIRST_GATT_DAY,
        datetime(2000, 1, 1),
        datetime(2025, 6, 2, 9, 55),
        datetime(9999, 12, 31),
        datetime(9999, 12, 31, 23, 59, 59),
        datetime.max,
    )
    skews = (None, timedelta(0), timedelta(hours=2), POISONED, -POISONED)
    skews += (timedelta.max, timedelta.min, DEFAULT_MAX_CLOCK_AHEAD, -DEFAULT_MAX_CLOCK_BEHIND)
    for zone, device_time, skew in product(zones, device_times, skews):
        policy = TimePolicy(tz=ZoneInfo(zone))
        when = stamp(device_time, RECEIVED, policy, skew=skew)
        # Whatever came in, what goes out is a time the server stores.
        assert EARLIEST_MEASUREMENT <= when.measured_at <= RECEIVED + FUTURE_TOLERANCE
        delivered_late(device_time, RECEIVED, policy, skew)
        for fresh in (True, False):
            estimate = skew_from_reading(device_time, RECEIVED, policy, fresh=fresh)
            assert estimate is None or (
                -DEFAULT_MAX_CLOCK_BEHIND <= estimate <= DEFAULT_MAX_CLOCK_AHEAD
            )


# -- the recorder: the sequence fuzzing found, and the state it leaves ---------------------------


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox(tmp_path / "outbox.db", GATEWAY_ID)
    yield box
    box.close()


def recorder(outbox: Outbox, tmp_path: Path, policy: TimePolicy = ROME) -> Recorder:
    return Recorder(
        outbox,
        notify=lambda: None,
        rejected=RejectedLog(tmp_path / REJECTED_FILE),
        sync=SyncStore(outbox),
        recoveries=Recoveries(),
        policy=policy,
    )


def device_state() -> DeviceState:
    return DeviceState(PairedDevice(address=ADDRESS, kind="blood_pressure", patient_id="P0001"))


async def record(rec: Recorder, state: DeviceState, readings, *, fresh: bool) -> list[Observation]:
    # A cuff's measurement: a stored kind, so delivered_late() is consulted when not fresh.
    return await rec.readings(
        state, readings, RECEIVED, characteristic=BP.label, fresh=fresh, stored_kind=True
    )


@pytest.mark.parametrize("fresh", [True, False])
async def test_9999_then_an_ordinary_reading_keeps_both_and_the_skew_unpoisoned(
    outbox: Outbox, tmp_path: Path, fresh: bool
) -> None:
    rec, state = recorder(outbox, tmp_path), device_state()
    far = await record(rec, state, cuff(GattDateTime(9999, 12, 31, 23, 59, 59)), fresh=fresh)
    assert state.clock_skew is None
    ordinary = await record(rec, state, cuff(GattDateTime(2025, 6, 2, 9, 55), 121.0), fresh=fresh)
    assert len(far) == len(ordinary) == 3  # systolic, diastolic, mean arterial pressure
    assert {(o.measured_at, o.flags) for o in far} == {
        (RECEIVED, ("gateway_time", "device_clock_skew"))
    }
    assert {o.context["device_time"] for o in far} == {"9999-12-31T23:59:59"}
    assert {(o.measured_at, o.flags) for o in ordinary} == {(RECEIVED - timedelta(minutes=5), ())}
    # The next session's readings are recorded just the same.
    again = await record(rec, state, cuff(GattDateTime(2025, 6, 2, 9, 58), 122.0), fresh=fresh)
    assert len(again) == 3 and not is_skewed(state.clock_skew, ROME)
    assert len(outbox.peek(100)) == 9


async def test_a_stamp_that_is_no_time_leaves_a_known_skew_as_it_was(
    outbox: Outbox, tmp_path: Path
) -> None:
    rec, state = recorder(outbox, tmp_path), device_state()
    await record(rec, state, cuff(GattDateTime(2025, 6, 2, 12, 0)), fresh=True)  # 2 h ahead
    assert state.clock_skew == timedelta(hours=2)
    rec.update_skew(state, datetime(9999, 12, 31, 23, 59, 59), RECEIVED, fresh=True)  # Current Time
    await record(rec, state, cuff(GattDateTime(9999, 12, 31, 23, 59, 59)), fresh=True)
    assert state.clock_skew == timedelta(hours=2)


async def test_a_poisoned_skew_in_the_state_does_not_stop_recording(
    outbox: Outbox, tmp_path: Path
) -> None:
    rec, state = recorder(outbox, tmp_path), device_state()
    state.clock_skew = POISONED  # as a gateway without this fix leaves it
    stored = await record(rec, state, cuff(GattDateTime(2025, 6, 2, 9, 0)), fresh=False)
    assert {(o.measured_at, o.flags) for o in stored} == {
        (RECEIVED - timedelta(hours=1), ("from_device_storage",))
    }
    unset = await record(rec, state, cuff(GattDateTime(2000, 1, 1)), fresh=False)
    assert {o.measured_at for o in unset} == {RECEIVED}


async def test_a_west_of_utc_gateway_records_9999_12_31_23_59(
    outbox: Outbox, tmp_path: Path
) -> None:
    rec, state = recorder(outbox, tmp_path, NEW_YORK), device_state()
    stored = await record(rec, state, cuff(GattDateTime(9999, 12, 31, 23, 59)), fresh=True)
    assert {(o.measured_at, frozenset(o.flags)) for o in stored} == {
        (RECEIVED, DEVICE_TIME_UNUSABLE)
    }
    assert state.clock_skew is None
