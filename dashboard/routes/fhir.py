"""FHIR R4 endpoints: the CapabilityStatement, Patient by id and its $everything, Observation
search (paged searchset Bundles)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from psycopg.rows import dict_row

from dashboard import audit, fhir, fhir_everything, restrictions
from dashboard.authz import NotFound, Principal, ensure_patient, require
from dashboard.databases import Reads
from telemon import __version__

router = APIRouter(prefix="/fhir", tags=["fhir"])

Clinician = Annotated[Principal, Depends(require("clinical.read"))]
Exporter = Annotated[Principal, Depends(require("record.export"))]
PatientId = Annotated[int, Path(ge=1, le=2**62)]
CSV_FORMATS = ("csv", "text/csv")


def _fhir(body: dict[str, object], status: int = 200) -> JSONResponse:
    return JSONResponse(body, status, media_type=fhir.FHIR_JSON)


def _base(request: Request) -> str:
    # The configured public URL, never the request's Host header: a client could otherwise make
    # the links in a Bundle point at any site (Host: evil.example).
    public_url: str = request.app.state.public_url
    return public_url.rstrip("/") + "/fhir"


def _self_link(request: Request) -> str:
    query = request.url.query
    return f"{_base(request)}{request.url.path.removeprefix('/fhir')}" + (
        f"?{query}" if query else ""
    )


@router.get("/Patient/{patient_id}")
def read_patient(
    request: Request,
    patient_id: Annotated[int, Path(ge=1, le=2**62)],
    user: Clinician,
    conn: Reads,
) -> JSONResponse:
    ensure_patient(conn, user, patient_id)
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT p.*, g.display_name AS gp_name FROM patients p "
            "JOIN staff g ON g.id = p.gp_id WHERE p.id = %s",
            (patient_id,),
        )
        .fetchone()
    )
    assert row is not None  # ensure_patient found it
    audit.record(
        conn,
        user,
        "fhir.patient.read",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
    )
    return _fhir(fhir.patient_resource(row, _base(request)))


@router.get("/Observation")
def search_observations(
    request: Request,
    user: Clinician,
    conn: Reads,
    patient: Annotated[str | None, Query(max_length=80)] = None,
    code: Annotated[list[str], Query(max_length=400)] = [],  # noqa: B006  (FastAPI copies it)
    date: Annotated[list[str], Query(max_length=60)] = [],  # noqa: B006
    count: Annotated[int | None, Query(alias="_count", ge=1)] = None,
    offset: Annotated[int, Query(alias="_offset", ge=0, le=10**9)] = 0,
    sort: Annotated[str | None, Query(alias="_sort", max_length=10)] = None,
) -> JSONResponse:
    try:
        query = fhir.parse_search(patient, code, date, count, offset=offset, sort=sort)
    except fhir.SearchError as exc:
        return _fhir(fhir.operation_outcome("invalid", str(exc)), 400)
    ensure_patient(conn, user, query.patient_id)
    total = fhir.count_observations(conn, query, user)
    resources = fhir.observations(conn, query, user) if query.offset < total else []
    audit.record(
        conn,
        user,
        "fhir.observation.search",
        patient_id=query.patient_id,
        object_type="patient",
        object_id=query.patient_id,
        details={
            "codes": [m.loinc for m in query.metrics],
            "results": len(resources),
            "total": total,
            "offset": query.offset,
        },
    )
    links = fhir.page_links(
        f"{_base(request)}/Observation", list(request.query_params.multi_items()), query, total
    )
    return _fhir(
        fhir.searchset(resources, _base(request), _self_link(request), total=total, links=links)
    )


@router.get("/Observation/{observation_id}")
def read_observation(
    observation_id: Annotated[str, Path(max_length=60)], user: Clinician, conn: Reads
) -> JSONResponse:
    """One Observation by the id a search or export gave it. Unknown, outside the caller's
    patients or hidden from them at the patient's request: the same 404, so the answer does
    not tell a hidden reading exists. A read that finds it is audited."""
    ref = fhir.parse_observation_id(observation_id)
    if ref is None:
        raise NotFound
    ensure_patient(conn, user, ref.patient_id)
    resource = fhir.observation(conn, ref, user)
    if resource is None:
        raise NotFound
    audit.record(
        conn,
        user,
        "fhir.observation.read",
        patient_id=ref.patient_id,
        object_type="observation",
        object_id=observation_id,
    )
    return _fhir(resource)


@router.get("/metadata")
def capability_statement(request: Request) -> JSONResponse:
    """What the server answers; no patient data, so no session (FHIR clients read it first)."""
    return _fhir(fhir.capability_statement(_base(request), __version__, now=datetime.now(UTC)))


def _date_bound(name: str, value: str | None) -> tuple[datetime, datetime] | None:
    if value is None:
        return None
    try:
        return fhir.date_interval(value)
    except ValueError:
        raise fhir.SearchError(
            f"invalid {name} {value!r}: a date from {fhir.EARLIEST.year} to "
            f"{fhir.LATEST.year - 1}, such as 2024-03-01"
        ) from None


def _instant_bound(name: str, value: str | None) -> datetime | None:
    """``_since``: an instant with its zone (FHIR's instant type), within the bounds."""
    if value is None:
        return None
    zoned = value.endswith("Z") or (len(value) > 6 and value[-6] in "+-")
    try:
        if "T" not in value or not zoned:
            raise ValueError("not an instant")
        return fhir.date_interval(value)[0]
    except ValueError:
        raise fhir.SearchError(
            f"invalid {name} {value!r}: an instant with its zone, such as 2025-03-01T08:00:00Z"
        ) from None


@router.get("/Patient/{patient_id}/$everything", response_model=None)
def patient_everything(
    request: Request,
    patient_id: PatientId,
    user: Exporter,
    conn: Reads,
    start: Annotated[str | None, Query(max_length=40)] = None,
    end: Annotated[str | None, Query(max_length=40)] = None,
    since: Annotated[str | None, Query(alias="_since", max_length=40)] = None,
    types: Annotated[str | None, Query(alias="_type", max_length=400)] = None,
    format_: Annotated[str | None, Query(alias="_format", max_length=40)] = None,
) -> JSONResponse | StreamingResponse:
    """The patient's whole record (EHDS art. 7 portability): a searchset Bundle streamed as it
    is read, or with ``_format=text/csv`` the readings as CSV. The patient's GP and the
    privacy officer. ``_since`` (an instant) keeps what changed since; ``_type`` some types."""
    try:
        low = _date_bound("start", start)
        high = _date_bound("end", end)
        changed = _instant_bound("_since", since)
        selected = fhir_everything.parse_types(types)
    except (fhir.SearchError, ValueError) as exc:
        return _fhir(fhir.operation_outcome("invalid", str(exc)), 400)
    as_csv = format_ in CSV_FORMATS
    if format_ is not None and not as_csv and format_ not in ("json", fhir.FHIR_JSON):
        return _fhir(fhir.operation_outcome("not-supported", "_format: json or text/csv"), 400)
    ensure_patient(conn, user, patient_id, "record.export")
    selection = fhir_everything.Selection(
        start=low[0] if low else None, end=high[1] if high else None, since=changed, types=selected
    )
    audit.record(
        conn,
        user,
        "fhir.patient.everything",
        patient_id=patient_id,
        object_type="patient",
        object_id=patient_id,
        details={
            "format": "csv" if as_csv else "fhir",
            "start": selection.start.isoformat() if selection.start else None,
            "end": selection.end.isoformat() if selection.end else None,
            "since": changed.isoformat() if changed else None,
            "types": sorted(selected) if types is not None else None,
        },
    )
    pool = request.app.state.databases.pool_of(conn)
    # Some data hidden at the patient's request: the Bundle says so in an OperationOutcome,
    # the CSV in this header.
    withheld = (
        {fhir_everything.WITHHELD_HEADER: "oscuramento"}
        if restrictions.withholds(conn, user, patient_id)
        else {}
    )
    if as_csv:
        return StreamingResponse(
            fhir_everything.readings_csv(pool, user, patient_id, selection=selection),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="record-{patient_id}.csv"'}
            | withheld,
        )
    return StreamingResponse(
        fhir_everything.bundle(
            pool,
            user,
            patient_id,
            _base(request),
            _self_link(request),
            selection=selection,
            timestamp=datetime.now(UTC),
        ),
        media_type=fhir.FHIR_JSON,
    )
