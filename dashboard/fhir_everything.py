"""A patient's whole record for portability (EHDS art. 7): ``Patient/{id}/$everything`` as a
searchset Bundle, or its readings as CSV, written as it is read.

The readings are most of it (a reading every few hours for months): they come from one
server-side cursor, in one REPEATABLE READ transaction with the count, so the Bundle's
``total`` is what it holds and memory stays flat however long the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import IsolationLevel
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from dashboard import fhir, fhir_phd, fhir_plan, readings_export, restrictions
from dashboard.authz import Principal

# Bytes a streamed response gathers before it sends them.
CHUNK = 64 * 1024
CURSOR_ROWS = 2000


def _window(
    start: datetime | None, end: datetime | None, *, column: str = "measured_at"
) -> tuple[str, dict[str, Any]]:
    sql, params = "", {}
    if start is not None:
        sql += f" AND {column} >= %(start)s"
        params["start"] = start
    if end is not None:
        sql += f" AND {column} < %(end)s"
        params["end"] = end
    return sql, params


# Said in the Bundle when the patient hid some data from the reader (a searchset may carry an
# OperationOutcome, search mode "outcome"; "suppressed": the information was withheld).
WITHHELD = {
    "resourceType": "OperationOutcome",
    "id": "withheld",
    "issue": [
        {
            "severity": "information",
            "code": "suppressed",
            "diagnostics": "Some of this record is withheld at the patient's request "
            "(oscuramento): only the patient's GP sees it.",
        }
    ],
}
WITHHELD_HEADER = "X-Telemon-Withheld"


# The resource types $everything holds, for ``_type``.
TYPES = frozenset(
    {
        "Patient",
        "Device",
        "CarePlan",
        "ActivityDefinition",
        "ObservationDefinition",
        "DetectedIssue",
        "DiagnosticReport",
        "Observation",
    }
)


@dataclass(frozen=True, slots=True)
class Selection:
    """What of the record a request asks for: readings measured in ``start``..``end``;
    with ``since``, only readings stored, episodes changed and reports validated since then
    (the Patient, devices and plan, which give them their meaning, always come along); with
    ``types``, only resources of those types."""

    start: datetime | None = None
    end: datetime | None = None
    since: datetime | None = None
    types: frozenset[str] = TYPES


def parse_types(text: str | None) -> frozenset[str]:
    """``_type``: resource types, comma-separated (ValueError naming what is not served)."""
    if text is None:
        return TYPES
    asked = frozenset(t.strip() for t in text.split(",") if t.strip())
    unknown = asked - TYPES
    if unknown or not asked:
        raise ValueError(
            f"_type: {', '.join(sorted(unknown)) or 'empty'}; this record holds "
            + ", ".join(sorted(TYPES))
        )
    return asked


def _other_resources(
    conn: psycopg.Connection, reader: Principal, patient_id: int, base: str, since: datetime | None
) -> list[dict[str, Any]]:
    """Everything but the readings: the Patient, the devices (the gateways and the devices
    paired on them, or that measured any of the patient's readings), the plan, the
    episodes and the validated reports (those changed ``since``, when given); what the
    patient hid from ``reader`` left out."""
    withheld = restrictions.withholds(conn, reader, patient_id)
    cur = conn.cursor(row_factory=dict_row)
    patient = cur.execute(
        "SELECT p.*, g.display_name AS gp_name FROM patients p "
        "JOIN staff g ON g.id = p.gp_id WHERE p.id = %s",
        (patient_id,),
    ).fetchone()
    assert patient is not None  # the route checked access
    used = "SELECT DISTINCT {0} FROM observations WHERE patient_id = %(p)s AND {0} IS NOT NULL"
    gateways = cur.execute(
        "SELECT * FROM gateways WHERE patient_id = %(p)s OR id IN ("
        + used.format("gateway_id")
        + ") ORDER BY id",
        {"p": patient_id},
    ).fetchall()
    devices = cur.execute(
        "SELECT d.* FROM devices d WHERE d.gateway_id IN (SELECT id FROM gateways "
        "WHERE patient_id = %(p)s) OR d.id IN (" + used.format("device_id") + ") ORDER BY d.id",
        {"p": patient_id},
    ).fetchall()
    # A validated report holds the whole record as the GP signed it.
    reports = conn.execute(
        "SELECT fhir_bundle -> 'entry' -> 0 -> 'resource' FROM period_reports "
        "WHERE patient_id = %s AND NOT %s "
        "AND validated_at >= coalesce(%s::timestamptz, '-infinity') ORDER BY period_from, kind",
        (patient_id, withheld, since),
    ).fetchall()
    in_use = [fhir_phd.phd_ref(d["id"]) for d in devices if d["unpaired_at"] is None]
    return [
        fhir.patient_resource(patient, base),
        *(fhir_phd.gateway_resource(g, patient_id) for g in gateways),
        *(fhir_phd.device_resource(d, patient_id) for d in devices),
        *fhir_plan.plan_resources(
            patient_id=patient_id,
            gp_id=patient["gp_id"],
            gp_name=patient["gp_name"],
            assigned=fhir_plan.assignments(conn, patient_id, reader),
            devices=in_use,
            base=base,
            hidden=restrictions.hidden_metrics(conn, reader, patient_id),
        ),
        *fhir_plan.episode_resources(conn, patient_id, reader, since=since),
        *(r for (r,) in reports if r),
    ]


def _entry(resource: dict[str, Any], base: str) -> str:
    return json.dumps(
        {
            "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
            "resource": resource,
            "search": {"mode": "match"},
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


@contextmanager
def _snapshot(pool: ConnectionPool) -> Iterator[psycopg.Connection]:
    """A pool connection in one REPEATABLE READ transaction: the count and the rows agree."""
    with pool.connection() as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        try:
            with conn.transaction():
                yield conn
        finally:
            conn.isolation_level = None


def _readings(
    conn: psycopg.Connection, reader: Principal, patient_id: int, selection: Selection
) -> tuple[int, Iterator[tuple[Any, ...]]]:
    """The number of measurements (a blood pressure's values are one) and a cursor over
    the readings, in the order :func:`fhir.measurements` groups them."""
    if "Observation" not in selection.types:
        return 0, iter(())
    window, params = _window(selection.start, selection.end)
    window += f" AND {restrictions.readings_visible(reader, 'observations')}"
    if selection.since is not None:
        window += " AND stored_at >= %(since)s"
        params["since"] = selection.since
    params["p"] = patient_id
    row = conn.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT measured_at, {fhir.MEASUREMENT} "
        f"FROM observations WHERE patient_id = %(p)s{window}) m",
        params,
    ).fetchone()
    cursor = conn.cursor(name="everything")
    cursor.itersize = CURSOR_ROWS
    cursor.execute(
        f"SELECT {fhir.READING_COLUMNS} FROM observations WHERE patient_id = %(p)s{window} "
        "ORDER BY measured_at, metric_id",
        params,
    )
    return (int(row[0]) if row else 0), iter(cursor)


def _chunked(parts: Iterator[str]) -> Iterator[bytes]:
    buffer: list[str] = []
    size = 0
    for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= CHUNK:
            yield "".join(buffer).encode()
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode()


def bundle(
    pool: ConnectionPool,
    reader: Principal,
    patient_id: int,
    base: str,
    self_url: str,
    *,
    selection: Selection = Selection(),
    timestamp: datetime,
) -> Iterator[bytes]:
    """The searchset Bundle, as bytes to stream: the other resources, then every
    measurement the ``selection`` asks for, oldest first."""

    def parts() -> Iterator[str]:
        with _snapshot(pool) as conn:
            others = [
                r
                for r in _other_resources(conn, reader, patient_id, base, selection.since)
                if r["resourceType"] in selection.types
            ]
            total, rows = _readings(conn, reader, patient_id, selection)
            head = {
                "resourceType": "Bundle",
                "type": "searchset",
                "timestamp": timestamp.isoformat(),
                # The OperationOutcome saying data was withheld is no match: not counted.
                "total": len(others) + total,
                "link": [{"relation": "self", "url": self_url}],
            }
            yield json.dumps(head, separators=(",", ":"))[:-1] + ',"entry":['
            first = True
            if restrictions.withholds(conn, reader, patient_id):
                outcome = _entry(WITHHELD, base).replace('"mode":"match"', '"mode":"outcome"')
                yield outcome
                first = False
            for resource in others:
                yield ("" if first else ",") + _entry(resource, base)
                first = False
            for resource in fhir.measurement_resources(fhir.subject(conn, patient_id), rows):
                yield ("" if first else ",") + _entry(resource, base)
                first = False
            yield "]}"

    return _chunked(parts())


def readings_csv(
    pool: ConnectionPool,
    reader: Principal,
    patient_id: int,
    *,
    selection: Selection = Selection(),
) -> Iterator[bytes]:
    """Every reading a row, in the columns of every readings export
    (:mod:`dashboard.readings_export`), written as the cursor reads them."""

    def parts() -> Iterator[str]:
        with _snapshot(pool) as conn:
            window, params = _window(selection.start, selection.end, column="o.measured_at")
            window += f" AND {restrictions.readings_visible(reader)}"
            if selection.since is not None:
                window += " AND o.stored_at >= %(since)s"
                params["since"] = selection.since
            cursor = conn.cursor(name="everything_csv")
            cursor.itersize = CURSOR_ROWS
            cursor.execute(readings_export.query(window), params | {"p": patient_id})
            yield from readings_export.lines(cursor)

    return _chunked(parts())
