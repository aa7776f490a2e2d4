"""FHIR R4 representations: Patient, vital-signs Observations, searchset Bundles, outcomes.

Plain dicts shaped to R4 (tests validate them with fhir.resources); search parameters are
parsed here so the route only wires access control and I/O.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import psycopg

from dashboard import fhir_phd, restrictions
from dashboard.authz import Principal
from telemon.flags import UNRELIABLE_FLAGS
from telemon.metrics import METRICS, METRICS_BY_ID, PANELS, Metric

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CODE_SYSTEM = "urn:telemon:patient-code"
FHIR_JSON = "application/fhir+json"
MAX_COUNT = 1000
DEFAULT_COUNT = 100
# _sort values and whether they sort oldest first.
SORTS: dict[str | None, bool] = {None: False, "-date": False, "date": True}

_METRIC_BY_LOINC = {m.loinc: m for m in METRICS.values()}

# The cuff's one measurement as ONE Observation, as the PHD IG's Compound Numeric Observation
# (its blood-pressure example) and R4's vital-signs bp profile write it: LOINC's panel and MDC's
# non-invasive pressure, a component per value. Stored, and de-duplicated, a reading per value;
# the cuff's pulse rate stays an Observation of its own.
BP_PANEL_LOINC = "85354-9"
BP_PANEL_MDC = 150020  # MDC_PRESS_BLD_NONINV
BP_PANEL = "bp"  # in the Observation's id, where a single reading has its metric's id
BP_COMPONENTS: tuple[Metric, ...] = tuple(METRICS[k] for k in PANELS[0])
_IN_PANEL = frozenset(m.id for m in BP_COMPONENTS)
# SQL over ``observations``: the measurement a row is part of, with its time (the panel's
# values are one).
MEASUREMENT = (
    f"CASE WHEN metric_id IN ({', '.join(str(i) for i in sorted(_IN_PANEL))}) "
    f"THEN {BP_COMPONENTS[0].id} ELSE metric_id END"
)
_OBSERVATION_ID = re.compile(rf"^(\d{{1,18}})-(\d{{1,5}}|{BP_PANEL})-(\d{{1,15}})$", re.ASCII)
_DATE = re.compile(
    r"^(eq|ne|gt|lt|ge|le|sa|eb)?(\d{4}(?:-\d{2}(?:-\d{2})?)?(?:T[0-9:.+\-Z]+)?)$", re.ASCII
)
# Dates a search may name. Readings are from this century; the bounds keep every interval, its
# end and its offset from UTC inside what datetime holds (9999-12-31 plus a day overflowed: a
# 500), and a date outside them is refused (400) rather than silently widened.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


class SearchError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ObservationQuery:
    patient_id: int
    metrics: tuple[Metric, ...]
    start: datetime | None
    end: datetime | None
    count: int
    offset: int = 0
    ascending: bool = False  # _sort=date; newest first by default and with _sort=-date


def _instant(text: str) -> tuple[datetime, datetime]:
    """The interval a FHIR date value denotes: a year, month, day or instant, within
    [EARLIEST, LATEST]; ValueError for a date that does not exist or lies outside."""
    if not EARLIEST.year <= int(text[:4]) < LATEST.year:
        raise ValueError("out of range")
    low, high = _interval(text)
    if low < EARLIEST or high > LATEST:
        raise ValueError("out of range")
    return low, high


def date_interval(text: str) -> tuple[datetime, datetime]:
    """The interval a plain FHIR date or instant (no prefix) denotes, within the bounds."""
    if not re.fullmatch(r"\d{4}(?:-\d{2}(?:-\d{2})?)?(?:T[0-9:.+\-Z]+)?", text, re.ASCII):
        raise ValueError("not a date")
    return _instant(text)


def _interval(text: str) -> tuple[datetime, datetime]:
    if "T" in text:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        return at, at + timedelta(microseconds=1)
    parts = [int(p) for p in text.split("-")]
    if len(parts) == 1:
        return datetime(parts[0], 1, 1, tzinfo=UTC), datetime(parts[0] + 1, 1, 1, tzinfo=UTC)
    if len(parts) == 2:
        y, m = parts
        nxt = date(y + (m == 12), m % 12 + 1, 1)
        return datetime(y, m, 1, tzinfo=UTC), datetime.combine(nxt, time(), UTC)
    day = date(*parts)
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


def parse_search(
    patient: str | None,
    codes: list[str],
    dates: list[str],
    count: int | None,
    *,
    offset: int = 0,
    sort: str | None = None,
) -> ObservationQuery:
    if not patient:
        raise SearchError("the patient parameter is required")
    ref = patient.removeprefix("Patient/")
    if not (ref.isascii() and ref.isdecimal()):  # isdigit() also takes '²', which int() refuses
        raise SearchError("patient must be a Patient id or reference")
    metrics: list[Metric] = []
    for value in (c for group in codes for c in group.split(",") if c):
        system, _, code = value.rpartition("|")
        if system in ("", LOINC) and code == BP_PANEL_LOINC:
            metrics.extend(BP_COMPONENTS)
            continue
        if system not in ("", LOINC) or code not in _METRIC_BY_LOINC:
            raise SearchError(f"unsupported code {value!r}: use a LOINC vital-sign code")
        # A blood pressure's value is a component of its panel: the search finds the panel.
        found = _METRIC_BY_LOINC[code]
        metrics.extend(BP_COMPONENTS if found.id in _IN_PANEL else (found,))
    start: datetime | None = None
    end: datetime | None = None
    for value in dates:
        invalid = SearchError(
            f"invalid date {value!r}: a date or instant from {EARLIEST.year} to "
            f"{LATEST.year - 1}, such as 2024-03-01 or ge2024-03-01T08:00:00Z"
        )
        match = _DATE.match(value)
        if match is None:
            raise invalid
        prefix, text = match.group(1) or "eq", match.group(2)
        try:
            low, high = _instant(text)
        except ValueError:
            raise invalid from None
        if prefix in ("ge", "sa", "gt"):
            bound = high if prefix in ("gt", "sa") else low
            start = max(start, bound) if start else bound
        elif prefix in ("le", "eb", "lt"):
            bound = low if prefix in ("lt", "eb") else high
            end = min(end, bound) if end else bound
        elif prefix == "eq":
            start = max(start, low) if start else low
            end = min(end, high) if end else high
        else:
            raise SearchError("the 'ne' date prefix is not supported")
    if sort not in SORTS:
        raise SearchError(f"unsupported _sort {sort!r}: use date or -date")
    limit = min(count or DEFAULT_COUNT, MAX_COUNT)
    return ObservationQuery(
        int(ref),
        tuple(dict.fromkeys(metrics or METRICS.values())),
        start,
        end,
        limit,
        offset,
        SORTS[sort],
    )


def patient_resource(row: dict[str, Any], base: str) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(row["id"]),
        "meta": {"lastUpdated": row["enrolled_at"].isoformat()},
        "identifier": [{"system": CODE_SYSTEM, "value": row["code"]}],
        "active": row["discharged_at"] is None,
        "name": [{"use": "official", "family": row["family_name"], "given": [row["given_name"]]}],
        "generalPractitioner": [
            {"reference": f"Practitioner/{row['gp_id']}", "display": row["gp_name"]}
        ],
    }
    if row["sex"]:
        resource["gender"] = row["sex"]
    if row["birth_date"]:
        resource["birthDate"] = row["birth_date"].isoformat()
    if row["phone"]:
        resource["telecom"] = [{"system": "phone", "value": row["phone"], "use": "mobile"}]
    return resource


@dataclass(frozen=True, slots=True)
class Reading:
    """A stored reading, with what the PHD IG mapping needs beside its value."""

    metric: Metric
    at: datetime
    value: float
    flags: list[str] | None = None
    device_id: int | None = None
    gateway_id: int | None = None
    received_at: datetime | None = None
    time: dict[str, Any] | None = None


# The columns ``reading`` reads, in its order.
READING_COLUMNS = (
    "metric_id, measured_at, value, flags, device_id, gateway_id, received_at, time_correction"
)


def reading(row: tuple[Any, ...]) -> Reading | None:
    """A row of READING_COLUMNS; None for a metric this server no longer knows."""
    metric = METRICS_BY_ID.get(row[0])
    if metric is None:
        return None
    return Reading(metric, *row[1:])


@dataclass(frozen=True, slots=True)
class Subject:
    """The patient a search or export is about, and their devices' addresses by id (the
    PHD identifier names the device that measured)."""

    id: int
    code: str
    addresses: dict[int, str]


def subject(conn: psycopg.Connection, patient_id: int) -> Subject:
    row = conn.execute("SELECT code FROM patients WHERE id = %s", (patient_id,)).fetchone()
    assert row is not None  # the caller checked access to the patient
    devices = conn.execute(
        "SELECT d.id, d.address FROM devices d JOIN gateways g ON g.id = d.gateway_id "
        "WHERE g.patient_id = %s OR d.id IN (SELECT DISTINCT device_id FROM observations "
        "WHERE patient_id = %s AND device_id IS NOT NULL)",
        (patient_id, patient_id),
    ).fetchall()
    return Subject(patient_id, row[0], dict(devices))


def measurements(readings: Iterable[Reading]) -> Iterator[tuple[Reading, ...]]:
    """Readings in time order (then metric id) as the measurements they were: a panel's values
    taken at the same instant together, every other reading alone."""
    panel: list[Reading] = []
    for r in readings:
        if panel and (
            r.metric.id not in _IN_PANEL
            or r.at != panel[0].at
            or r.device_id != panel[0].device_id
            or any(p.metric is r.metric for p in panel)
        ):
            yield tuple(panel)
            panel = []
        if r.metric.id in _IN_PANEL:
            panel.append(r)
        else:
            yield (r,)
    if panel:
        yield tuple(panel)


def observation_id(patient_id: int, metric: Metric, at: datetime) -> str:
    kind = BP_PANEL if metric.id in _IN_PANEL else str(metric.id)
    return f"{patient_id}-{kind}-{int(at.timestamp() * 1000)}"


@dataclass(frozen=True, slots=True)
class ObservationRef:
    """What an Observation's id names: the patient, the metrics measured together, the
    millisecond of the measurement."""

    patient_id: int
    metric_ids: tuple[int, ...]
    start: datetime
    end: datetime


def parse_observation_id(text: str) -> ObservationRef | None:
    """None for an id this server never made (the read answers 404 as for a hidden one)."""
    match = _OBSERVATION_ID.match(text)
    if match is None:
        return None
    patient, kind, millis = match.groups()
    if kind == BP_PANEL:
        metric_ids = tuple(sorted(_IN_PANEL))
    elif int(kind) in METRICS_BY_ID and int(kind) not in _IN_PANEL:
        metric_ids = (int(kind),)
    else:
        return None
    try:
        start = datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return ObservationRef(int(patient), metric_ids, start, start + timedelta(milliseconds=1))


def _value_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _type_code(metric: Metric) -> str:
    return str(metric.mdc) if metric.mdc is not None else metric.loinc


def _quantity(metric: Metric, value: float) -> dict[str, Any]:
    return {"value": value, "unit": metric.unit, "system": UCUM, "code": metric.unit}


def _identifier(patient: Subject, first: Reading, type_code: str, unit: str, value: str) -> str:
    address = patient.addresses.get(first.device_id) if first.device_id else None
    return fhir_phd.observation_identifier(
        device_address=address,
        patient_code=patient.code,
        patient_system=CODE_SYSTEM,
        type_code=type_code,
        unit=unit,
        value=value,
        measured_at=first.at,
        time=first.time,
    )


def _observation(
    patient: Subject,
    source: Reading,
    *,
    profile: list[str],
    category: str,
    coding: list[dict[str, Any]],
    text: str,
) -> dict[str, Any]:
    """What every PHD Observation of a measurement has: profile, code, subject, effective
    time, and the gateway, the coincident time stamp and the device."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": observation_id(patient.id, source.metric, source.at),
        "meta": {"profile": [fhir_phd.PHD_PROFILE + p for p in profile]},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": {"coding": coding, "text": text},
        "subject": {"reference": f"Patient/{patient.id}"},
        "effectiveDateTime": source.at.isoformat(),
    }
    if source.gateway_id is not None:
        resource["extension"] = [
            {
                "url": fhir_phd.GATEWAY_EXTENSION,
                "valueReference": {"reference": fhir_phd.phg_ref(source.gateway_id)},
            }
        ]
        cts = fhir_phd.coincident_time_stamp(
            patient_id=patient.id,
            device_id=source.device_id,
            gateway_id=source.gateway_id,
            received_at=source.received_at,
            time=source.time,
        )
        if cts is not None:
            resource["contained"] = [cts]
            resource["derivedFrom"] = [{"reference": "#cts"}]
    if source.device_id is not None:
        resource["device"] = {"reference": fhir_phd.phd_ref(source.device_id)}
    return resource


