"""FHIR R4 representations: Patient, vital-signs Observations, searchset Bundles, outcomes.

Plain dicts shaped to R4 (tests validate them with fhir.resources); search parameters are
parsed here so the route only wires access control and I/O.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg

from telemon.flags import UNRELIABLE_FLAGS
from telemon.metrics import METRICS, METRICS_BY_ID, Metric

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CODE_SYSTEM = "urn:telemon:patient-code"
FHIR_JSON = "application/fhir+json"
MAX_COUNT = 1000

_METRIC_BY_LOINC = {m.loinc: m for m in METRICS.values()}
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


def _instant(text: str) -> tuple[datetime, datetime]:
    """The interval a FHIR date value denotes: a year, month, day or instant, within
    [EARLIEST, LATEST]; ValueError for a date that does not exist or lies outside."""
    if not EARLIEST.year <= int(text[:4]) < LATEST.year:
        raise ValueError("out of range")
    low, high = _interval(text)
    if low < EARLIEST or high > LATEST:
        raise ValueError("out of range")
    return low, high


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
    patient: str | None, codes: list[str], dates: list[str], count: int | None
) -> ObservationQuery:
    if not patient:
        raise SearchError("the patient parameter is required")
    ref = patient.removeprefix("Patient/")
    if not (ref.isascii() and ref.isdecimal()):  # isdigit() also takes '²', which int() refuses
        raise SearchError("patient must be a Patient id or reference")
    metrics: list[Metric] = []
    for value in (c for group in codes for c in group.split(",") if c):
        system, _, code = value.rpartition("|")
        if system not in ("", LOINC) or code not in _METRIC_BY_LOINC:
            raise SearchError(f"unsupported code {value!r}: use a LOINC vital-sign code")
        metrics.append(_METRIC_BY_LOINC[code])
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
    limit = min(count or MAX_COUNT, MAX_COUNT)
    return ObservationQuery(int(ref), tuple(metrics or METRICS.values()), start, end, limit)


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


def observation_resource(
    patient_id: int, metric: Metric, at: datetime, value: float, flags: list[str] | None
) -> dict[str, Any]:
    category = "laboratory" if metric.key == "glucose" else "vital-signs"
    unreliable = sorted(set(flags or ()) & UNRELIABLE_FLAGS)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"{patient_id}-{metric.id}-{int(at.timestamp() * 1000)}",
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
        "code": {
            "coding": [{"system": LOINC, "code": metric.loinc, "display": metric.label_en}],
            "text": metric.label_en,
        },
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": at.isoformat(),
        "valueQuantity": {"value": value, "unit": metric.unit, "system": UCUM, "code": metric.unit},
    }
    if unreliable:
        resource["note"] = [{"text": "Device flags: " + ", ".join(unreliable)}]
    return resource


def observations(conn: psycopg.Connection, query: ObservationQuery) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT metric_id, measured_at, value, flags FROM observations "
        "WHERE patient_id = %s AND metric_id = ANY(%s) "
        "AND (%s::timestamptz IS NULL OR measured_at >= %s) "
        "AND (%s::timestamptz IS NULL OR measured_at < %s) "
        "ORDER BY measured_at DESC, metric_id LIMIT %s",
        (
            query.patient_id,
            [m.id for m in query.metrics],
            query.start,
            query.start,
            query.end,
            query.end,
            query.count,
        ),
    ).fetchall()
    return [
        observation_resource(query.patient_id, METRICS_BY_ID[m], at, v, flags)
        for m, at, v, flags in rows
    ]


def searchset(resources: list[dict[str, Any]], base: str, self_url: str) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "timestamp": datetime.now(UTC).isoformat(),
        "total": len(resources),
        "link": [{"relation": "self", "url": self_url}],
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
        "SELECT metric_id, measured_at, value, flags FROM observations "
        "WHERE patient_id = %s AND measured_at >= %s AND measured_at < %s "
        "ORDER BY measured_at, metric_id",
        (patient_id, start, end),
    ).fetchall()
    return [
        observation_resource(patient_id, METRICS_BY_ID[m], at, v, flags)
        for m, at, v, flags in rows
        if m in METRICS_BY_ID
    ]
