"""The alerts service is healthy while the database answers (see telemon.ops_http)."""

from __future__ import annotations

from collections.abc import Callable

import psycopg


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
