"""Connecting to PostgreSQL with errors a person can act on."""

from __future__ import annotations

from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg

R = TypeVar("R")


class DatabaseUnavailable(RuntimeError):
    pass


def redact(url: str) -> str:
    """The URL without its password, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def connect(url: str, *, autocommit: bool = False, timeout: float = 5.0) -> psycopg.Connection:
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=max(1, int(timeout)))
    except psycopg.OperationalError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            f"cannot reach PostgreSQL at {redact(url)}: {first_line}. "
            "Start the server or point TELEMON_DATABASE_URL at a running one "
            "(unset it to let `telemon demo` start an embedded PostgreSQL)."
        ) from exc


def one_row(cursor: psycopg.Cursor[R]) -> R:
    """The row of a query that always returns one (an aggregate, ``to_regclass``, a row this
    transaction has just written): ``one_row(conn.execute(...))[0]``."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the query returned no row")
    return row
