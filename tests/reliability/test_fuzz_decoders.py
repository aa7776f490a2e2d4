"""Decoder fuzzing (issue #9): 10,000 generated payloads per characteristic, no crash, no hang.

Every characteristic in the codec table (``gateway.gatt.CHARACTERISTICS``) gets random byte
strings and structure-aware mutations of values its own decoder accepts. Each payload must either
decode into what the codec contract promises (docs/ble.md: finite readings in the metric's
canonical unit, special values and unknown dates as ``Skipped`` with a reason) or raise
``DecodeError`` naming the characteristic and the problem. The codec does not judge plausibility
(ingest rejects such values as ``out_of_range``), so implausible readings are counted, not failed.

Then the same kind of stream goes through a device session's notification path: each malformed
value must be counted, logged and kept in rejected.jsonl, and the valid values around it must be
stored exactly as they are without it.

Everything is seeded: a failure names the characteristic and the payload's bytes.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from random import Random
from types import SimpleNamespace

import pytest

import gateway.gatt
from gateway.clock_check import TimePolicy
from gateway.devices.glucose_sync import SyncStore
from gateway.devices.profiles import PROFILES, SessionProfile
from gateway.devices.recorder import Recorder
from gateway.devices.recovery import DECODE_ERRORS, Recoveries
from gateway.devices.rejected import REJECTED_FILE, RejectedLog
from gateway.devices.session import RECENT_PAYLOADS, DeviceSession, SessionOptions
from gateway.devices.state import DeviceState
from gateway.gatt import (
    CHARACTERISTICS,
    BloodPressureMeasurement,
    Characteristic,
    CharacteristicUuid,
    Decoded,
    DecodeError,
    GattDateTime,
    SpecialValue,
    decode_all,
)
from gateway.gatt.fields import DATE_TIME, FLOAT, SFLOAT
from gateway.gatt.ieee11073 import FLOAT as FLOAT_FORMAT
from gateway.gatt.ieee11073 import SFLOAT as SFLOAT_FORMAT
from gateway.gatt.ieee11073 import MedfloatFormat
from gateway.gatt.layout import Layout
from gateway.gatt.reader import MAX_ATTRIBUTE_LENGTH
from gateway.outbox import Outbox
from telemon.flags import FLAGS
from telemon.metrics import METRICS
from telemon.payload import PairedDevice

PAYLOADS_PER_CHARACTERISTIC = 10_000
RANDOM_SHARE = 0.25  # the rest are mutations of valid values
MAX_RANDOM_LENGTH = 64
SEEDS_PER_CHARACTERISTIC = 48
SYNTHESIS_BUDGET = 2_000  # repair steps per valid value; they converge in tens
SEED = "issue-9"
# A hang guard, not a speed target: about a thousand times what a decode takes.
HANG_GUARD_PER_CALL = 0.01  # seconds, checked over the whole batch

# --- what the codec package says about itself -----------------------------------------------


def _find_layouts() -> dict[str, Layout]:
    """Every flag-driven layout in gateway.gatt, by characteristic label.

    Found by looking rather than listed, so a new profile's fields are mutated by type too.
    """
    found: dict[str, Layout] = {}
    for module_info in pkgutil.iter_modules(gateway.gatt.__path__):
        module = importlib.import_module(f"{gateway.gatt.__name__}.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, Layout):
                found[value.characteristic] = value
    return found


LAYOUTS = _find_layouts()
ENTRIES = tuple(CHARACTERISTICS.values())
SPECIAL_REASONS = frozenset(special.reason for special in SpecialValue)
CONTEXT_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # Observation's context limits
MAX_CONTEXT, MAX_CONTEXT_VALUE = 16, 64


def label_of(entry: Characteristic) -> str:
    return entry.uuid.label


# --- valid values, grown from the decoder's own errors -----------------------------------------


def _repair_byte(rng: Random) -> int:
    # Enumerations are small numbers: half the guesses stay below 16 so they converge quickly.
    return rng.randrange(16) if rng.random() < 0.5 else rng.randrange(256)


def synthesise(entry: Characteristic, rng: Random) -> bytes | None:
    """A value the decoder accepts, grown from random bytes by repairing what its errors name.

    It needs no knowledge of the characteristic: a DecodeError says where the value went wrong
    and why (the reasons of docs/ble.md), which is enough to append, cut or change bytes there.
    """
    payload = bytearray(rng.randbytes(rng.randint(0, 24)))
    for _ in range(SYNTHESIS_BUDGET):
        try:
            entry.decode(bytes(payload))
        except DecodeError as error:
            if "truncated" in error.reason or "promises" in error.reason:
                payload.append(0 if rng.random() < 0.5 else rng.randrange(256))
            elif "trailing" in error.reason:
                del payload[error.offset :]
            elif rng.random() < 0.7:
                payload[error.offset] = _repair_byte(rng)
            else:
                # Zero is valid for most fields (a 0.0 SFLOAT, an unknown date, no status bits).
                payload[error.offset :] = bytes(len(payload) - error.offset)
        else:
            return bytes(payload)
    return None


@dataclass(frozen=True, slots=True)
class Span:
    offset: int
    size: int
    kind: str  # "flags", "sfloat", "float", "date_time" or "field"


@dataclass(frozen=True, slots=True)
class Seed:
    payload: bytes
    spans: tuple[Span, ...]  # empty when the characteristic has no Layout


_CODEC_KINDS = ((SFLOAT, "sfloat"), (FLOAT, "float"), (DATE_TIME, "date_time"))


def spans_of(entry: Characteristic, payload: bytes) -> tuple[Span, ...]:
    """Where each present field of a valid value sits, and what type it is."""
    layout = LAYOUTS.get(label_of(entry))
    if layout is None:
        return ()
    wire = layout.decode(payload)
    spans = [Span(0, layout.flags_size, "flags")]
    for layout_field in layout.fields:
        if layout_field.name in wire.offsets:
            kind = next((k for c, k in _CODEC_KINDS if layout_field.codec is c), "field")
            spans.append(Span(wire.offsets[layout_field.name], layout_field.codec.size, kind))
    return tuple(spans)


def seeds_for(entry: Characteristic, rng: Random) -> list[Seed]:
    payloads = {synthesise(entry, rng) for _ in range(SEEDS_PER_CHARACTERISTIC)}
    payloads.discard(None)
    assert payloads, f"{label_of(entry)}: no valid value could be grown from its errors"
    return [Seed(p, spans_of(entry, p)) for p in sorted(payloads, key=lambda p: (len(p), p))]


# --- values worth planting in fields ------------------------------------------------------------


def medfloat_tokens(fmt: MedfloatFormat) -> tuple[bytes, ...]:
    """Special values, extreme exponents, and special mantissas at non-zero exponents."""
    exponent_mask = (1 << fmt.exponent_bits) - 1
    mantissa_mask = (1 << fmt.mantissa_bits) - 1
    exponents = (fmt.exponent_range.start, -1, 0, 1, fmt.exponent_range.stop - 1)
    mantissas = (0, 1, -1, fmt.largest_mantissa, -fmt.largest_mantissa, *fmt.specials)
    raws = {
        (exponent & exponent_mask) << fmt.mantissa_bits | mantissa & mantissa_mask
        for exponent in exponents
        for mantissa in mantissas
    }
    return tuple(raw.to_bytes(fmt.size, "little") for raw in sorted(raws))


def _date_time(
    year: int, month: int, day: int, hours: int = 0, minutes: int = 0, seconds: int = 0
) -> bytes:
    # Written by hand: the encoder (rightly) refuses most of these.
    return year.to_bytes(2, "little") + bytes((month, day, hours, minutes, seconds))


ODD_DATE_TIMES = (
    _date_time(0, 0, 0),  # all "not known"
    _date_time(0, 2, 29),  # 29 February of an unknown year
    _date_time(65535, 1, 1),
    _date_time(1581, 12, 31, 23, 59, 59),
    _date_time(1582, 1, 1),
    _date_time(9999, 12, 31, 23, 59, 59),
    _date_time(10000, 1, 1),
    _date_time(2024, 13, 1),
    _date_time(2024, 0, 15),
    _date_time(2024, 2, 30),
    _date_time(2023, 2, 29),
    _date_time(2024, 2, 29),
    _date_time(2024, 4, 31),
    _date_time(2024, 1, 32),
    _date_time(2024, 1, 0),
    _date_time(2024, 1, 1, 24),
    _date_time(2024, 1, 1, 0, 60),
    _date_time(2024, 1, 1, 0, 0, 60),
    b"\xff" * 7,
)
TOKENS = {
    "sfloat": medfloat_tokens(SFLOAT_FORMAT),
    "float": medfloat_tokens(FLOAT_FORMAT),
    "date_time": ODD_DATE_TIMES,
}


def _valid_date_time(rng: Random) -> bytes:
    return GattDateTime(
        rng.randint(1582, 9999),
        rng.randint(1, 12),
        rng.randint(1, 28),
        rng.randint(0, 23),
        rng.randint(0, 59),
        rng.randint(0, 59),
    ).pack()


# --- mutations: each changes a bytearray in place ---------------------------------------------

Mutation = Callable[[Random, bytearray, Sequence[Span]], None]


def _plant(rng: Random, payload: bytearray, spans: Sequence[Span], kind: str, token: bytes) -> None:
    """Write ``token`` over a field of ``kind``, or anywhere when the layout is not known."""
    targets = [span.offset for span in spans if span.kind == kind]
    at = rng.choice(targets) if targets else rng.randint(0, len(payload))
    payload[at : at + len(token)] = token


def flip_flag_bits(rng: Random, payload: bytearray, spans: Sequence[Span]) -> None:
    # Byte 0 is the flags field of every layout (and the op code or value of the others).
    size = spans[0].size if spans else 1
    for _ in range(rng.randint(1, 2)):
        if payload:
            payload[rng.randrange(min(size, len(payload)))] ^= 1 << rng.randrange(8)


def truncate(rng: Random, payload: bytearray, spans: Sequence[Span]) -> None:
    del payload[rng.randint(0, len(payload)) :]


def extend_with_junk(rng: Random, payload: bytearray, spans: Sequence[Span]) -> None:
    if rng.random() < 0.05:  # across the attribute maximum
        target = MAX_ATTRIBUTE_LENGTH + rng.randint(-4, 8)
        payload.extend(rng.randbytes(max(0, target - len(payload))))
    else:
        payload.extend(rng.randbytes(rng.randint(1, 16)))


def plant_medfloat(rng: Random, payload: bytearray, spans: Sequence[Span]) -> None:
    kinds = [span.kind for span in spans if span.kind in ("sfloat", "float")]
    if spans and not kinds:
        return  # a layout without numbers (the weight scale's are integers)
    kind = rng.choice(kinds or ["sfloat", "float"])
    _plant(rng, payload, spans, kind, rng.choice(TOKENS[kind]))


def plant_date_time(rng: Random, payload: bytearray, spans: Sequence[Span]) -> None:
    token = rng.choice(ODD_DATE_TIMES) if rng.random() < 0.6 else _valid_date_time(rng)
    _plant(rng, payload, spans, "date_time", token)


def extreme_field(rng: Random, payload: bytearray, spans: Sequence[Span]) -> None:
    """A status, enumeration or integer field at all ones, zero or random."""
    targets = [span for span in spans if span.kind == "field"] or [
        Span(rng.randint(0, len(payload)), rng.randint(1, 3), "field")
    ]
    span = rng.choice(targets)
    filler = rng.choice((b"\xff" * span.size, bytes(span.size), rng.randbytes(span.size)))
    payload[span.offset : span.offset + span.size] = filler


def overwrite_bytes(rng: Random, payload: bytearray, spans: Sequence[Span]) -> None:
    for _ in range(rng.randint(1, 3)):
        if payload:
            payload[rng.randrange(len(payload))] = rng.randrange(256)


def insert_or_delete(rng: Random, payload: bytearray, spans: Sequence[Span]) -> None:
    at = rng.randint(0, len(payload))
    if payload and rng.random() < 0.5:
        del payload[min(at, len(payload) - 1)]
    else:
        payload[at:at] = rng.randbytes(rng.randint(1, 4))


MUTATIONS: tuple[Mutation, ...] = (
    flip_flag_bits,
    truncate,
    extend_with_junk,
    plant_medfloat,
    plant_medfloat,  # twice: numbers are what most characteristics carry
    plant_date_time,
    extreme_field,
    overwrite_bytes,
    insert_or_delete,
)


def mutant(rng: Random, seed: Seed) -> bytes:
    payload = bytearray(seed.payload)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        rng.choice(MUTATIONS)(rng, payload, seed.spans)
    return bytes(payload)


@cache
def corpus(entry: Characteristic) -> tuple[bytes, ...]:
    """The payloads for one characteristic: the same ones on every run."""
    rng = Random(f"{SEED}:{label_of(entry)}")
    seeds = seeds_for(entry, rng)
    payloads = [seed.payload for seed in seeds]
    payloads += [seed.payload[:cut] for seed in seeds for cut in range(len(seed.payload))]
    while len(payloads) < PAYLOADS_PER_CHARACTERISTIC:
        if rng.random() < RANDOM_SHARE:
            payloads.append(rng.randbytes(rng.randint(0, MAX_RANDOM_LENGTH)))
        else:
            payloads.append(mutant(rng, rng.choice(seeds)))
    return tuple(payloads[:PAYLOADS_PER_CHARACTERISTIC])


# --- judging one outcome ------------------------------------------------------------------------

# Rejection reasons grouped for the printed summary; anything else is shown with numbers masked.
REASON_KINDS = (
    ("oversized", re.compile(r"longer than the")),
    ("truncated", re.compile(r"truncated|promises")),
    ("trailing bytes", re.compile(r"trailing")),
    ("reserved flag bits", re.compile(r"^flags 0x|extended flags")),
    ("reserved status bits", re.compile(r"reserved \w+ bits set")),
    ("invalid date/time", re.compile(r"date time|does not exist")),
    ("reserved value", re.compile(r"is reserved")),
    ("operator not allowed", re.compile(r"does not take")),
    ("not UTF-8", re.compile(r"not UTF-8")),
)


def reason_kind(reason: str) -> str:
    for kind, pattern in REASON_KINDS:
        if pattern.search(reason):
            return kind
    return re.sub(r"0x[0-9a-f]+|\d+", "#", reason)


def error_problems(label: str, payload: bytes, error: DecodeError) -> list[str]:
    problems = []
    if error.characteristic != label:
        problems.append(f"names characteristic {error.characteristic!r}")
    if not error.reason.strip():
        problems.append("gives no reason")
    if not str(error).startswith(f"{label}: "):
        problems.append(f"message {str(error)!r} does not start with the characteristic")
    if not 0 <= error.offset <= len(payload):
        problems.append(f"offset {error.offset} is outside the {len(payload)}-byte payload")
    return problems


def _record_values(record: object) -> list[object]:
    if not is_dataclass(record):
        return [record]
    return [getattr(record, f.name) for f in fields(record)]


def decoded_problems(label: str, decoded: Decoded) -> list[str]:
    """Where a successful decode breaks the codec contract of docs/ble.md."""
    problems = []
    if decoded.characteristic != label:
        problems.append(f"decoded as {decoded.characteristic!r}")
    for reading in decoded.readings:
        metric = METRICS.get(reading.metric)
        if metric is None:
            problems.append(f"unknown metric {reading.metric!r}")
            continue
        if reading.unit != metric.unit:
            problems.append(f"{reading.metric} in {reading.unit!r}, not {metric.unit!r}")
        if not math.isfinite(reading.value):
            problems.append(f"{reading.metric} is {reading.value!r}")
        if not set(reading.flags) <= set(FLAGS):
            problems.append(f"unknown flags {set(reading.flags) - set(FLAGS)}")
        if len(reading.context) > MAX_CONTEXT or not all(
            CONTEXT_KEY.match(key) and isinstance(value, str) and len(value) <= MAX_CONTEXT_VALUE
            for key, value in reading.context.items()
        ):
            problems.append(f"context {reading.context!r} exceeds the Observation limits")
        stamp = reading.measured_at
        if stamp is not None and (not isinstance(stamp, datetime) or stamp.tzinfo is not None):
            problems.append(f"measured_at {stamp!r} is not a naive datetime")
    for skipped in decoded.skipped:
        if not (skipped.field and skipped.reason):
            problems.append(f"skip without field or reason: {skipped!r}")
    values = _record_values(decoded.record)
    if any(isinstance(v, float) and not math.isfinite(v) for v in values):
        problems.append(f"non-finite float in the record {decoded.record!r}")
    # Each special value is a skip with its reason, unless the characteristic yields nothing at
    # all (intermediate cuff pressure and temperature decode for display only).
    if decoded.readings or decoded.skipped:
        specials = Counter(v.reason for v in values if isinstance(v, SpecialValue))
        skips = Counter(s.reason for s in decoded.skipped if s.reason in SPECIAL_REASONS)
        if specials != skips:
            problems.append(f"special values {dict(specials)} but skips {dict(skips)}")
    return problems


@dataclass
class Tally:
    generated: int = 0
    decoded: int = 0
    with_readings: int = 0
    implausible: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    slowest: float = 0.0
    position: int = 0  # the payload being decoded, for the hang report

    def summary(self, label: str) -> str:
        lines = [
            f"{label}: generated {self.generated}, decoded {self.decoded} "
            f"({self.with_readings} with readings, {sum(self.implausible.values())} implausible "
            f"readings), rejected {sum(self.rejected.values())}, crashes {len(self.crashes)}, "
            f"slowest call {self.slowest * 1e6:.0f} µs",
            "    rejected: " + _counts(self.rejected),
        ]
        if self.skipped:
            lines.append("    skipped: " + _counts(self.skipped))
        if self.implausible:
            counts = _counts(self.implausible)
            lines.append(f"    implausible (ingest rejects them as out_of_range): {counts}")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counter.most_common()) or "none"


def fuzz(entry: Characteristic, payloads: Sequence[bytes], tally: Tally) -> None:
    label, uuid = label_of(entry), entry.uuid.full
    for position, payload in enumerate(payloads):
        tally.position = position
        tally.generated += 1
        started = time.perf_counter()
        try:
            outcome: Decoded | Exception = decode_all(uuid, payload)
        except Exception as raised:  # anything but a DecodeError is the very thing under test
            outcome = raised
        tally.slowest = max(tally.slowest, time.perf_counter() - started)
        if isinstance(outcome, DecodeError):
            tally.rejected[reason_kind(outcome.reason)] += 1
            problems = error_problems(label, payload, outcome)
        elif isinstance(outcome, Exception):
            tally.crashes.append(f"{payload.hex()}: {type(outcome).__name__}: {outcome}")
            continue
        else:
            tally.decoded += 1
            tally.with_readings += bool(outcome.readings)
            tally.skipped.update(reason_kind(s.reason) for s in outcome.skipped)
            tally.implausible.update(
                r.metric for r in outcome.readings if not METRICS[r.metric].is_plausible(r.value)
            )
            problems = decoded_problems(label, outcome)
        tally.violations.extend(f"{payload.hex()}: {problem}" for problem in problems)


def fuzz_guarded(entry: Characteristic, payloads: Sequence[bytes]) -> Tally:
    """``fuzz`` in a daemon thread, so a decoder that never returns fails the test instead."""
    tally = Tally()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            fuzz(entry, payloads, tally)
        except BaseException as failure:  # surfaced below: a thread's exception is lost
            failures.append(failure)

    worker = threading.Thread(target=work, name=f"fuzz {label_of(entry)}", daemon=True)
    worker.start()
    worker.join(HANG_GUARD_PER_CALL * len(payloads))
    if worker.is_alive():
        stuck = payloads[tally.position]
        pytest.fail(f"{label_of(entry)}: decoder did not return on {stuck.hex()!r}")
    if failures:
        raise failures[0]
    return tally


@pytest.mark.parametrize("entry", ENTRIES, ids=label_of)
def test_generated_payloads_decode_or_are_rejected_with_a_reason(entry: Characteristic) -> None:
    payloads = corpus(entry)
    tally = fuzz_guarded(entry, payloads)
    print("\n" + tally.summary(label_of(entry)))
    assert tally.generated == PAYLOADS_PER_CHARACTERISTIC
    assert not tally.crashes, "\n".join(tally.crashes[:10])
    assert not tally.violations, "\n".join(tally.violations[:10])
    # Both outcomes were exercised, or the generator has gone blind.
    assert tally.decoded and tally.rejected


# --- the gateway path: notification -> decode -> outbox or rejected.jsonl -----------------------

PATH_PAYLOADS_PER_CHARACTERISTIC = 150
RECEIVED_AT = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
GATEWAY_ID = "gw-fuzz"
ADDRESS = "AA:BB:CC:DD:EE:01"
PATIENT = "P0001"

Stream = list[tuple[CharacteristicUuid, bytes]]


def notification_stream(profile: SessionProfile) -> Stream:
    """Fuzzed values of every characteristic the kind subscribes to, interleaved, no repeats.

    No exact repeats, because the session rightly drops a time-stamped value it has just stored.
    """
    rng = Random(f"{SEED}:session:{profile.kind}")
    stream: Stream = []
    for uuid in profile.subscribe:
        unique = list(dict.fromkeys(corpus(CHARACTERISTICS[uuid.value])))
        stream += [(uuid, p) for p in rng.sample(unique, PATH_PAYLOADS_PER_CHARACTERISTIC)]
    rng.shuffle(stream)
    return stream


@dataclass(frozen=True, slots=True)
class SessionRun:
    observations: list[dict[str, object]]
    state: DeviceState
    recoveries: Recoveries
    rejected: list[dict[str, str]]


async def run_session(
    directory: Path, profile: SessionProfile, stream: Stream, *, clock_trusted: bool
) -> SessionRun:
    """Deliver ``stream`` through a session's notification callback and its recording consumer.

    There is no pure function from a notification to an outbox entry, so this drives the
    session's own callback (what bleak calls) and consumer, with a real recorder, outbox and
    rejected-values log, and no radio.
    """
    outbox = Outbox(directory / "outbox.db", GATEWAY_ID)
    try:
        # Kept whole (it is trimmed past twice ``keep``), to be compared entry by entry.
        rejected = RejectedLog(directory / REJECTED_FILE, keep=len(stream))
        recoveries = Recoveries()
        recorder = Recorder(
            outbox,
            notify=lambda: None,
            rejected=rejected,
            sync=SyncStore(outbox),
            recoveries=recoveries,
            policy=TimePolicy(now=lambda: RECEIVED_AT),
            clock_trusted=lambda: clock_trusted,
        )
        paired = PairedDevice(address=ADDRESS, kind=profile.kind, patient_id=PATIENT)
        state = DeviceState(paired)
        session = DeviceSession(
            state, profile, recorder, SessionOptions(), deque(maxlen=RECENT_PAYLOADS)
        )
        for uuid, payload in stream:
            session._on_value(SimpleNamespace(uuid=uuid.full), bytearray(payload))
        session._queue.put_nowait(None)  # the end of the session, as run() marks it
        await session._consume()
        observations = [
            {k: v for k, v in asdict(o).items() if k != "seq"}
            for o in outbox.peek(10 * len(stream))
        ]
        return SessionRun(observations, state, recoveries, rejected.entries())
    finally:
        outbox.close()


def _rejection(uuid: CharacteristicUuid, payload: bytes) -> str | None:
    try:
        decode_all(uuid.full, payload)
    except DecodeError as error:
        return str(error)
    return None


@pytest.mark.parametrize("kind", sorted(PROFILES))
async def test_malformed_notifications_are_rejected_visibly_and_valid_ones_still_recorded(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    profile = PROFILES[kind]
    stream = notification_stream(profile)
    errors = [(uuid, payload, _rejection(uuid, payload)) for uuid, payload in stream]
    malformed = [(uuid, payload, error) for uuid, payload, error in errors if error is not None]
    valid = [(uuid, payload) for uuid, payload, error in errors if error is None]
    assert malformed and valid

    # Skew estimation is on: fuzzed far-future device clocks must neither crash the session nor
    # poison the skew of the readings after them (see tests/gateway/test_clock_bounds.py).
    alone = await run_session(tmp_path / "valid", profile, valid, clock_trusted=True)
    caplog.clear()
    mixed = await run_session(tmp_path / "mixed", profile, stream, clock_trusted=True)

    # Valid values are stored exactly as when nothing malformed came between them.
    assert alone.observations, "no valid value of the stream yields a reading"
    assert mixed.observations == alone.observations
    # Every malformed value is counted, logged with its bytes and kept for a technician.
    assert mixed.state.decode_errors == len(malformed)
    assert mixed.recoveries[DECODE_ERRORS] == len(malformed)
    assert [(e["characteristic"], e["payload_hex"], e["error"]) for e in mixed.rejected] == [
        (uuid.label, payload.hex(), error) for uuid, payload, error in malformed
    ]
    logged = [r for r in caplog.records if "undecodable" in r.getMessage()]
    assert len(logged) == len(malformed)
    assert all(r.levelname == "WARNING" for r in logged)
    print(
        f"\n{kind}: {len(stream)} notifications, {len(valid)} valid -> "
        f"{len(mixed.observations)} outbox entries, {len(malformed)} rejected "
        f"(decode_errors {mixed.recoveries[DECODE_ERRORS]}, rejected.jsonl {len(mixed.rejected)})"
    )


async def test_a_device_clock_at_year_9999_does_not_stop_recording(tmp_path: Path) -> None:
    far_future = BloodPressureMeasurement(
        120.0, 80.0, 93.0, timestamp=GattDateTime(9999, 12, 31, 23, 59, 59)
    ).encode()
    ordinary = BloodPressureMeasurement(
        121.0, 81.0, 94.0, timestamp=GattDateTime(2025, 6, 2, 9, 55, 0)
    ).encode()
    uuid = CharacteristicUuid.BLOOD_PRESSURE_MEASUREMENT
    run = await run_session(
        tmp_path,
        PROFILES["blood_pressure"],
        [(uuid, far_future), (uuid, ordinary)],
        clock_trusted=True,
    )
    assert len(run.observations) == 6  # systolic, diastolic, mean arterial pressure, twice
