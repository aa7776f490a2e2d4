"""Europe/Rome fixtures for the gateway's time model (issue 19): each gives the right UTC or is
flagged, and every reading's time record says how its instant was made.

The readings go through the real recorder into a real outbox, as a session's do; the clock
offsets are the ones a session learns from a fresh reading or the device's Current Time.
Rome: CET (+01:00) in winter, CEST (+02:00) from the last Sunday of March 02:00 (clocks jump to
03:00) to the last Sunday of October 03:00 (clocks go back to 02:00).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.clock_check import TimePolicy, read_wall
from gateway.devices.glucose_sync import SyncStore
from gateway.devices.recorder import Recorder
from gateway.devices.recovery import Recoveries
from gateway.devices.rejected import REJECTED_FILE, RejectedLog
from gateway.devices.state import DeviceState
from gateway.gatt import (
    CharacteristicUuid,
    GattDateTime,
    GlucoseMeasurement,
    GlucoseType,
    SampleLocation,
    TemperatureMeasurement,
    decode_all,
)
from gateway.outbox import Outbox
from telemon.observation import Observation
from telemon.payload import PairedDevice
from telemon.time_correction import ClockSource, LocalTimeIssue, TimeBasis

ROME = ZoneInfo("Europe/Rome")
SPRING_GAP = datetime(2025, 3, 30, 2, 30)  # no such time in Rome: 02:00 CET became 03:00 CEST
AUTUMN_REPEAT = datetime(2025, 10, 26, 2, 30)  # twice: 00:30 UTC (CEST) and 01:30 UTC (CET)
THERMOMETER = CharacteristicUuid.TEMPERATURE_MEASUREMENT
GLUCOSE = CharacteristicUuid.GLUCOSE_MEASUREMENT


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.fixture
def outbox(tmp_path: Path):
    box = Outbox(tmp_path / "outbox.db", "gw-dst")
    yield box
    box.close()


def recorder(outbox: Outbox, tmp_path: Path, now: datetime) -> Recorder:
    return Recorder(
        outbox,
        notify=lambda: None,
        rejected=RejectedLog(tmp_path / REJECTED_FILE),
        sync=SyncStore(outbox),
        recoveries=Recoveries(),
        policy=TimePolicy(tz=ROME, now=lambda: now),
    )


def thermometer() -> DeviceState:
    return DeviceState(
        PairedDevice(address="C0:FF:EE:00:19:01", kind="thermometer", patient_id="P1")
    )


async def temperature(
    rec: Recorder, state: DeviceState, at: datetime, received: datetime, *, fresh: bool
) -> Observation:
    """A thermometer's stored (or, if ``fresh``, just taken) reading stamped ``at``, local."""
    payload = TemperatureMeasurement(36.8, timestamp=GattDateTime.from_datetime(at)).encode()
    readings = decode_all(THERMOMETER.full, payload).readings
    [stored] = await rec.readings(
        state, readings, received, characteristic="2a1c", fresh=fresh, stored_kind=True
    )
    return stored


# -- the spring-forward gap ---------------------------------------------------------------------


async def test_a_reading_in_the_spring_gap_is_read_as_standard_time_and_flagged(
    outbox, tmp_path
) -> None:
    received = utc(2025, 3, 30, 8, 0)
    rec = recorder(outbox, tmp_path, received)
    obs = await temperature(rec, thermometer(), SPRING_GAP, received, fresh=False)
    # 02:30 can only be shown by a clock still on CET: 01:30 UTC.
    assert obs.measured_at == utc(2025, 3, 30, 1, 30)
    assert "local_time_gap" in obs.flags
    assert obs.time is not None
    assert (obs.time.basis, obs.time.local_issue) == (TimeBasis.DEVICE, LocalTimeIssue.GAP)
    assert (obs.time.zone, obs.time.utc_offset_min, obs.time.dst) == ("Europe/Rome", 60, False)
    assert obs.time.device_time == "2025-03-30T02:30:00"
    # Either side of the gap is ordinary local time, unflagged.
    before = await temperature(
        rec, thermometer(), datetime(2025, 3, 30, 1, 59), received, fresh=False
    )
    after = await temperature(
        rec, thermometer(), datetime(2025, 3, 30, 3, 0), received, fresh=False
    )
    assert (before.measured_at, after.measured_at) == (utc(2025, 3, 30, 0, 59), utc(2025, 3, 30, 1))
    assert not {"local_time_gap", "local_time_ambiguous"} & {*before.flags, *after.flags}


# -- the repeated autumn hour -------------------------------------------------------------------


async def test_a_stored_reading_in_the_repeated_hour_is_flagged_as_a_choice(
    outbox, tmp_path
) -> None:
    received = utc(2025, 10, 26, 9, 0)  # read hours later: either 02:30 could be meant
    obs = await temperature(
        recorder(outbox, tmp_path, received), thermometer(), AUTUMN_REPEAT, received, fresh=False
    )
    assert obs.measured_at == utc(2025, 10, 26, 0, 30)  # the first 02:30 (CEST)
    assert "local_time_ambiguous" in obs.flags
    assert obs.time is not None and obs.time.local_issue is LocalTimeIssue.REPEATED
    assert (obs.time.utc_offset_min, obs.time.dst) == (120, True)


