"""What decoding produces: readings for storage, skips with reasons, and the decoded record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from gateway.gatt.datetime_field import GattDateTime
from gateway.gatt.ieee11073 import Medfloat, SpecialValue
from telemon.metrics import MetricKey, get_metric, to_canonical

RecordT = TypeVar("RecordT", covariant=True)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one metric, in the metric's canonical unit.

    ``measured_at`` is the device's own timestamp as a naive datetime in the device's local time
    (GATT Date Time has no zone); None when the device sent none or an unusable one. The gateway
    localises it, or stamps its receive time and the ``gateway_time`` flag.
    """

    metric: MetricKey
    value: float
    unit: str
    measured_at: datetime | None
    flags: tuple[str, ...] = ()
    context: dict[str, str] = field(default_factory=dict, hash=False)
    # A time offset field the characteristic carries beside its stamp (Glucose Measurement's,
    # minutes, already added into ``measured_at``): kept for the reading's time record.
    time_offset_min: int | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A field that was well-formed but yields no reading (or no timestamp), and why."""

    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class Decoded(Generic[RecordT]):
    """Everything one characteristic value says.

    ``record`` is the profile's dataclass (``BloodPressureMeasurement``, ``RacpResponse``,
    ``BatteryLevel``...), with every field as sent, so nothing is lost for records that are not
    readings (glucose context, RACP responses, device information).
    """

    characteristic: str
    record: RecordT
    readings: tuple[Reading, ...] = ()
    skipped: tuple[Skipped, ...] = ()


def format_number(value: float) -> str:
    """A context value: short, without float noise (0.045 * 1000 -> '45')."""
    return f"{value:.6g}"


class ReadingsBuilder:
    """Collects the readings of one record, which share a timestamp, flags and context."""

    def __init__(
        self,
        *,
        flags: tuple[str, ...] = (),
        context: Mapping[str, str] | None = None,
    ) -> None:
        self.measured_at: datetime | None = None
        self.time_offset_min: int | None = None
        self.flags = flags
        self.context = dict(context or {})
        self._readings: list[Reading] = []
        self._skipped: list[Skipped] = []

    def skip(self, field_name: str, reason: str) -> None:
        self._skipped.append(Skipped(field_name, reason))

    def timestamp(self, field_name: str, stamp: GattDateTime | None) -> None:
        if stamp is None:
            return
        self.measured_at = stamp.to_datetime()
        if self.measured_at is None:
            self.skip(field_name, "device date not known (year, month or day is 0)")

    def number(self, field_name: str, value: Medfloat | None) -> float | None:
        """``value`` if it is a number; a skip with the reason if it is a special value."""
        if isinstance(value, SpecialValue):
            self.skip(field_name, value.reason)
            return None
        return value

    def add(
        self,
        metric: MetricKey,
        value: Medfloat | None,
        unit: str,
        *,
        field_name: str | None = None,
        flags: tuple[str, ...] = (),
        context: Mapping[str, str] | None = None,
    ) -> None:
        number = self.number(field_name or metric, value)
        if number is None:
            return
        canonical = get_metric(metric)
        self._readings.append(
            Reading(
                metric=metric,
                value=to_canonical(canonical, number, unit),
                unit=canonical.unit,
                measured_at=self.measured_at,
                flags=_unique((*self.flags, *flags)),
                context={**self.context, **(context or {})},
                time_offset_min=self.time_offset_min,
            )
        )

    def build(self, characteristic: str, record: T) -> Decoded[T]:
        return Decoded(characteristic, record, tuple(self._readings), tuple(self._skipped))


def _unique(names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(names))


def flag_names(bits: int | None, table: Mapping[int, str]) -> tuple[str, ...]:
    """The telemon flag names of the set bits of a status field, in table order."""
    if bits is None:
        return ()
    return tuple(name for bit, name in table.items() if bits & bit)