def _status(r: Reading, target: dict[str, Any], notes: list[str], *, label: str = "") -> str:
    """The device's status of ``r`` on ``target`` (the Observation, or a panel's component):
    its value, or the reason it has none (R4 obs-6: never both), and its interpretation.
    Returns the value as the identifier writes it; device flags go to ``notes``."""
    status = fhir_phd.status_elements(r.flags)
    unreliable = sorted(set(r.flags or ()) & UNRELIABLE_FLAGS)
    if "dataAbsentReason" in status:
        # What the device displayed is kept in words.
        target["dataAbsentReason"] = status["dataAbsentReason"]
        unreliable.append(f"reported value {_value_text(r.value)} {r.metric.unit}")
        value = str(status["dataAbsentReason"]["coding"][0]["code"])
    else:
        target["valueQuantity"] = _quantity(r.metric, r.value)
        value = _value_text(r.value)
    if "interpretation" in status:
        target["interpretation"] = status["interpretation"]
    if unreliable:
        notes.append(label + ", ".join(unreliable))
    return value


def _finish(resource: dict[str, Any], readings: tuple[Reading, ...], notes: list[str]) -> None:
    security = [fhir_phd.status_elements(r.flags).get("security") for r in readings]
    if any(security):
        resource["meta"]["security"] = next(s for s in security if s)
    if notes:
        resource["note"] = [{"text": "Device flags: " + "; ".join(notes)}]