@pytest.mark.parametrize(
    ("received", "fresh", "meant"),
    [
        # Measured now, during the second 02:30 (CET): the closer instant.
        (utc(2025, 10, 26, 1, 30, 20), True, utc(2025, 10, 26, 1, 30)),
        # Measured now, during the first 02:30 (CEST).
        (utc(2025, 10, 26, 0, 30, 20), True, utc(2025, 10, 26, 0, 30)),
        # Stored, received at 02:00 CET: the second 02:30 is still to come, so the first.
        (utc(2025, 10, 26, 1, 0), False, utc(2025, 10, 26, 0, 30)),
    ],
)
async def test_the_repeated_hour_is_decided_when_the_receive_time_tells(
    outbox, tmp_path, received, fresh, meant
) -> None:
    obs = await temperature(
        recorder(outbox, tmp_path, received), thermometer(), AUTUMN_REPEAT, received, fresh=fresh
    )
    assert obs.measured_at == meant
    assert "local_time_ambiguous" not in obs.flags
    assert obs.time is not None and obs.time.local_issue is LocalTimeIssue.REPEATED
    assert obs.time.utc_offset_min == (120 if meant.hour == 0 else 60)


def test_read_wall_round_trips_every_local_minute_of_both_change_days() -> None:
    for day in (datetime(2025, 3, 30), datetime(2025, 10, 26)):
        for minute in range(24 * 60):
            wall = day + timedelta(minutes=minute)
            read = read_wall(wall, ROME)
            assert read is not None
            # Back in Rome's time it is the same wall time, except in the gap (none exists).
            local = read.instant.astimezone(ROME).replace(tzinfo=None)
            assert local == wall or read.issue is LocalTimeIssue.GAP
            assert read.issue is None or wall.hour == 2


# -- a device that never changes its clock for DST ---------------------------------------------


async def test_a_clock_that_keeps_standard_time_is_learnt_in_summer_and_read_as_such(
    outbox, tmp_path
) -> None:
    received = utc(2025, 7, 1, 10, 0)  # 12:00 CEST; the device shows 11:00 (CET)
    rec, state = recorder(outbox, tmp_path, received), thermometer()
    rec.update_skew(
        state, datetime(2025, 7, 1, 11, 0, 5), received, fresh=True, source=ClockSource.CURRENT_TIME
    )
    assert state.ignores_dst and state.clock_skew == timedelta(seconds=5)
    summer = await temperature(rec, state, datetime(2025, 7, 1, 8, 0), received, fresh=False)
    winter = await temperature(rec, state, datetime(2025, 1, 15, 8, 0), received, fresh=False)
    # Read as CET all year: right both times, and the one-hour "skew" is no clock error.
    assert summer.measured_at == utc(2025, 7, 1, 7, 0)
    assert winter.measured_at == utc(2025, 1, 15, 7, 0)
    assert "device_clock_skew" not in summer.flags
    assert summer.time is not None
    assert (summer.time.ignores_dst, summer.time.utc_offset_min, summer.time.dst) == (
        True,
        60,
        False,
    )
    assert (summer.time.clock_offset_s, summer.time.clock_source) == (5, ClockSource.CURRENT_TIME)
    # In winter nothing tells the two kinds of clock apart: what summer taught still holds.
    december = utc(2025, 12, 1, 10, 0)
    rec.update_skew(
        state,
        datetime(2025, 12, 1, 11, 0, 5),
        december,
        fresh=True,
        source=ClockSource.CURRENT_TIME,
    )
    assert state.ignores_dst
    # A clock set right in summer follows DST after all.
    rec.update_skew(
        state,
        datetime(2025, 7, 2, 12, 0),
        utc(2025, 7, 2, 10, 0),
        fresh=True,
        source=ClockSource.CURRENT_TIME,
    )
    assert not state.ignores_dst


async def test_a_dst_following_clock_one_hour_off_in_winter_is_corrected_and_flagged(
    outbox, tmp_path
) -> None:
    received = utc(2025, 12, 1, 10, 0)  # 11:00 CET; the device shows 12:00 (still on CEST)
    rec, state = recorder(outbox, tmp_path, received), thermometer()
    rec.update_skew(
        state, datetime(2025, 12, 1, 12, 0), received, fresh=True, source=ClockSource.CURRENT_TIME
    )
    obs = await temperature(rec, state, datetime(2025, 12, 1, 11, 50), received, fresh=False)
    assert obs.measured_at == utc(2025, 12, 1, 9, 50)
    assert "device_clock_skew" in obs.flags
    assert obs.time is not None
    assert (obs.time.basis, obs.time.applied_s, obs.time.clock_offset_s) == (
        TimeBasis.CORRECTED,
        3600,
        3600,
    )


