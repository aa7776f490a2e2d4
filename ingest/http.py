"""``GET /metrics`` (Prometheus text format) and ``GET /healthz`` on the ingest metrics port."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsServer:
    """Serves in a daemon thread; ``port=0`` picks a free port (see :attr:`port`)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        render_metrics: Callable[[], str],
        health: Callable[[], tuple[bool, str]],
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._reply(200, render_metrics(), PROMETHEUS_CONTENT_TYPE)
                elif self.path == "/healthz":
                    ok, detail = health()
                    self._reply(200 if ok else 503, detail + "\n", "text/plain; charset=utf-8")
                else:
                    self._reply(404, "not found: try /metrics or /healthz\n", "text/plain")

            def _reply(self, status: int, body: str, content_type: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                # Scrapes every few seconds would drown the service's own log.
                return

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(
                f"cannot serve ingest metrics on {host}:{port}: {exc.strerror or exc}. "
                "Give each ingest worker its own TELEMON_INGEST_METRICS_PORT."
            ) from exc
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="ingest-metrics", daemon=True
        )

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
