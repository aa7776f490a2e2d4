"""The fleet's homes and what their gateways send: ``obs`` messages exactly as a gateway sends them.

Every home wears a pulse oximeter all the time (1 Hz: SpO2 and pulse rate, nearly all of the
load) and takes the spot readings of its care plan's other devices (blood pressure, glucose,
weight, temperature) as often as the simulated patients' daily plan has them (firmware_sim's
SCHEDULE). Values are normal adult values (firmware_sim's baselines and device errors), kept
inside ranges no care protocol alerts on: the fleet is load, never a clinical event.

A gateway numbers its observations contiguously and sends a batch once it holds
``per_message`` of them, or at once when a spot reading arrives (a real gateway never holds
those back). Batches from all homes come out in the order they would be sent.

The physiological model of firmware_sim is not used: it costs a core for 25,000 readings/s and
its scenarios are meant to raise alerts.
"""

from __future__ import annotations

import functools
import heapq
import json
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import itemgetter
from types import MappingProxyType

from console.cohort import Cohort, DemoPatient, demo_cohort
from firmware_sim import physiology_devices
from firmware_sim.physiology import mean_arterial_pressure
from firmware_sim.physiology_conditions import GENERAL_BASELINES
from firmware_sim.physiology_devices import DEVICES
from firmware_sim.physiology_schedule import SCHEDULE
from telemon.device_kinds import DeviceKind
from telemon.identifier import observation_identifier
from telemon.metrics import METRICS
from telemon.observation import iso_z
from telemon.payload import MAX_BATCH, OBS_VERSION
from telemon.payload_schema import decode_observations
from telemon.topics import Channel, topic

OXIMETER = "pulse_oximeter"
CONTINUOUS_METRICS = ("spo2", "pulse_rate")  # one of each per second
DAY = 86_400.0
# Where a reading lands after its measurement: a second for the worn oximeter's stream, a few
# for a spot reading fetched over BLE after the measurement ends.
CONTINUOUS_DELAY = 1.0
SPOT_DELAY = 4.0

# Clinically unremarkable under every protocol in alerts/protocols (and for NEWS2), so that the
# background never opens an alert of its own.
NORMAL: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "spo2": (96.0, 100.0),
        "pulse_rate": (55.0, 90.0),
        "systolic": (105.0, 134.0),
        "diastolic": (60.0, 84.0),
        "mean_arterial_pressure": (70.0, 100.0),
        "glucose": (72.0, 140.0),
        "body_temperature": (36.1, 37.4),
        "body_weight": (40.0, 150.0),
    }
)


def readings_per_day(kind: str) -> float:
    return float(sum(session.readings for session in SCHEDULE[DeviceKind(kind)]))


@functools.cache
def channel(kind: str, metric: str) -> physiology_devices.Channel:
    return next(c for c in DEVICES[DeviceKind(kind)].channels if c.metric == metric)


def metrics_of(kind: str) -> tuple[str, ...]:
    metrics = DEVICES[DeviceKind(kind)].metrics
    # A cuff reports the mean arterial pressure it measured too (gateway.gatt.blood_pressure).
    return (*metrics, "mean_arterial_pressure") if kind == "blood_pressure" else metrics


def fleet_cohort(gateways: int, prefix: str | None = None) -> Cohort:
    """The demo cohort's mix of care plans, each home with an oximeter, codes under ``prefix``.

    A prefix keeps concurrent runs apart: every bench's ingest workers subscribe to every
    gateway's topic, and would store another run's observations under the same codes.
    """
    cohort = demo_cohort(gateways)
    patients = []
    for n, patient in enumerate(cohort.patients):
        devices = patient.devices
        if all(kind != OXIMETER for _, kind in devices):
            address = f"D0:{n // 256:02X}:{n % 256:02X}:00:00:{len(devices):02X}"
            devices = ((address, OXIMETER), *devices)
        code, gateway_code = patient.code, patient.gateway_code
        if prefix:
            code, gateway_code = f"P-{prefix}-{n + 1:05d}", f"gw-{prefix}-{n + 1:05d}"
        patients.append(replace(patient, code=code, gateway_code=gateway_code, devices=devices))
    return replace(cohort, patients=tuple(patients))


def natural_rate(cohort: Cohort) -> float:
    """Observations per simulated second the whole cohort produces."""
    rate = 0.0
    for patient in cohort.patients:
        for _, kind in patient.devices:
            if kind == OXIMETER:
                rate += len(CONTINUOUS_METRICS)
            else:
                rate += len(metrics_of(kind)) * readings_per_day(kind) / DAY
    return rate