# -- a clock reset to 2000-01-01 after a battery change -----------------------------------------


async def test_a_clock_reset_to_2000_is_corrected_by_its_current_time(outbox, tmp_path) -> None:
    received = utc(2025, 6, 2, 8, 0)
    rec, state = recorder(outbox, tmp_path, received), thermometer()
    # New batteries at 09:40 local; the clock restarted at 2000-01-01 00:00 and has run 20 min.
    rec.update_skew(
        state, datetime(2000, 1, 1, 0, 20), received, fresh=True, source=ClockSource.CURRENT_TIME
    )
    taken = await temperature(rec, state, datetime(2000, 1, 1, 0, 10), received, fresh=False)
    assert taken.measured_at == received - timedelta(minutes=10)
    assert "device_clock_skew" in taken.flags and "gateway_time" not in taken.flags
    assert taken.context["device_time"] == "2000-01-01T00:10:00"
    assert taken.time is not None and taken.time.basis is TimeBasis.CORRECTED
    # A reading stored before the battery change has the right time: the reset's offset would
    # put it in 2050. Kept as the device stamped it, and flagged.
    earlier = await temperature(rec, state, datetime(2025, 6, 1, 20, 0), received, fresh=False)
    assert earlier.measured_at == utc(2025, 6, 1, 18, 0)
    assert "device_clock_skew" in earlier.flags
    assert earlier.time is not None
    assert (earlier.time.basis, earlier.time.applied_s) == (TimeBasis.DEVICE, 0)


async def test_a_clock_reset_to_2000_with_no_current_time_gets_the_receive_time_flagged(
    outbox, tmp_path
) -> None:
    received = utc(2025, 6, 2, 8, 0)
    obs = await temperature(
        recorder(outbox, tmp_path, received),
        thermometer(),
        datetime(2000, 1, 1, 0, 10),
        received,
        fresh=False,
    )
    assert obs.measured_at == received
    assert {"gateway_time", "device_clock_skew"} <= set(obs.flags)
    assert obs.time is not None and obs.time.basis is TimeBasis.GATEWAY
    assert obs.time.device_time == "2000-01-01T00:10:00"


# -- a meter reporting local time without a zone ------------------------------------------------


async def test_a_meter_without_zone_is_read_in_the_patients_zone(outbox, tmp_path) -> None:
    received = utc(2025, 6, 2, 8, 0)
    rec = recorder(outbox, tmp_path, received)
    state = DeviceState(
        PairedDevice(address="C0:FF:EE:00:19:02", kind="glucometer", patient_id="P1")
    )
    record = GlucoseMeasurement(
        12,
        GattDateTime(2025, 6, 2, 9, 40),  # local wall time, no zone field in Glucose Measurement
        concentration=0.00095,
        glucose_type=GlucoseType.CAPILLARY_WHOLE_BLOOD,
        sample_location=SampleLocation.FINGER,
    )
    readings = decode_all(GLUCOSE.full, record.encode()).readings
    [obs] = await rec.readings(
        state, readings, received, characteristic="2a18", fresh=False, stored_kind=False
    )
    assert obs.measured_at == utc(2025, 6, 2, 7, 40)
    assert obs.time is not None
    assert (obs.time.zone, obs.time.utc_offset_min, obs.time.dst) == ("Europe/Rome", 120, True)
    assert obs.time.device_zone_min is None and obs.time.device_dst_min is None
    assert obs.time.basis is TimeBasis.DEVICE and not obs.flags


async def test_a_glucose_time_offset_is_applied_and_kept_in_the_record(outbox, tmp_path) -> None:
    # The owner moved the meter's clock to summer time: Glucose keeps the base time as stamped
    # and says by how much the user-facing time differs (Time Offset, minutes).
    received = utc(2025, 6, 2, 8, 0)
    rec = recorder(outbox, tmp_path, received)
    state = DeviceState(
        PairedDevice(address="C0:FF:EE:00:19:03", kind="glucometer", patient_id="P1")
    )
    record = GlucoseMeasurement(
        13,
        GattDateTime(2025, 6, 2, 8, 40),
        time_offset=60,
        concentration=0.00101,
        glucose_type=GlucoseType.CAPILLARY_WHOLE_BLOOD,
        sample_location=SampleLocation.FINGER,
    )
    readings = decode_all(GLUCOSE.full, record.encode()).readings
    [obs] = await rec.readings(
        state, readings, received, characteristic="2a18", fresh=False, stored_kind=False
    )
    assert obs.measured_at == utc(2025, 6, 2, 7, 40)
    assert obs.time is not None
    assert (obs.time.device_time, obs.time.device_time_offset_min) == ("2025-06-02T09:40:00", 60)
    assert obs.time.basis is TimeBasis.DEVICE and not obs.flags
