"""The write path: one batch of inbound messages, one transaction.

Observations are COPYed straight into ``observations``, and the identifiers of those that have
one (telemon.identifier) into ``observation_identifiers`` just before. A redelivered observation,
known by (gateway, seq, measured_at), or a record sent again under a new number (a device that
cannot delete its memory, a reinstalled gateway whose sequence numbers start again), known by
(patient, identifier), makes one of those COPYs fail on its unique key; the batch is then written
again through a temporary staging table and INSERT ... SELECT ... ON CONFLICT DO NOTHING, which
counts it as a duplicate and stores it once. The retry is decided by the statement that failed,
a COPY, never by the table the error names: on TimescaleDB the violation names a chunk
(``_hyper_1_1_chunk``), and one against a compressed batch names no table at all.

Conflict checking and the second copy cost PostgreSQL more than the insert itself, and
redelivery is rare, so only batches that need it pay for them. Dead letters, gateway presence,
the rollup queue and the NOTIFY to the alerts engine are written in the same transaction.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb, set_json_dumps

from ingest.deadletters import STORE_ERROR, DeadLetter, write_dead_letters
from ingest.inbound import Inbound, ObservationMessage, StatusMessage, UnusableMessage
from ingest.partitions import PartitionCache, week_index, weeks_of
from ingest.presence import apply_status
from telemon.database import connect, one_row
from telemon.device_kinds import DeviceKind
from telemon.metrics import METRICS
from telemon.payload import RejectReason
from telemon.payload_schema import ObservationItem
from telemon.store.notify import notify_new_observations

# Devices are registered on first sight with the kind their first stored reading implies; the
# gateway's next status message carries the real kind and corrects it.
DEVICE_KIND_BY_METRIC: dict[str, DeviceKind] = {
    "spo2": DeviceKind.PULSE_OXIMETER,
    "pulse_rate": DeviceKind.PULSE_OXIMETER,
    "respiratory_rate": DeviceKind.PULSE_OXIMETER,
    "systolic": DeviceKind.BLOOD_PRESSURE,
    "diastolic": DeviceKind.BLOOD_PRESSURE,
    "mean_arterial_pressure": DeviceKind.BLOOD_PRESSURE,
    "glucose": DeviceKind.GLUCOMETER,
    "body_temperature": DeviceKind.THERMOMETER,
    "body_weight": DeviceKind.WEIGHT_SCALE,
}

_METRIC_IDS = {key: metric.id for key, metric in METRICS.items()}
_STAGING_COLUMNS = (
    "measured_at, patient_id, metric_id, value, gateway_id, seq, device_id, received_at, "
    "flags, context, time_correction, identifier"
)
COPY_TYPES = (
    "timestamptz",
    "int8",
    "int2",
    "float8",
    "int8",
    "int8",
    "int8",
    "timestamptz",
    "text[]",
    "jsonb",
    "jsonb",
    "bytea",
)
_IDENTIFIER_TYPES = ("int8", "bytea", "timestamptz")
_CREATE_STAGING = """
CREATE TEMPORARY TABLE IF NOT EXISTS ingest_staging (
    measured_at timestamptz, patient_id bigint, metric_id smallint, value double precision,
    gateway_id bigint, seq bigint, device_id bigint, received_at timestamptz, flags text[],
    context jsonb, time_correction jsonb, identifier bytea
) ON COMMIT DELETE ROWS
"""
_COPY_STAGING = f"COPY ingest_staging ({_STAGING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
COPY_OBSERVATIONS = f"COPY observations ({_STAGING_COLUMNS}) FROM STDIN (FORMAT BINARY)"
# The batch-sized arrays below go in binary (%b): psycopg's text format quotes each element in
# Python, which at one reading per message cost more than the rows' COPY (5 ms for the rollup's
# three arrays of a thousand patients, 0.5 ms in binary).
_QUEUE_ROLLUP = (
    "INSERT INTO ingest_rollup_queue (patient_id, first_at, last_at) "
    "SELECT * FROM unnest(%b::bigint[], %b::timestamptz[], %b::timestamptz[])"
)
COPY_IDENTIFIERS = (
    "COPY observation_identifiers (patient_id, identifier, measured_at) FROM STDIN (FORMAT BINARY)"
)
_S_COLUMNS = ", ".join(f"s.{c.strip()}" for c in _STAGING_COLUMNS.split(","))
# Of the rows sharing an identifier, the first (by gateway and seq) claims it; a row whose
# identifier is taken, by a stored reading or by a row before it in this batch, is a duplicate.
_MOVE_STAGED_IGNORING_DUPLICATES = f"""
WITH staged AS (
    SELECT {_STAGING_COLUMNS},
           row_number() OVER (PARTITION BY patient_id, identifier ORDER BY gateway_id, seq) AS nth
    FROM ingest_staging
), claimed AS (
    INSERT INTO observation_identifiers (patient_id, identifier, measured_at)
    SELECT patient_id, identifier, measured_at FROM staged
    WHERE identifier IS NOT NULL AND nth = 1
    ON CONFLICT DO NOTHING
    RETURNING patient_id, identifier
), inserted AS (
    INSERT INTO observations ({_STAGING_COLUMNS})
    SELECT {_S_COLUMNS} FROM staged s
    WHERE s.identifier IS NULL
       OR (s.nth = 1 AND EXISTS (
           SELECT 1 FROM claimed c
           WHERE c.patient_id = s.patient_id AND c.identifier = s.identifier))
    ON CONFLICT DO NOTHING
    RETURNING patient_id, measured_at
), queued AS (
    INSERT INTO ingest_rollup_queue (patient_id, first_at, last_at)
    SELECT patient_id, min(measured_at), max(measured_at) FROM inserted GROUP BY patient_id
    RETURNING patient_id
)
SELECT (SELECT count(*) FROM inserted), (SELECT coalesce(array_agg(patient_id), '{{}}') FROM queued)
"""


class DuplicateObservations(Exception):
    """A COPY into ``observations`` or ``observation_identifiers`` hit its unique key: some rows
    of the batch are stored already. Only those COPYs raise it, so a unique violation from any
    other statement of the batch (devices, statuses, dead letters) is never mistaken for a
    redelivery."""


@dataclass(frozen=True, slots=True)
class Gateway:
    id: int
    patient_id: int | None
    patient_code: str | None


@dataclass(frozen=True, slots=True)
class Device:
    """A device row of a gateway. ``unpaired_at`` set: returned or swapped out (dashboard's kit)
    at that time; what it measures from then on is no longer its patient's."""

    id: int
    unpaired_at: datetime | None


# A batch's devices: by gateway id, then by the address the gateway names them by. Grouped once
# per batch, so that each message finds its gateway's few devices without a scan of them all.
GatewayDevices = dict[int, dict[str, Device]]


@dataclass(slots=True)
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # dead letters by reason
    statuses: int = 0
    patient_ids: frozenset[int] = frozenset()

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def add(self, other: WriteResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected.update(other.rejected)
        self.statuses += other.statuses
        self.patient_ids = self.patient_ids | other.patient_ids


@dataclass(slots=True)
class _Plan:
    rows: list[tuple[object, ...]] = field(default_factory=list)
    identifiers: list[tuple[object, ...]] = field(default_factory=list)  # (patient, id, at)
    dead: list[DeadLetter] = field(default_factory=list)
    statuses: list[StatusMessage] = field(default_factory=list)
    spans: dict[int, tuple[datetime, datetime]] = field(default_factory=dict)  # by patient

    def cover(self, patient_id: int, first: datetime, last: datetime) -> None:
        lo, hi = self.spans.get(patient_id, (first, last))
        self.spans[patient_id] = (min(lo, first), max(hi, last))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


class RememberedJson:
    """``json.dumps`` that remembers flat objects it has dumped.

    Every reading carries a context, and a gateway sends the same few of them over and over
    (``{"device_kind": "pulse_oximeter", "source": "continuous"}``): dumping each one afresh
    cost more than everything else in writing its row.
    """

    def __init__(self, limit: int = 10_000) -> None:
        self._known: dict[tuple[tuple[Any, Any], ...], bytes] = {}
        self._limit = limit

    def __call__(self, obj: Any) -> bytes:
        try:
            key = tuple(obj.items())
            text = self._known.get(key)
        except (AttributeError, TypeError):  # not a dict, or not a flat one
            return json.dumps(obj).encode()
        if text is None:
            text = json.dumps(obj).encode()
            if len(self._known) < self._limit:
                self._known[key] = text
        return text


class Store:
    """Writes batches through one connection, owned by one thread."""

    def __init__(self, conn: psycopg.Connection) -> None:
        # Autocommit, so that every ``conn.transaction()`` below is a real transaction.
        conn.autocommit = True
        set_json_dumps(RememberedJson(), context=conn)
        conn.execute(_CREATE_STAGING)
        self.conn = conn
        self._partitions = PartitionCache()

    def write(self, messages: Sequence[Inbound]) -> WriteResult:
        """Store a batch atomically."""
        ignore_duplicates = False
        partitions_checked = False
        while True:
            try:
                return self._write(messages, ignore_duplicates=ignore_duplicates)
            except DuplicateObservations:
                ignore_duplicates = True
            except psycopg.errors.CheckViolation as exc:
                # Retention dropped a partition this store remembered.
                if partitions_checked or "no partition" not in str(exc):
                    raise
                partitions_checked = True
                self._partitions.forget()

    def write_isolated(self, messages: Sequence[Inbound]) -> WriteResult:
        """One transaction per message; a message the database refuses becomes a dead letter.

        The fallback when a batch fails for a reason other than a lost connection, so that one
        message that passed validation but cannot be stored cannot block every other.
        """
        total = WriteResult()
        for message in messages:
            try:
                total.add(self.write([message]))
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                letter = DeadLetter(
                    message.topic,
                    message.gateway_code,
                    STORE_ERROR,
                    f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}",
                    message.payload,
                )
                with self.conn.transaction():
                    write_dead_letters(self.conn, [letter])
                total.rejected[STORE_ERROR] += 1
        return total

    def _write(self, messages: Sequence[Inbound], *, ignore_duplicates: bool) -> WriteResult:
        observations = [m for m in messages if isinstance(m, ObservationMessage)]
        spans = [m.decoded.span for m in observations if m.decoded.span]
        weeks: set[int] = set()
        # Nearly every batch falls in one week: found from its ends, not message by message.
        low = week_index(min(first for first, _ in spans)) if spans else None
        if low is not None and low == week_index(max(last for _, last in spans)):
            weeks.add(low)
        else:
            for m in observations:
                if m.decoded.span:
                    times = (o.measured_at for o in m.decoded.observations)
                    weeks |= weeks_of(times, *m.decoded.span)
        self._partitions.ensure(self.conn, weeks)
        result = WriteResult()
        with self.conn.transaction():
            gateways = self._gateways({m.gateway_code for m in messages if m.gateway_code})
            devices = self._devices(observations, gateways)
            plan = _plan(messages, gateways, devices)
            staged = len(plan.rows)
            if staged and ignore_duplicates:
                self._copy(_COPY_STAGING, plan.rows)
                stored, patient_ids = one_row(self.conn.execute(_MOVE_STAGED_IGNORING_DUPLICATES))
            elif staged:
                stored, patient_ids = self._insert_all(plan)
            if staged:
                result.stored, result.duplicates = stored, staged - stored
                result.patient_ids = frozenset(patient_ids)
            for status in plan.statuses:
                applied = apply_status(self.conn, status)
                if applied is None:
                    plan.dead.append(_unknown_gateway(status))
                    continue
                result.statuses += 1
                plan.dead += [
                    _returned_device_status(status, index, at)
                    for index, at in applied.returned.items()
                ]
            write_dead_letters(self.conn, plan.dead)
            result.rejected.update(letter.reason for letter in plan.dead)
            if result.patient_ids:
                notify_new_observations(self.conn, result.patient_ids)
        return result

    def _gateways(self, codes: set[str]) -> dict[str, Gateway]:
        if not codes:
            return {}
        rows = self.conn.execute(
            "SELECT g.code, g.id, g.patient_id, p.code FROM gateways g "
            "LEFT JOIN patients p ON p.id = g.patient_id WHERE g.code = ANY(%b)",
            (list(codes),),
        )
        return {code: Gateway(gid, pid, pcode) for code, gid, pid, pcode in rows}

    def _devices(
        self, messages: Sequence[ObservationMessage], gateways: dict[str, Gateway]
    ) -> GatewayDevices:
        wanted: dict[tuple[int, str], str] = {}
        for message in messages:
            gateway = gateways.get(message.gateway_code)
            if gateway is None:
                continue
            # Only readings that will be stored (_plan_observations keeps those for the gateway's
            # own patient): a device named in a rejected one must not join its inventory.
            patient = gateway.patient_code
            accepted = [o for o in message.decoded.observations if o.patient_id == patient]
            first_metric = {o.device_id: o.metric for o in reversed(accepted)}
            for device_id, metric in first_metric.items():
                wanted.setdefault((gateway.id, device_id), metric)
        if not wanted:
            return {}
        gateway_ids = sorted({gid for gid, _ in wanted})
        known = self._known_devices(gateway_ids)
        # Sorted: two workers registering the same devices take their locks in the same order.
        unknown = sorted(
            (gid, address) for gid, address in wanted if address not in known.get(gid, {})
        )
        if unknown:
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO devices (gateway_id, address, kind) VALUES (%s, %s, %s) "
                    "ON CONFLICT (gateway_id, address) DO NOTHING",
                    [
                        (gid, addr, DEVICE_KIND_BY_METRIC[wanted[gid, addr]])
                        for gid, addr in unknown
                    ],
                )
            known = self._known_devices(gateway_ids)
        return known

    def _known_devices(self, gateway_ids: list[int]) -> GatewayDevices:
        rows = self.conn.execute(
            "SELECT gateway_id, address, id, unpaired_at FROM devices WHERE gateway_id = ANY(%b)",
            (gateway_ids,),
        )
        known: GatewayDevices = {}
        for gid, address, did, unpaired in rows:
            known.setdefault(gid, {})[address] = Device(did, unpaired)
        return known

    def _copy(
        self,
        statement: str,
        rows: list[tuple[object, ...]],
        types: tuple[str, ...] = COPY_TYPES,
    ) -> None:
        with self.conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)

    def _insert_all(self, plan: _Plan) -> tuple[int, list[int]]:
        """The common case: no duplicate, so every row is new and the plan knows the patients
        and spans; a duplicate raises DuplicateObservations and aborts the transaction."""
        try:
            # Identifiers first: a record sent again fails here, before the larger COPY.
            if plan.identifiers:
                self._copy(COPY_IDENTIFIERS, plan.identifiers, _IDENTIFIER_TYPES)
            self._copy(COPY_OBSERVATIONS, plan.rows)
        except psycopg.errors.UniqueViolation as exc:  # SQLSTATE 23505, whatever the table
            raise DuplicateObservations(str(exc)) from exc
        stored = len(plan.rows)
        patients = list(plan.spans)
        self.conn.execute(
            _QUEUE_ROLLUP,
            (patients, [plan.spans[p][0] for p in patients], [plan.spans[p][1] for p in patients]),
        )
        return stored, patients