@dataclass(frozen=True, slots=True)
class Timeline:
    """Where simulated time starts, and how fast it runs against real time."""

    start: float  # POSIX seconds of the first continuous samples
    span: float  # simulated seconds the run covers
    speed: float  # simulated seconds per real second; 0 for messages built ahead of time


def timeline(
    cohort: Cohort, total: int, *, per_message: int, duration: float = 0.0, now: float
) -> Timeline:
    """Simulated time for ``total`` observations published over ``duration`` real seconds.

    Readings are never stamped after the moment they are published (ingest refuses the
    future): the stream ends by ``now + duration`` and starts early enough that no home's first
    batch is ahead of ``now``. Faster than real time it is a fleet catching up on a backlog;
    slower, it falls behind the clock.
    """
    span = total / natural_rate(cohort)
    batch_span = per_message / len(CONTINUOUS_METRICS)
    # A home's first batch ends up to two batch spans after the start (phase, then filling),
    # and its items say they reached the gateway up to SPOT_DELAY after that.
    start = min(now, now + duration - span) - 2 * batch_span - SPOT_DELAY
    return Timeline(start, span, span / duration if duration else 0.0)


@dataclass(frozen=True, slots=True)
class Message:
    """One ``obs`` message; ``sent_at`` is stamped between ``head`` and ``tail`` on publishing."""

    gateway_id: str
    topic: str
    head: bytes
    tail: bytes
    observations: int

    def payload(self, sent_at: datetime) -> bytes:
        return self.head + iso_z(sent_at).encode() + self.tail

    def items(self) -> list[dict]:
        return json.loads(self.tail[len(_TAIL_START) : -1])


_TAIL_START = b'","observations":'


def message(gateway_id: str, items: list[dict]) -> Message:
    if not 0 < len(items) <= MAX_BATCH:
        raise ValueError(f"a message carries 1 to {MAX_BATCH} observations, not {len(items)}")
    body = json.dumps(items, separators=(",", ":"), allow_nan=False).encode()
    return Message(
        gateway_id,
        topic(gateway_id, Channel.OBS),
        b'{"v":%d,"gateway_id":"' % OBS_VERSION + gateway_id.encode() + b'","sent_at":"',
        _TAIL_START + body + b"}",
        len(items),
    )


def check_contract(candidate: Message) -> None:
    """Raise unless the server's own decoder accepts every observation of ``candidate``."""
    decoded = decode_observations(candidate.topic, candidate.payload(datetime.now(UTC)))
    if decoded.rejected or len(decoded.observations) != candidate.observations:
        detail = decoded.rejected[0].detail if decoded.rejected else "observations missing"
        raise AssertionError(f"the fleet broke the payload contract: {detail}")


# A reading before numbering: (device address, device kind, metric, value).
_Value = tuple[str, str, str, float]


# Which readings carry a stable identifier (telemon.identifier): a gateway gives one to each
# reading with a device time stamp, that is the spot readings (continuous oximetry has none);
# "all" and "none" are the bounds, for measuring what identifiers cost ingest.
IDENTIFIED = ("spot", "all", "none")


def reading_items(
    patient_code: str,
    first_seq: int,
    at: float,
    values: list[_Value],
    *,
    continuous: bool,
    identified: bool = False,
) -> list[dict]:
    """The wire items of one reading, numbered from ``first_seq``, as a gateway writes them."""
    measured = iso_z(datetime.fromtimestamp(at, UTC))
    delay = CONTINUOUS_DELAY if continuous else SPOT_DELAY
    received = iso_z(datetime.fromtimestamp(at + delay, UTC))
    items = []
    for offset, (address, kind, metric, value) in enumerate(values):
        context = {"device_kind": kind}
        if continuous:
            context["source"] = "continuous"  # what a gateway's outbox evicts first
        items.append(
            {
                "seq": first_seq + offset,
                "device_id": address,
                "patient_id": patient_code,
                "metric": metric,
                "value": value,
                "unit": METRICS[metric].unit,
                "measured_at": measured,
                "received_at": received,
                "context": context,
            }
        )
        if identified:
            items[-1]["identifier"] = observation_identifier(
                device_id=address,
                patient_id=patient_code,
                device_time=measured,
                type_code=metric,
                value=value,
            )
    return items


# When a device reads, and which: (simulated time, device address, device kind).
_Reading = tuple[float, str, str]


