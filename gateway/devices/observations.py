"""A decoded reading plus its device and time stamp becomes an ``Observation`` (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from gateway.clock_check import FROM_DEVICE_STORAGE, Stamp
from gateway.gatt import Reading
from gateway.outbox import CONTINUOUS
from telemon.identifier import observation_identifier
from telemon.observation import CONTEXT_MAX, Observation
from telemon.payload import PairedDevice


def merge_context(*parts: Mapping[str, str], limit: int = CONTEXT_MAX) -> dict[str, str]:
    """Earlier parts win, both on a repeated key and when the limit cuts the rest off."""
    merged: dict[str, str] = {}
    for part in parts:
        for key, value in part.items():
            if key not in merged and len(merged) < limit:
                merged[key] = value
    return merged


def observation(
    reading: Reading,
    when: Stamp,
    device: PairedDevice,
    *,
    gateway_id: str,
    received_at: datetime,
    continuous: bool = False,
    extra_context: Mapping[str, str] | None = None,
) -> Observation:
    """The observation to store; ``seq`` is a placeholder the outbox replaces."""
    ours: dict[str, str] = {"device_kind": device.kind.value}
    if continuous:
        ours["source"] = CONTINUOUS  # the outbox evicts these first under disk pressure
    return Observation(
        gateway_id=gateway_id,
        seq=0,
        device_id=device.address,
        patient_id=device.patient_id,
        metric=reading.metric,
        value=reading.value,
        unit=reading.unit,
        measured_at=when.measured_at,
        received_at=received_at,
        flags=tuple(dict.fromkeys((*reading.flags, *when.flags))),
        context=merge_context(ours, when.context, reading.context, extra_context or {}),
        time=when.time,
        identifier=identify(reading, device, extra_context),
    )


def identify(
    reading: Reading, device: PairedDevice, extra_context: Mapping[str, str] | None = None
) -> str | None:
    """The reading's stable identifier, from what the device sent only: its stamp as sent (not
    the corrected time), its flags and context (a glucose record's joined context included)."""
    return observation_identifier(
        device_id=device.address,
        patient_id=device.patient_id,
        device_time=None if reading.measured_at is None else reading.measured_at.isoformat(),
        type_code=reading.metric,
        value=reading.value,
        # Whether a record came live or from storage depends on the connection, not the record.
        flags=[flag for flag in reading.flags if flag != FROM_DEVICE_STORAGE],
        context={**reading.context, **(extra_context or {})},
    )
