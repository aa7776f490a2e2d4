"""``GET /healthz``: 200 while the database answers, 503 when it does not."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg

HEALTH_PATH = "/healthz"


def database_check(url: str, timeout: float = 2.0) -> Callable[[], tuple[bool, str]]:
    """A probe on a fresh connection each time, so a stuck engine connection is not hidden."""

    def check() -> tuple[bool, str]:
        try:
            with psycopg.connect(url, connect_timeout=max(1, int(timeout))) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return False, f"database unreachable: {type(exc).__name__}"
        return True, "ok"

    return check


class HealthServer:
    def __init__(self, host: str, port: int, check: Callable[[], tuple[bool, str]]) -> None:
        handler = _handler(check)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="alerts-health", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(check: Callable[[], tuple[bool, str]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != HEALTH_PATH:
                self._reply(HTTPStatus.NOT_FOUND, "not found")
                return
            healthy, detail = check()
            self._reply(HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE, detail)

        def _reply(self, status: HTTPStatus, text: str) -> None:
            body = (text + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would drown the service's log

    return Handler