class Home:
    """One patient's devices and gateway, in simulated time.

    Only the time of the next message is known ahead (from the readings' times); its values are
    made when it is taken, so thousands of homes hold a few dozen tuples each, not batches.
    """

    def __init__(
        self,
        patient: DemoPatient,
        *,
        start: float,
        first_seq: int,
        per_message: int,
        seed: int,
        identified: str = "spot",
    ) -> None:
        self.patient = patient
        self.identified = identified
        self.per_message = per_message
        self.seq = first_seq
        self.rng = random.Random(f"{seed}:{patient.gateway_code}")
        self.baseline = {
            metric: b.mean + b.between_sd * max(-2.0, min(2.0, self.rng.gauss()))
            for metric, b in GENERAL_BASELINES.items()
        }
        # Gateways start at different phases, or they would all send in the same instant.
        self.start = math.floor(start + self.rng.uniform(0.0, per_message / 2))
        streams = [
            self._continuous(address) if kind == OXIMETER else self._spot(address, kind)
            for address, kind in patient.devices
        ]
        self._readings = heapq.merge(*streams, key=itemgetter(0))
        self._carry: list[dict] = []  # items beyond the last message, sent with the next
        self._urgent = False  # the carry holds a spot reading: it goes at once
        self._last_at = float(self.start)
        self._plan = self._next_plan()

    @property
    def next_at(self) -> float:
        """Simulated time at which the gateway sends its next message."""
        return self._plan[0]

    def take(self) -> list[dict]:
        """The next message's items, numbered on from the previous message's."""
        items = self._carry
        for at, address, kind in self._plan[1]:
            values = [(address, kind, m, v) for m, v in self._values(kind).items()]
            continuous = kind == OXIMETER
            items += reading_items(
                self.patient.code,
                self.seq,
                at,
                values,
                continuous=continuous,
                identified=self.identified == "all"
                or (self.identified == "spot" and not continuous),
            )
            self.seq += len(values)
            self._urgent = self._urgent or kind != OXIMETER
        sent, self._carry = items[: self.per_message], items[self.per_message :]
        self._urgent = self._urgent and bool(self._carry)
        self._plan = self._next_plan()
        return sent

    def _next_plan(self) -> tuple[float, list[_Reading]]:
        """When the next message leaves: ``per_message`` items gathered, or a spot reading."""
        held = len(self._carry)
        readings: list[_Reading] = []
        while held < self.per_message and not self._urgent:
            reading = next(self._readings)
            readings.append(reading)
            held += len(metrics_of(reading[2]))
            self._last_at = reading[0]
            if reading[2] != OXIMETER:
                break
        return self._last_at, readings

    def _values(self, kind: str) -> dict[str, float]:
        if kind == OXIMETER:
            return {m: self._value(kind, m) for m in CONTINUOUS_METRICS}
        values = {m: self._value(kind, m) for m in DEVICES[DeviceKind(kind)].metrics}
        if kind == "blood_pressure":
            values["mean_arterial_pressure"] = float(
                round(mean_arterial_pressure(values["systolic"], values["diastolic"]))
            )
        return {m: values[m] for m in metrics_of(kind)}

    def _value(self, kind: str, metric: str) -> float:
        device = channel(kind, metric)
        true = self.baseline[metric] + GENERAL_BASELINES[metric].within_sd * self.rng.gauss()
        read = device.quantise(true + device.error_sd(true) * self.rng.gauss())
        low, high = NORMAL[metric]
        return min(high, max(low, read))

    def _continuous(self, address: str) -> Iterator[_Reading]:
        at = float(self.start)
        while True:
            yield at, address, OXIMETER
            at += 1.0

    def _spot(self, address: str, kind: str) -> Iterator[_Reading]:
        at = float(self.start)
        mean_gap = DAY / readings_per_day(kind)
        while True:
            at = float(math.floor(at + self.rng.expovariate(1.0 / mean_gap)))
            yield at, address, kind


def fleet_messages(
    cohort: Cohort,
    total: int,
    *,
    per_message: int,
    start: float,
    first_seq: int = 0,
    seed: int = 7,
    identified: str = "spot",
) -> Iterator[Message]:
    """``total`` observations from every home of ``cohort``, in the order they are sent."""
    if not 0 < per_message <= MAX_BATCH:
        raise ValueError(f"--per-message must be 1 to {MAX_BATCH}")
    homes = [
        Home(
            p,
            start=start,
            first_seq=first_seq,
            per_message=per_message,
            seed=seed,
            identified=identified,
        )
        for p in cohort.patients
    ]
    queue = [(home.next_at, n) for n, home in enumerate(homes)]
    heapq.heapify(queue)
    left = total
    while left > 0:
        n = queue[0][1]
        items = homes[n].take()[:left]
        yield message(homes[n].patient.gateway_code, items)
        left -= len(items)
        heapq.heapreplace(queue, (homes[n].next_at, n))
