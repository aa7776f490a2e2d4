"""What the proprietary oximeter streams have in common once their packets are unpacked.

A stream repeats the display's SpO2 and pulse rate in every values packet, many times a second:
the newest values packet of a notification is what the display shows, so a notification yields
at most one sample, read as the PLX Continuous Measurement's SpO2PR-Normal pair is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from gateway.gatt.model import Decoded, ReadingsBuilder

RecordT = TypeVar("RecordT")

FINGER_OUT = "finger out of the probe: no measurement"


@dataclass(frozen=True, slots=True)
class OximeterSample:
    """The values one packet carries; None where the device sent its "invalid" sentinel."""

    spo2: int | None  # %
    pulse_rate: int | None  # beats per minute
    finger_out: bool = False
    searching: bool = False  # the device is still looking for a pulse


@dataclass(frozen=True, slots=True)
class Dropped:
    """Bytes of the stream that are no whole frame, and why."""

    payload: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Reassembled:
    """Whole frames, each group to be decoded as a notification, and what was dropped.

    A frame completed from the previous notification's fragment comes alone first: it was
    measured before the frames after it, whose newest values frame is the notification's sample.
    """

    payloads: tuple[bytes, ...] = ()
    dropped: tuple[Dropped, ...] = ()


def sample_readings(
    characteristic: str,
    record: RecordT,
    sample: OximeterSample | None,
    *,
    protocol: str,
    sentinels: tuple[str, str],  # how the device says "no valid value", for the reason
) -> Decoded[RecordT]:
    """The readings of ``sample`` (None: the notification carried no values packet)."""
    builder = ReadingsBuilder(
        flags=("signal_analysis_ongoing",) if sample is not None and sample.searching else (),
        context={"plx_mode": "continuous", "device_protocol": protocol},
    )
    if sample is None:
        return builder.build(characteristic, record)
    if sample.finger_out:
        builder.skip("spo2", FINGER_OUT)
        builder.skip("pulse_rate", FINGER_OUT)
        return builder.build(characteristic, record)
    spo2_invalid, pulse_invalid = sentinels
    if sample.spo2 is None:
        builder.skip("spo2", f"{spo2_invalid} is the device's 'no valid value'")
    else:
        builder.add("spo2", float(sample.spo2), "%")
    if sample.pulse_rate is None:
        builder.skip("pulse_rate", f"{pulse_invalid} is the device's 'no valid value'")
    else:
        builder.add(
            "pulse_rate",
            float(sample.pulse_rate),
            "/min",
            context={"pulse_source": "oximeter"},
        )
    return builder.build(characteristic, record)