def _plan(
    messages: Sequence[Inbound],
    gateways: dict[str, Gateway],
    devices: GatewayDevices,
) -> _Plan:
    plan = _Plan()
    for message in messages:
        if isinstance(message, UnusableMessage):
            plan.dead.append(
                DeadLetter(
                    message.topic,
                    message.gateway_code,
                    message.error.reason.value,
                    message.error.detail,
                    message.payload,
                )
            )
        elif isinstance(message, StatusMessage):
            plan.statuses.append(message)
        elif isinstance(message, ObservationMessage):
            _plan_observations(plan, message, gateways.get(message.gateway_code), devices)
    return plan


def _plan_observations(
    plan: _Plan,
    message: ObservationMessage,
    gateway: Gateway | None,
    devices: GatewayDevices,
) -> None:
    decoded = message.decoded
    if gateway is None:
        plan.dead.append(
            DeadLetter(
                message.topic,
                message.gateway_code,
                RejectReason.UNKNOWN_GATEWAY.value,
                f"gateway {message.gateway_code!r} is not registered",
                message.payload,
            )
        )
        return
    for rejected in decoded.rejected:
        plan.dead.append(
            DeadLetter.for_item(
                message.topic,
                message.gateway_code,
                rejected.index,
                rejected.reason.value,
                rejected.detail,
                rejected.item,
            )
        )
    first_row = len(plan.rows)
    # Looked up once per message, not per row: this loop runs for every observation stored.
    gateway_id, patient_id, patient_code = gateway.id, gateway.patient_id, gateway.patient_code
    known = devices.get(gateway_id, {})
    rows, identifiers = plan.rows, plan.identifiers
    for index, obs in zip(message.item_indices(), decoded.observations, strict=True):
        if obs.patient_id != patient_code:
            plan.dead.append(_not_paired(message, index, obs, gateway))
            continue
        device = known.get(obs.device_id)
        # A returned or swapped-out device: a reading measured before then (queued in the
        # gateway's outbox) is still the patient's, one measured since is not.
        since = None if device is None else device.unpaired_at
        if since is not None and obs.measured_at >= since:
            plan.dead.append(_device_not_paired(message, index, obs, since))
            continue
        identifier = None if obs.identifier is None else bytes.fromhex(obs.identifier)
        if identifier is not None:
            identifiers.append((patient_id, identifier, obs.measured_at))
        rows.append(
            (
                obs.measured_at,
                patient_id,
                _METRIC_IDS[obs.metric],
                obs.value,
                gateway_id,
                obs.seq,
                None if device is None else device.id,
                obs.received_at,
                list(obs.flags) if obs.flags else None,
                obs.context or None,
                # Its own dumps: each record differs, so RememberedJson's cache would only fill.
                None if obs.time is None else Jsonb(obs.time.wire(), dumps=_dumps),
                identifier,
            )
        )
    if len(plan.rows) > first_row and gateway.patient_id is not None and decoded.span:
        # The message's span: wider than these rows only if some were not paired, which costs
        # the rollup a little more work, never a missed hour.
        plan.cover(gateway.patient_id, *decoded.span)


