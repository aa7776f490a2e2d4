"""A local stand-in for Twilio's Messages REST API, for tests that must not spend money.

It speaks the shape the real ``twilio`` client expects: ``POST`` and ``GET`` on
``/2010-04-01/Accounts/{AccountSid}/Messages.json``, ``GET .../Messages/{Sid}.json``, HTTP basic
auth, JSON bodies, and errors as ``{"code", "message", "more_info", "status"}``. It records
every request, and a test scripts how the next message requests are answered: server errors,
an invalid 'To' number, or a response held back (after the message was, or was not, accepted)
to provoke client timeouts and crashes in flight.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_VERSION = "2010-04-01"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_MESSAGES = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>AC[0-9a-f]{{32}})/Messages\.json$")
_MESSAGE = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<account>AC[0-9a-f]{{32}})/Messages/(?P<sid>SM[0-9a-f]{{32}})\.json$"
)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    form: dict[str, str]
    auth: tuple[str, str] | None
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Reply:
    """How the fake answers one message-creating request.

    ``accept`` decides whether the message exists at Twilio (and shows up in listings) whatever
    the client later sees; ``delay`` and ``release`` hold the answer back.
    """

    status: int = 201
    code: int | None = None
    message: str = ""
    accept: bool = True
    delay: float = 0.0
    release: threading.Event | None = None

    @classmethod
    def ok(cls) -> Reply:
        return cls()

    @classmethod
    def server_error(cls, status: int = 500) -> Reply:
        return cls(
            status=status, code=20500, message="An internal server error has occurred", accept=False
        )

    @classmethod
    def invalid_to(cls) -> Reply:
        return cls(
            status=400,
            code=21211,
            message="The 'To' number is not a valid phone number.",
            accept=False,
        )

    @classmethod
    def slow(cls, delay: float, *, accept: bool) -> Reply:
        return cls(delay=delay, accept=accept)

    @classmethod
    def held(cls, release: threading.Event, *, accept: bool) -> Reply:
        return cls(release=release, accept=accept)


@dataclass
class FakeTwilio:
    """The fake server and what it saw. Start it with :meth:`running`."""

    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    requests: list[RecordedRequest] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    _replies: deque[Reply] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)
    _holds: list[threading.Event] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def message_posts(self) -> list[RecordedRequest]:
        """Every message-creating request received, accepted or not."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST"]

    def reply_with(self, *replies: Reply) -> None:
        """Answer the next message requests so, in order; later ones are accepted normally."""
        with self._lock:
            self._replies.extend(replies)

    def wait_for_posts(self, count: int, timeout: float = 5.0) -> None:
        with self._arrived:
            if not self._arrived.wait_for(
                lambda: sum(r.method == "POST" for r in self.requests) >= count, timeout
            ):
                raise TimeoutError(f"the fake received fewer than {count} message requests")

    def set_status(self, sid: str, status: str) -> None:
        """Move a message on, as Twilio's carrier feedback would."""
        with self._lock:
            next(m for m in self.messages if m["sid"] == sid)["status"] = status

    @classmethod
    def running(cls) -> _Running:
        return _Running(cls())

    # The server side.

    def _start(self) -> None:
        fake = self

        class Handler(_Handler):
            twilio = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def _stop(self) -> None:
        for release in self._holds:
            release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _record(self, request: RecordedRequest) -> None:
        with self._arrived:
            self.requests.append(request)
            self._arrived.notify_all()

    def _next_reply(self) -> Reply:
        with self._lock:
            reply = self._replies.popleft() if self._replies else Reply.ok()
            if reply.release is not None:
                self._holds.append(reply.release)
            return reply

    def _accept(self, account: str, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC), usegmt=False)
        service = form.get("MessagingServiceSid")
        message = {
            "account_sid": account,
            "api_version": API_VERSION,
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {
                "media": f"/{API_VERSION}/Accounts/{account}/Messages/{sid}/Media.json"
            },
            "to": form["To"],
            "uri": f"/{API_VERSION}/Accounts/{account}/Messages/{sid}.json",
        }
        with self._lock:
            self.messages.append(message)
        return message

    def _listing(self, account: str, query: dict[str, list[str]]) -> dict[str, Any]:
        to = query.get("To", [None])[0]
        sender = query.get("From", [None])[0]
        page_size = int(query.get("PageSize", ["50"])[0])
        with self._lock:
            found = [
                m
                for m in reversed(self.messages)
                if m["account_sid"] == account
                and (to is None or m["to"] == to)
                and (sender is None or m["from"] == sender)
            ][:page_size]
        uri = f"/{API_VERSION}/Accounts/{account}/Messages.json?PageSize={page_size}&Page=0"
        return {
            "messages": found,
            "end": len(found) - 1,
            "first_page_uri": uri,
            "next_page_uri": None,
            "page": 0,
            "page_size": page_size,
            "previous_page_uri": None,
            "start": 0,
            "uri": uri,
        }


class _Running:
    def __init__(self, fake: FakeTwilio) -> None:
        self.fake = fake

    def __enter__(self) -> FakeTwilio:
        self.fake._start()
        return self.fake

    def __exit__(self, *exc_info: object) -> None:
        self.fake._stop()


class _Handler(BaseHTTPRequestHandler):
    twilio: FakeTwilio
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet test output; the requests are recorded instead

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        request = RecordedRequest(
            method=method,
            path=url.path,
            query=parse_qs(url.query),
            form=form,
            auth=self._basic_auth(),
            headers=dict(self.headers.items()),
        )
        self.twilio._record(request)

        listing = _MESSAGES.match(url.path)
        single = _MESSAGE.match(url.path)
        account = (listing or single)["account"] if (listing or single) else None
        if account is None:
            return self._error(404, 20404, "The requested resource was not found")
        if request.auth != (account, self.twilio.auth_token) or account != self.twilio.account_sid:
            return self._error(401, 20003, "Authenticate")
        if method == "GET" and listing:
            return self._json(200, self.twilio._listing(account, request.query))
        if method == "GET" and single:
            for message in self.twilio.messages:
                if message["sid"] == single["sid"]:
                    return self._json(200, message)
            return self._error(404, 20404, "The requested resource was not found")
        if method == "POST" and listing:
            return self._create(account, form)
        return self._error(405, 20004, "Method not allowed")

    def _create(self, account: str, form: dict[str, str]) -> None:
        problem = _invalid(form)
        if problem is not None:
            return self._error(400, *problem)
        reply = self.twilio._next_reply()
        message = self.twilio._accept(account, form) if reply.accept else None
        if reply.release is not None:
            reply.release.wait(30)
        elif reply.delay:
            threading.Event().wait(reply.delay)
        if reply.code is not None:
            return self._error(reply.status, reply.code, reply.message)
        if message is None:
            # A held or slow request that never made it: the connection just drops.
            self.close_connection = True
            return None
        return self._json(reply.status, message)

    def _basic_auth(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password

    def _error(self, status: int, code: int, message: str) -> None:
        self._json(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status, HTTPStatus(status).phrase)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout under test, or a killed process)


def _invalid(form: dict[str, str]) -> tuple[int, str] | None:
    if not form.get("To"):
        return 21604, "A 'To' phone number is required."
    if not _E164.match(form["To"]):
        return 21211, f"The 'To' number {form['To']} is not a valid phone number."
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return 21603, "A 'From' phone number is required."
    if not form.get("Body"):
        return 21602, "Message body is required."
    return None
