"""Running the dashboard: in the foreground (``telemon dashboard``) or in a thread (the demo)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI


def uvicorn_config(
    app: FastAPI,
    host: str,
    port: int,
    *,
    forwarded_allow_ips: str = "",
    log_level: str = "warning",
) -> uvicorn.Config:
    """How the dashboard is served, in the foreground and in a thread alike.

    ``forwarded_allow_ips`` (``TELEMON_FORWARDED_ALLOW_IPS``, comma-separated addresses or
    networks) lists the reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed.
    Empty, none is: uvicorn's own default trusts loopback, so anyone on the server's machine could
    name any client address, in the audit log and the login throttle alike.
    """
    trusted = [item.strip() for item in forwarded_allow_ips.split(",") if item.strip()]
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted,
    )


class BackgroundServer:
    """uvicorn serving ``app`` from a daemon thread, stopped cleanly on request."""

    def __init__(
        self, app: FastAPI, host: str, port: int, *, forwarded_allow_ips: str = ""
    ) -> None:
        self._server = uvicorn.Server(
            uvicorn_config(app, host, port, forwarded_allow_ips=forwarded_allow_ips)
        )
        self._thread = threading.Thread(target=self._server.run, name="dashboard", daemon=True)
        self.url = f"http://{host}:{port}"

    def start(self, timeout: float = 15.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the dashboard could not start on {self.url}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start within {timeout} s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
