"""Asking our own services' HTTP endpoints (health, metrics) what they answer."""

from __future__ import annotations

import urllib.error
import urllib.request


def local_get(port: int, path: str) -> tuple[int, str]:
    """Status and body of ``GET http://127.0.0.1:{port}{path}``, errors included."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def http_status(url: str) -> int:
    """The HTTP status ``url`` answers with; 0 when nobody answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0
