"""Twilio's webhooks: delivery reports for the SMS the alerts engine sent, and the SMS patients
send to our number (``INBOUND_PATH``: opting out of reminders, ``dashboard.patient_sms``).

A request is taken only when Twilio signed it: without ``TELEMON_TWILIO_AUTH_TOKEN`` the routes
do not exist (404), and an unsigned or badly signed request gets the same 404, so a caller
cannot tell which. Anyone could otherwise turn a failed red-alert SMS into 'delivered', taking
it off the nurses' failed-SMS worklist, or opt a patient out of reminders.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from twilio.twiml.messaging_response import MessagingResponse

from alerts.notify.callbacks import (
    STATUS_CALLBACK_PATH,
    CallbackOutcome,
    StatusReport,
    apply_status_callback,
    is_valid_signature,
)
from dashboard.patient_sms import InboundSms, handle

INBOUND_PATH = "/sms/inbound"
# Twilio's own limit for one inbound message (10 segments); more is no SMS of a patient.
MAX_INBOUND_LENGTH = 1600

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

# What Twilio hears back; a 4xx shows in its console's error log, where an operator looks.
_ANSWER: Mapping[CallbackOutcome, int] = MappingProxyType(
    {"updated": 204, "unchanged": 204, "unknown": 404, "mismatched": 409}
)


def _signed_by_twilio(
    request: Request, token: str, form: Mapping[str, str], path: str = STATUS_CALLBACK_PATH
) -> bool:
    # Twilio signs the URL it called: the public one, not the one behind the proxy.
    url = request.app.state.public_url.rstrip("/") + path
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
        with request.app.state.databases.primary.connection() as conn:
            return apply_status_callback(conn, report)

    outcome = await run_in_threadpool(apply)
    if outcome == "mismatched":
        log.warning(
            "refused a signed delivery report: %s is not the message of notification %s",
            report.message_sid,
            report.notification_id,
        )
    return Response(status_code=_ANSWER[outcome])


@router.post(INBOUND_PATH)
async def inbound_sms(request: Request) -> Response:
    """An SMS to our number (Twilio's incoming-message webhook); answered in TwiML."""
    token: str | None = request.app.state.twilio_auth_token
    if not token:
        return Response(status_code=404)
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not _signed_by_twilio(request, token, form, INBOUND_PATH):
        return Response(status_code=404)
    sid, sender, body = form.get("MessageSid"), form.get("From"), form.get("Body")
    if not sid or not sender or body is None:
        return Response(status_code=400)
    if any("\x00" in v for v in (sid, sender, body)) or len(body) > MAX_INBOUND_LENGTH:
        return Response(status_code=400)
    sms = InboundSms(sid, sender, body, datetime.now(UTC))

    def apply() -> str:
        with request.app.state.databases.primary.connection() as conn:
            return handle(conn, sms, request.app.state.language).reply

    twiml = MessagingResponse()
    twiml.message(await run_in_threadpool(apply))
    return Response(str(twiml), media_type="application/xml")