def reading_resource(patient: Subject, r: Reading) -> dict[str, Any]:
    """A reading as the PHD IG's Numeric Observation (and R4's vital signs): MDC code beside
    LOINC, gateway and device, the dedup identifier, the device's status and the coincident
    time stamp."""
    metric = r.metric
    coding = [{"system": LOINC, "code": metric.loinc, "display": metric.label_en}]
    if metric.mdc is not None:
        coding.append({"system": fhir_phd.MDC, "code": str(metric.mdc)})
    resource = _observation(
        patient,
        r,
        profile=["PhdNumericObservation"],
        category="laboratory" if metric.key == "glucose" else "vital-signs",
        coding=coding,
        text=metric.label_en,
    )
    notes: list[str] = []
    value = _status(r, resource, notes)
    resource["identifier"] = [
        {"value": _identifier(patient, r, _type_code(metric), metric.unit, value)}
    ]
    _finish(resource, (r,), notes)
    return resource


def panel_resource(patient: Subject, readings: tuple[Reading, ...]) -> dict[str, Any]:
    """A blood-pressure measurement (its systolic, diastolic and mean readings) as the PHD
    IG's Compound Numeric Observation: no value of its own, a component per reading, each
    with its status. Its identifier is the compound's: the panel's type, the values in the
    order measured, joined by dashes."""
    first = readings[0]
    resource = _observation(
        patient,
        first,
        profile=["PhdCompoundNumericObservation"],
        category="vital-signs",
        coding=[
            {"system": LOINC, "code": BP_PANEL_LOINC, "display": "Blood pressure panel"},
            {"system": fhir_phd.MDC, "code": str(BP_PANEL_MDC)},
        ],
        text="Blood pressure",
    )
    present = {r.metric.key for r in readings}
    if {"systolic", "diastolic"} <= present:
        resource["meta"]["profile"].append("http://hl7.org/fhir/StructureDefinition/bp")
    notes: list[str] = []
    values: list[str] = []
    components: list[dict[str, Any]] = []
    for r in sorted(readings, key=lambda r: BP_COMPONENTS.index(r.metric)):
        component: dict[str, Any] = {
            "code": {
                "coding": [
                    {"system": LOINC, "code": r.metric.loinc, "display": r.metric.label_en},
                    {"system": fhir_phd.MDC, "code": str(r.metric.mdc)},
                ],
                "text": r.metric.label_en,
            }
        }
        values.append(_status(r, component, notes, label=f"{r.metric.label_en}: "))
        components.append(component)
    resource["component"] = components
    resource["identifier"] = [
        {"value": _identifier(patient, first, str(BP_PANEL_MDC), "mm[Hg]", "-".join(values))}
    ]
    _finish(resource, readings, notes)
    return resource


