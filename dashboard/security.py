"""Security headers on every response, and error pages that never show a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.alert_actions import Conflict
from dashboard.authz import (
    CsrfError,
    Forbidden,
    NotAuthenticated,
    NotFound,
    PasswordChangeRequired,
)
from dashboard.i18n import translator

log = logging.getLogger(__name__)

HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
}
# Health data must not linger in shared caches or the browser's back-forward cache.
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


class SecurityHeaders:
    """Pure ASGI middleware (not BaseHTTPMiddleware): it must not buffer the SSE stream."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = [(k.encode(), v.encode()) for k, v in HEADERS.items()]
        if hsts:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.headers if k not in present]
                if not static:
                    headers += [(k.encode(), v.encode()) for k, v in NO_STORE.items()]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(
        ("/api/", "/fhir/", "/events", "/sms/")
    ) or "json" in request.headers.get("accept", "")


def _error(request: Request, status: int, key: str) -> Response:
    if request.url.path.startswith("/fhir/"):
        from dashboard.fhir import FHIR_JSON, operation_outcome

        code = {401: "login", 403: "forbidden", 404: "not-found", 409: "conflict"}.get(
            status, "exception" if status >= 500 else "invalid"
        )
        return JSONResponse(
            operation_outcome(code, translator("en")(key)), status, media_type=FHIR_JSON
        )
    if _wants_json(request):
        return JSONResponse({"detail": translator("en")(key)}, status)
    from dashboard.web import render

    user = getattr(request.state, "user", None)
    return render(
        request, "error.html", {"message_key": key, "code": status}, user=user, status_code=status
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, exc: NotAuthenticated) -> Response:
        if _wants_json(request):
            return _error(request, 401, "login.expired")
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return _error(request, 403, "forbidden")

    @app.exception_handler(PasswordChangeRequired)
    async def password_change_required(request: Request, exc: PasswordChangeRequired) -> Response:
        if _wants_json(request):
            return _error(request, 403, "password.change_required")
        return RedirectResponse("/password", status_code=303)

    @app.exception_handler(CsrfError)
    async def csrf(request: Request, exc: CsrfError) -> Response:
        return _error(request, 403, "forbidden")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return _error(request, 404, "not_found")

    @app.exception_handler(Conflict)
    async def conflict(request: Request, exc: Conflict) -> Response:
        return _error(request, 409, "conflict")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error(request, 404, "not_found")
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        return _error(request, exc.status_code, "server_error")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # Field locations and messages only: echoing the input could put health data in logs.
        errors = [{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()]
        if request.url.path.startswith("/fhir/"):
            from dashboard.fhir import FHIR_JSON, operation_outcome

            return JSONResponse(
                operation_outcome("invalid", str(errors)), 400, media_type=FHIR_JSON
            )
        if _wants_json(request):
            return JSONResponse({"detail": errors}, 422)
        # A form a person filled in: a page that says which field to correct, and how.
        from dashboard.web import render

        details = [f"{e['loc'][-1]}: {e['msg'].removeprefix('Value error, ')}" for e in errors]
        user = getattr(request.state, "user", None)
        context = {"message_key": "invalid_input", "code": 422, "details": details}
        return render(request, "error.html", context, user=user, status_code=422)

    # Imported here, as the handlers' pages are: the report's module builds on the web layer.
    from dashboard.report import PeriodError

    @app.exception_handler(PeriodError)
    async def bad_period(request: Request, exc: PeriodError) -> Response:
        """A report's period it cannot cover (dashboard/routes/reports.py): 422 with the reason,
        which names the fields and never echoes the input."""
        reason = str(exc)
        if request.url.path.endswith(".fhir"):
            from dashboard.fhir import FHIR_JSON, operation_outcome

            return JSONResponse(operation_outcome("invalid", reason), 422, media_type=FHIR_JSON)
        if _wants_json(request):
            return JSONResponse({"detail": reason}, 422)
        from dashboard.web import render

        user = getattr(request.state, "user", None)
        context = {"message_key": "invalid_input", "code": 422, "details": [reason]}
        return render(request, "error.html", context, user=user, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(request, 500, "server_error")
