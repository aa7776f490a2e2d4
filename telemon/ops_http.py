"""The operations endpoint every service serves: ``GET /healthz`` and, where it has them,
``GET /metrics`` in the Prometheus text format. Stdlib only, in a daemon thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

HealthCheck = Callable[[], tuple[bool, str]]


class OpsServer:
    """``port=0`` picks a free port (see :attr:`port`)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        health: HealthCheck,
        metrics: Callable[[], str] | None = None,
        name: str = "ops",
    ) -> None:
        routes: dict[str, Callable[[], tuple[HTTPStatus, str, str]]] = {
            "/healthz": lambda: _health_reply(health),
        }
        if metrics is not None:
            routes["/metrics"] = lambda: (HTTPStatus.OK, metrics(), PROMETHEUS_CONTENT_TYPE)
        known = " or ".join(routes)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path)
                status, body, content_type = (
                    route() if route else (HTTPStatus.NOT_FOUND, f"not found: try {known}\n", TEXT)
                )
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                # Probes and scrapes every few seconds would drown the service's own log.
                return

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(
                f"cannot serve {name} health and metrics on {host}:{port}: "
                f"{exc.strerror or exc}; give each process its own port"
            ) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{name}-http", daemon=True
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


def _health_reply(health: HealthCheck) -> tuple[HTTPStatus, str, str]:
    healthy, detail = health()
    return (HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE), detail + "\n", TEXT
