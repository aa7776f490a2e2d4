"""Twilio's delivery reports for the SMS the alerts engine sent."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from alerts.notify.callbacks import (
    STATUS_CALLBACK_PATH,
    StatusReport,
    apply_status_callback,
    is_valid_signature,
)

router = APIRouter(include_in_schema=False)


@router.post(STATUS_CALLBACK_PATH)
async def status_callback(request: Request) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    token = request.app.state.twilio_auth_token
    if token:
        # Twilio signs the URL it called: the public one, not the one behind the proxy.
        url = request.app.state.public_url.rstrip("/") + STATUS_CALLBACK_PATH
        if request.url.query:
            url += "?" + request.url.query
        if not is_valid_signature(
            token,
            url,
            form,
            request.headers.get("x-twilio-signature"),
            request.headers.get("x-twilio-webhooks-signature-settings"),
        ):
            return Response(status_code=403)
    if "MessageSid" not in form or "MessageStatus" not in form:
        return Response(status_code=400)
    # Unsigned when no auth token is configured: anything may arrive, and PostgreSQL text takes
    # no NUL (nor int() a digit such as '²').
    if any("\x00" in v for v in (*form.values(), *request.query_params.values())):
        return Response(status_code=400)
    try:
        report = StatusReport.from_request(form, dict(request.query_params))
    except ValueError:
        return Response(status_code=400)

    def apply() -> None:
        with request.app.state.pool.connection() as conn:
            apply_status_callback(conn, report)

    await run_in_threadpool(apply)
    return Response(status_code=204)
