"""Sending SMS through Twilio, with failures sorted into 'try again' and 'give up'.

The sender never sees a Twilio or ``requests`` exception: only :class:`RetryableSendError`
(5xx, 429, timeouts, connection errors: the message may or may not exist at Twilio) and
:class:`PermanentSendError` (4xx such as 21211, invalid 'To' number: it certainly does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import requests
from twilio.base import values
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from telemon.config import Settings

# Twilio stamps date_created with its own clock; allow for the difference from ours.
_CLOCK_SKEW = timedelta(minutes=5)
_RECENT_MESSAGES = 50


class SendError(Exception):
    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RetryableSendError(SendError):
    pass


class PermanentSendError(SendError):
    pass


@dataclass(frozen=True, slots=True)
class AcceptedMessage:
    sid: str
    status: str


class SmsGateway(Protocol):
    def send(self, to: str, body: str, status_callback: str | None) -> AcceptedMessage: ...

    def find_sent(self, to: str, body: str, since: datetime) -> list[AcceptedMessage]: ...


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    account_sid: str
    auth_token: str
    sender: str  # an E.164 number, or a Messaging Service SID ('MG...')
    base_url: str | None = None  # another API host: tests point it at a local fake
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = 10.0) -> TwilioConfig | None:
        """None without credentials: the demo, where messages go to the outbox."""
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        if not (settings.twilio_account_sid and token and settings.twilio_from):
            return None
        return cls(
            settings.twilio_account_sid,
            token,
            settings.twilio_from,
            settings.twilio_base_url,
            timeout,
        )


class TwilioGateway:
    def __init__(self, config: TwilioConfig) -> None:
        self.config = config
        # The http client does not retry on its own: every request it makes is one we decided.
        self.client = Client(
            config.account_sid,
            config.auth_token,
            http_client=TwilioHttpClient(timeout=config.timeout),
        )
        if config.base_url:
            self.client.api.base_url = config.base_url.rstrip("/")

    def send(self, to: str, body: str, status_callback: str | None) -> AcceptedMessage:
        sender = self.config.sender
        via_service = sender.startswith("MG")
        try:
            message = self.client.messages.create(
                to=to,
                body=body,
                from_=values.unset if via_service else sender,
                messaging_service_sid=sender if via_service else values.unset,
                status_callback=status_callback or values.unset,
            )
        except (TwilioException, requests.RequestException) as exc:
            raise _classify(exc) from exc
        return AcceptedMessage(str(message.sid), str(message.status))

    def find_sent(self, to: str, body: str, since: datetime) -> list[AcceptedMessage]:
        """Messages to ``to`` with ``body`` created since ``since``: did an attempt get through?

        Twilio lists queued messages too (their date_sent is still empty), so the filter is on
        the recipient and the sender only; the body and creation time narrow it down here.
        """
        sender = self.config.sender
        try:
            recent = self.client.messages.list(
                to=to,
                from_=values.unset if sender.startswith("MG") else sender,
                limit=_RECENT_MESSAGES,
            )
        except (TwilioException, requests.RequestException) as exc:
            raise _classify(exc) from exc
        # 'in': a trial account prefixes the bodies it sends.
        return [
            AcceptedMessage(str(m.sid), str(m.status))
            for m in recent
            if m.body
            and body in m.body
            and (m.date_created is None or m.date_created >= since - _CLOCK_SKEW)
        ]


def _classify(exc: TwilioException | requests.RequestException) -> SendError:
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        detail = exc.msg if isinstance(exc, TwilioRestException) else exc.detail or exc.title
        text = f"Twilio {exc.status} error {exc.code}: {detail}"
        if exc.status >= 500 or exc.status in (408, 429):
            return RetryableSendError(text, code=exc.code)
        return PermanentSendError(text, code=exc.code)
    if isinstance(exc, requests.Timeout):
        return RetryableSendError(f"no answer from Twilio in time: {type(exc).__name__}")
    return RetryableSendError(f"cannot reach Twilio: {type(exc).__name__}: {exc}")
