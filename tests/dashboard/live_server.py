"""The dashboard served by a real uvicorn on a free loopback port, signed in over real HTTP.

For what TestClient skips: uvicorn's proxy-header middleware (TestClient calls the app directly)
and concurrency between requests (uvicorn's event loop and the app's thread pools).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI

from console.embedded import free_port
from dashboard.server import BackgroundServer
from tests.dashboard.support import PASSWORD


@contextmanager
def live_dashboard(app: FastAPI, **options: object) -> Iterator[str]:
    """The app served on 127.0.0.1; yields its base URL. ``options`` go to BackgroundServer."""
    server = BackgroundServer(app, "127.0.0.1", free_port(), **options)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def post_login(
    http: httpx.Client,
    username: str,
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """The login form fetched, then posted with its token (as a browser does)."""
    page = http.get("/login", headers=headers)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return http.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        headers=headers,
    )