def measurement_resource(patient: Subject, readings: tuple[Reading, ...]) -> dict[str, Any]:
    """One measurement (of :func:`measurements`) as its Observation."""
    if readings[0].metric.id in _IN_PANEL:
        return panel_resource(patient, readings)
    return reading_resource(patient, readings[0])


def measurement_resources(
    patient: Subject, rows: Iterable[tuple[Any, ...]]
) -> Iterator[dict[str, Any]]:
    """Rows of READING_COLUMNS in time order (then metric id) as their Observations."""
    readings = (r for r in map(reading, rows) if r is not None)
    return (measurement_resource(patient, m) for m in measurements(readings))


def _where(query: ObservationQuery, reader: Principal) -> tuple[str, dict[str, Any]]:
    sql = (
        "patient_id = %(patient)s AND metric_id = ANY(%(metrics)s) "
        f"AND {restrictions.readings_visible(reader, 'observations')}"
    )
    params: dict[str, Any] = {"patient": query.patient_id, "metrics": [m.id for m in query.metrics]}
    if query.start is not None:
        sql += " AND measured_at >= %(start)s"
        params["start"] = query.start
    if query.end is not None:
        sql += " AND measured_at < %(end)s"
        params["end"] = query.end
    return sql, params


def count_observations(conn: psycopg.Connection, query: ObservationQuery, reader: Principal) -> int:
    """The search's total: measurements, a blood pressure's values counted once."""
    where, params = _where(query, reader)
    row = conn.execute(
        f"SELECT count(*) FROM (SELECT DISTINCT measured_at, {MEASUREMENT} "
        f"FROM observations WHERE {where}) m",
        params,
    ).fetchone()
    return int(row[0]) if row else 0


