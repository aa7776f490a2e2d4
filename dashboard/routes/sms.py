"""Twilio's delivery reports for the SMS the alerts engine sent.

A report is taken only when Twilio signed it: without ``TELEMON_TWILIO_AUTH_TOKEN`` the route
does not exist (404), and an unsigned or badly signed report gets the same 404, so a caller
cannot tell which. Anyone could otherwise turn a failed red-alert SMS into 'delivered', taking
it off the nurses' failed-SMS worklist.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from alerts.notify.callbacks import (
    STATUS_CALLBACK_PATH,
    CallbackOutcome,
    StatusReport,
    apply_status_callback,
    is_valid_signature,
)

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# What Twilio hears back; a 4xx shows in its console's error log, where an operator looks.
_ANSWER: Mapping[CallbackOutcome, int] = MappingProxyType(
    {"updated": 204, "unchanged": 204, "unknown": 404, "mismatched": 409}
)


def _signed_by_twilio(request: Request, token: str, form: Mapping[str, str]) -> bool:
    # Twilio signs the URL it called: the public one, not the one behind the proxy.
    url = request.app.state.public_url.rstrip("/") + STATUS_CALLBACK_PATH
    if request.url.query:
        url += "?" + request.url.query
    return is_valid_signature(
        token,
        url,
        form,
        request.headers.get("x-twilio-signature"),
        request.headers.get("x-twilio-webhooks-signature-settings"),
    )


@router.post(STATUS_CALLBACK_PATH)
async def status_callback(request: Request) -> Response:
    token: str | None = request.app.state.twilio_auth_token
    if not token:
        return Response(status_code=404)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not _signed_by_twilio(request, token, form):
        return Response(status_code=404)
    if "MessageSid" not in form or "MessageStatus" not in form:
        return Response(status_code=400)
    # PostgreSQL text takes no NUL (nor int() a digit such as '²'), signed or not.
    if any("\x00" in v for v in (*form.values(), *request.query_params.values())):
        return Response(status_code=400)
    try:
        report = StatusReport.from_request(form, dict(request.query_params))
    except ValueError:
        return Response(status_code=400)

    def apply() -> CallbackOutcome:
        with request.app.state.pool.connection() as conn:
            return apply_status_callback(conn, report)

    outcome = await run_in_threadpool(apply)
    if outcome == "mismatched":
        log.warning(
            "refused a signed delivery report: %s is not the message of notification %s",
            report.message_sid,
            report.notification_id,
        )
    return Response(status_code=_ANSWER[outcome])
