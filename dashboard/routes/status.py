"""``/healthz`` for anyone (the process is alive) and ``/status`` for operators.

``/status`` tells how many patients are enrolled, the open alerts, the readings of the last day,
how far the read replica lags and where the broker is: a signed-in admin reads it as a page
(or JSON), a monitoring probe with ``Authorization: Bearer {TELEMON_STATUS_TOKEN}`` as JSON.
``/healthz`` runs no query, so anonymous callers cannot make the database count rows either.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from dashboard.authz import Forbidden, current_user, signed_in
from dashboard.status import ServiceStatus, current_status
from dashboard.web import render

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """Liveness: the dashboard answers requests. Nothing about the data or the servers."""
    return JSONResponse({"status": "ok"})


def bearer_matches(authorization: str, expected: str | None) -> bool:
    """Whether an ``Authorization`` header carries the status token; constant time."""
    scheme, _, sent = authorization.partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(sent.strip().encode(), expected.encode())


@router.get("/status", response_model=None)
async def service_status(request: Request) -> Response:
    authorization = request.headers.get("authorization")
    if authorization is not None:
        if not bearer_matches(authorization, request.app.state.status_token):
            return JSONResponse(
                {"detail": "a valid status token is required"},
                401,
                headers={"www-authenticate": 'Bearer realm="telemon status"'},
            )
        user = None
    else:
        # No session: JSON callers 401, browsers to /login; a password to change: to /password.
        user = await current_user(await signed_in(request))
        if not user.can("service.status"):
            raise Forbidden
    status: ServiceStatus = await run_in_threadpool(
        current_status, request.app.state.databases, request.app.state.mqtt_url
    )
    code = 200 if status.healthy else 503
    if user is None or "json" in request.headers.get("accept", ""):
        return JSONResponse(status.as_dict(), code)
    return render(request, "status.html", {"status": status}, user=user, status_code=code)