def observations(
    conn: psycopg.Connection, query: ObservationQuery, reader: Principal
) -> list[dict[str, Any]]:
    """One page of the search: ``count`` measurements from ``offset``, newest first unless
    the search sorts by ``date``; no reading the patient hid from ``reader``."""
    where, params = _where(query, reader)
    order = "ASC" if query.ascending else "DESC"
    rows = conn.execute(
        f"WITH page AS (SELECT DISTINCT measured_at, {MEASUREMENT} AS measurement "
        f"FROM observations WHERE {where} ORDER BY measured_at {order}, measurement "
        "LIMIT %(count)s OFFSET %(offset)s) "
        f"SELECT {READING_COLUMNS} FROM observations JOIN page USING (measured_at) "
        f"WHERE {where} AND page.measurement = {MEASUREMENT} "
        f"ORDER BY measured_at {order}, metric_id",
        {**params, "count": query.count, "offset": query.offset},
    ).fetchall()
    return list(measurement_resources(subject(conn, query.patient_id), rows))


def observation(
    conn: psycopg.Connection, ref: ObservationRef, reader: Principal
) -> dict[str, Any] | None:
    """The Observation ``ref`` names, None when there is none or it is hidden from
    ``reader`` (both answer alike: a hidden reading's existence is itself information)."""
    rows = conn.execute(
        f"SELECT {READING_COLUMNS} FROM observations WHERE patient_id = %s "
        "AND metric_id = ANY(%s) AND measured_at >= %s AND measured_at < %s "
        f"AND {restrictions.readings_visible(reader, 'observations')} "
        "ORDER BY measured_at, metric_id",
        (ref.patient_id, list(ref.metric_ids), ref.start, ref.end),
    ).fetchall()
    found = list(measurement_resources(subject(conn, ref.patient_id), rows))
    return found[0] if found else None


def page_links(
    url: str, params: list[tuple[str, str]], query: ObservationQuery, total: int
) -> list[tuple[str, str]]:
    """first, previous and next beside self: the same search at another ``_offset``."""
    kept = [(k, v) for k, v in params if k != "_offset"]

    def at(offset: int) -> str:
        return url + "?" + urlencode([*kept, ("_offset", str(offset))])

    links = [("first", at(0))]
    if query.offset > 0:
        links.append(("previous", at(max(0, query.offset - query.count))))
    if query.offset + query.count < total:
        links.append(("next", at(query.offset + query.count)))
    return links