def _not_paired(
    message: ObservationMessage, index: int, obs: ObservationItem, gateway: Gateway
) -> DeadLetter:
    paired = f"patient {gateway.patient_code!r}" if gateway.patient_code else "no patient"
    return DeadLetter.for_item(
        message.topic,
        message.gateway_code,
        index,
        RejectReason.PATIENT_NOT_PAIRED.value,
        f"observations[{index}]: patient {obs.patient_id!r} is not paired with gateway "
        f"{message.gateway_code!r}, which is paired with {paired}",
        obs.wire_item(),
    )


def _device_not_paired(
    message: ObservationMessage, index: int, obs: ObservationItem, since: datetime
) -> DeadLetter:
    return DeadLetter.for_item(
        message.topic,
        message.gateway_code,
        index,
        RejectReason.DEVICE_NOT_PAIRED.value,
        f"observations[{index}]: device {obs.device_id!r} was returned or swapped out of gateway "
        f"{message.gateway_code!r} at {since.isoformat()}; a reading measured since "
        f"({obs.measured_at.isoformat()}) is not attributed to patient {obs.patient_id!r}",
        obs.wire_item(),
    )


def _returned_device_status(message: StatusMessage, index: int, since: datetime) -> DeadLetter:
    device = message.status.devices[index]
    return DeadLetter.for_item(
        message.topic,
        message.gateway_code,
        index,
        RejectReason.DEVICE_NOT_PAIRED.value,
        f"devices[{index}]: device {device.device_id!r} was returned or swapped out of gateway "
        f"{message.gateway_code!r} at {since.isoformat()}; its status (battery, last seen) "
        "does not update the patient's equipment",
        device.model_dump(mode="json", exclude_none=True),
    )


def _unknown_gateway(message: StatusMessage) -> DeadLetter:
    return DeadLetter(
        message.topic,
        message.gateway_code,
        RejectReason.UNKNOWN_GATEWAY.value,
        f"status from gateway {message.gateway_code!r}, which is not registered",
        message.payload,
    )


def connect_store(url: str) -> Store:
    """A store on its own connection, named in pg_stat_activity as telemon-ingest."""
    conn = connect(url, autocommit=True)
    conn.execute("SET application_name = 'telemon-ingest'")
    return Store(conn)
