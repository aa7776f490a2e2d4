"""FHIR R4 read endpoints: Patient by id, Observation search (searchset Bundle)."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row

from dashboard import audit, fhir
from dashboard.authz import Principal, ensure_patient, get_conn, require

router = APIRouter(prefix="/fhir", tags=["fhir"])

Clinician = Annotated[Principal, Depends(require("clinical.read"))]
Conn = Annotated[psycopg.Connection, Depends(get_conn)]


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
    conn: Conn,
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
    conn: Conn,
    patient: Annotated[str | None, Query(max_length=80)] = None,
    code: Annotated[list[str], Query(max_length=400)] = [],  # noqa: B006  (FastAPI copies it)
    date: Annotated[list[str], Query(max_length=60)] = [],  # noqa: B006
    count: Annotated[int | None, Query(alias="_count", ge=1)] = None,
) -> JSONResponse:
    try:
        query = fhir.parse_search(patient, code, date, count)
    except fhir.SearchError as exc:
        return _fhir(fhir.operation_outcome("invalid", str(exc)), 400)
    ensure_patient(conn, user, query.patient_id)
    resources = fhir.observations(conn, query)
    audit.record(
        conn,
        user,
        "fhir.observation.search",
        patient_id=query.patient_id,
        object_type="patient",
        object_id=query.patient_id,
        details={"codes": [m.loinc for m in query.metrics], "results": len(resources)},
    )
    return _fhir(fhir.searchset(resources, _base(request), _self_link(request)))
