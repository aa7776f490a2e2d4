"""Where a session's data goes: readings into the outbox first, then everything else.

The order is the point. A reading is durable (outbox, fsynced) before the uplink is woken, before
a glucose meter's sync position moves past it, before the device health says it arrived.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from gateway.clock_check import (
    FROM_DEVICE_STORAGE,
    TimePolicy,
    device_instant,
    estimate_clock,
    is_skewed,
    plausible_skew,
    stamp,
)
from gateway.devices.clock_memory import ClockMemory
from gateway.devices.glucose_sync import GlucoseRecord, SyncStore, anchor_of
from gateway.devices.observations import observation
from gateway.devices.recovery import DECODE_ERRORS, Recoveries
from gateway.devices.rejected import RejectedLog, RejectedValue
from gateway.devices.state import DeviceState
from gateway.gatt import Reading
from gateway.outbox import Outbox
from telemon.checks import InvalidValue
from telemon.observation import Observation
from telemon.time_correction import ClockSource

log = logging.getLogger(__name__)


def delivered_late(
    device_time: datetime,
    received_at: datetime,
    policy: TimePolicy,
    skew: timedelta | None,
    *,
    ignores_dst: bool = False,
) -> bool:
    """Whether a reading is older than the tolerance once the known clock error is taken out.

    A stamp that is no usable time says nothing about when the reading was taken: not late.
    """
    instant = device_instant(device_time, received_at, policy, ignores_dst=ignores_dst)
    if instant is None:
        return False
    # received - (instant - skew), as timedeltas only: a datetime shifted by a skew can overflow.
    age = received_at - instant + (plausible_skew(skew, policy) or timedelta(0))
    return age > policy.skew_tolerance


class Recorder:
    def __init__(
        self,
        outbox: Outbox,
        *,
        notify: Callable[[], None],
        rejected: RejectedLog,
        sync: SyncStore,
        recoveries: Recoveries,
        policy: TimePolicy,
        clock_trusted: Callable[[], bool] = lambda: True,
    ) -> None:
        self.outbox = outbox
        self.notify = notify
        self.rejected = rejected
        self.sync = sync
        self.recoveries = recoveries
        self.policy = policy
        self.clock_trusted = clock_trusted
        self.clocks = ClockMemory(outbox)

    async def readings(
        self,
        state: DeviceState,
        readings: Sequence[Reading],
        received_at: datetime,
        *,
        characteristic: str,
        fresh: bool,
        stored_kind: bool,
        from_storage: bool = False,
        continuous: bool = False,
        extra_context: Mapping[str, str] | None = None,
        state_entry: Mapping[str, str] | None = None,
    ) -> list[Observation]:
        """Stamp, store durably, then wake the uplink. Returns the stored observations."""
        built: list[Observation] = []
        policy = self.policy_for(state)
        for reading in readings:
            self.update_skew(state, reading.measured_at, received_at, fresh=fresh)
            ignores_dst = self.ignores_dst(state)  # as this reading may just have taught
            skew, source, doubtful = state.clock_at(
                None
                if reading.measured_at is None
                else device_instant(reading.measured_at, received_at, policy),
                received_at,
                fresh=fresh,
            )
            late = (
                stored_kind
                and not fresh
                and reading.measured_at is not None
                and delivered_late(
                    reading.measured_at,
                    received_at,
                    policy,
                    skew,
                    ignores_dst=ignores_dst,
                )
            )
            when = stamp(
                reading.measured_at,
                received_at,
                policy,
                skew=skew,
                source=source,
                ignores_dst=ignores_dst,
                fresh=fresh,
                doubtful=doubtful,
                time_offset_min=reading.time_offset_min,
                from_storage=(from_storage or late) and FROM_DEVICE_STORAGE not in reading.flags,
            )
            try:
                built.append(
                    observation(
                        reading,
                        when,
                        state.paired,
                        gateway_id=self.outbox.gateway_id,
                        received_at=received_at,
                        continuous=continuous,
                        extra_context=extra_context,
                    )
                )
            except InvalidValue as error:
                self.reject(state, characteristic, b"", f"{reading.metric}: {error}")
        stored = await asyncio.to_thread(self.outbox.append, built, state=state_entry)
        if stored:
            self.notify()
            state.last_reading_at = received_at
            state.readings += len(stored)
        return stored

    async def glucose(
        self,
        state: DeviceState,
        records: Sequence[GlucoseRecord],
        received_at: datetime,
        *,
        from_storage: bool,
    ) -> None:
        """Store each record, then move the meter's sync position past it."""
        for record in records:
            anchor = anchor_of(record.measurement)
            await self.readings(
                state,
                record.measurement.readings,
                received_at,
                characteristic=record.measurement.characteristic,
                fresh=not from_storage,
                stored_kind=False,
                from_storage=from_storage,
                extra_context=record.context,
                state_entry=self.sync.entry(state.address, record.sequence_number, anchor),
            )
            self.sync.stored(state.address, record.sequence_number, anchor)

    def policy_for(self, state: DeviceState) -> TimePolicy:
        """The time policy for ``state``'s stamps: in the zone and DST offset the device declares
        (Local Time Information) where it does, else in the patient's zone."""
        if state.local_time is None:
            return self.policy
        return replace(self.policy, tz=state.local_time)

    @staticmethod
    def ignores_dst(state: DeviceState) -> bool:
        """Whether to read ``state``'s stamps as standard time: what was learnt of its clock,
        unless the device declares its DST offset itself."""
        return state.ignores_dst is True and state.local_time is None

    def update_skew(
        self,
        state: DeviceState,
        device_time: datetime | None,
        received_at: datetime,
        *,
        fresh: bool,
        source: ClockSource = ClockSource.READING,
    ) -> None:
        """Learn the device's clock offset (and whether it ignores DST) from ``device_time``."""
        if not self.clock_trusted():
            return  # a gateway clock that is itself wrong must not blame the device
        estimate = estimate_clock(device_time, received_at, self.policy_for(state), fresh=fresh)
        if estimate is None:
            return
        if (
            source is ClockSource.READING
            and state.clock_source is ClockSource.CURRENT_TIME
            and state.clock_skew is not None
            and not is_skewed(estimate.skew - state.clock_skew, self.policy)
        ):
            return  # the clock read this session is exact; a reading only confirms it
        if is_skewed(estimate.skew, self.policy) and not is_skewed(state.clock_skew, self.policy):
            log.warning("%s clock is off by %+.0f s", state.address, estimate.skew.total_seconds())
        state.clock_skew = estimate.skew
        state.clock_source = source
        if estimate.ignores_dst is not None:
            state.ignores_dst = estimate.ignores_dst
            self.clocks.remember(state.address, state.ignores_dst)

    def clock_was_set(self, state: DeviceState, at: datetime) -> None:
        """The gateway set the device's clock at ``at`` (``DeviceState.clock_was_set``)."""
        state.clock_was_set(at)
        self.clocks.remember(state.address, state.ignores_dst)

    def reject(self, state: DeviceState, characteristic: str, payload: bytes, error: str) -> None:
        """A value the decoders refused: counted, logged with its bytes, kept on disk."""
        state.decode_errors += 1
        self.recoveries[DECODE_ERRORS] += 1
        log.warning(
            "%s sent an undecodable %s value %s: %s",
            state.address,
            characteristic,
            payload.hex(),
            error,
        )
        try:
            self.rejected.record(
                RejectedValue(
                    at=self.policy.now(),
                    device_id=state.address,
                    characteristic=characteristic,
                    payload_hex=payload.hex(),
                    error=error,
                )
            )
        except OSError as failure:
            log.warning("cannot write the rejected-values log: %s", failure)