def searchset(
    resources: list[dict[str, Any]],
    base: str,
    self_url: str,
    *,
    total: int | None = None,
    links: list[tuple[str, str]] = [],  # noqa: B006  (never mutated)
) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": datetime.now(UTC).isoformat(),
        "total": len(resources) if total is None else total,
        "link": [{"relation": "self", "url": self_url}]
        + [{"relation": relation, "url": url} for relation, url in links],
        "entry": [
            {
                "fullUrl": f"{base}/{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ],
    }


def operation_outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


# A report's kind (period_reports.kind): its identifier system and its name in the Bundle.
REPORT_KINDS: dict[str, tuple[str, str]] = {
    "period": ("urn:telemon:period-report", "Telemonitoring period report"),
    "closing": ("urn:telemon:closing-report", "Telemonitoring closing report"),
}


def diagnostic_report_bundle(
    *,
    patient_id: int,
    code: str,
    gp_id: int,
    gp_name: str,
    first: date,
    last: date,
    start: datetime,
    end: datetime,
    issued: datetime,
    title: str,
    pdf: bytes,
    observations: list[dict[str, Any]],
    base: str,
    kind: str = "period",
    language: str = "en",
) -> dict[str, Any]:
    """A validated period report (or, ``kind`` "closing", the discharge's closing report): a
    DiagnosticReport whose results are the period's Observations, with the PDF as its
    presented form, in one collection Bundle."""
    system, name = REPORT_KINDS[kind]
    report_id = f"{patient_id}-{first:%Y%m%d}-{last:%Y%m%d}"
    if kind != "period":
        report_id = f"{kind}-{report_id}"
    report: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": report_id,
        "language": language,
        "identifier": [{"system": system, "value": report_id}],
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"text": name},
        "subject": {
            "reference": f"Patient/{patient_id}",
            "identifier": {"system": CODE_SYSTEM, "value": code},
        },
        "effectivePeriod": {"start": start.isoformat(), "end": end.isoformat()},
        "issued": issued.isoformat(),
        "performer": [{"reference": f"Practitioner/{gp_id}", "display": gp_name}],
        "resultsInterpreter": [{"reference": f"Practitioner/{gp_id}", "display": gp_name}],
        "result": [{"reference": f"Observation/{o['id']}"} for o in observations],
        "presentedForm": [
            {
                "contentType": "application/pdf",
                "language": language,
                "data": base64.b64encode(pdf).decode("ascii"),
                # FHIR R4's Attachment.hash is the SHA-1 of the data, base64-encoded.
                "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode("ascii"),
                "size": len(pdf),
                "title": title,
                "creation": issued.isoformat(),
            }
        ],
    }
    resources = [report, *observations]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": issued.isoformat(),
        "entry": [
            {"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources
        ],
    }


def period_observations(
    conn: psycopg.Connection, patient_id: int, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """Every reading of the period as an Observation, flagged ones with their note."""
    rows = conn.execute(
        f"SELECT {READING_COLUMNS} FROM observations "
        "WHERE patient_id = %s AND measured_at >= %s AND measured_at < %s "
        "ORDER BY measured_at, metric_id",
        (patient_id, start, end),
    ).fetchall()
    return list(measurement_resources(subject(conn, patient_id), rows))


def capability_statement(base: str, version: str, *, now: datetime) -> dict[str, Any]:
    """What this server answers (``GET /fhir/metadata``): reads and searches, JSON only."""
    date_param = {
        "name": "date",
        "type": "date",
        "documentation": f"ge/le/gt/lt/eq/sa/eb, {EARLIEST.year} to {LATEST.year - 1}",
    }
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": now.isoformat(),
        "kind": "instance",
        "software": {"name": "telemon", "version": version},
        "implementation": {"description": "telemon telemonitoring dashboard", "url": base},
        "fhirVersion": "4.0.1",
        "format": [FHIR_JSON, "json"],
        "implementationGuide": ["http://hl7.org/fhir/uv/phd/ImplementationGuide/hl7.fhir.uv.phd"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": "A dashboard session (sign in at /login); patients outside "
                    "the user's care are answered 404."
                },
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}],
                        "operation": [
                            {
                                "name": "everything",
                                "definition": "http://hl7.org/fhir/OperationDefinition/"
                                "Patient-everything",
                                "documentation": "start, end (dates), _since (an instant), "
                                "_type; _format=text/csv for the readings as CSV. The "
                                "patient's GP and the privacy officer.",
                            }
                        ],
                    },
                    {
                        "type": "Observation",
                        "supportedProfile": [
                            "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation",
                            "http://hl7.org/fhir/uv/phd/StructureDefinition/"
                            "PhdCompoundNumericObservation",
                        ],
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "documentation": f"_count (at most {MAX_COUNT}, {DEFAULT_COUNT} by "
                        "default) with _offset paging links; _sort=date or -date (the default)",
                        "searchParam": [
                            {"name": "patient", "type": "reference"},
                            {"name": "code", "type": "token"},
                            date_param,
                        ],
                    },
                ],
            }
        ],
    }
