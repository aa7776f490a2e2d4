"""The primary and, when ``TELEMON_DATABASE_READ_URL`` names one, a streaming replica: where a
request's reads and writes go (docs/scaling.md, "Read replica").

A route says what it needs, once, in its signature: ``Reads`` (pages, the API's GETs, FHIR) or
``Writes`` (forms and actions). Nothing else decides:

- ``Writes`` lends a primary connection. Before the response leaves, the session records the
  primary's WAL position (``dashboard_sessions.written_lsn``).
- ``Reads`` lends the replica's connection when the replica is reachable and has replayed the
  session's ``written_lsn`` (read-your-writes: a person sees their own action at once, however
  far the replica lags), and otherwise the primary's. The writes a read entails (its audit rows)
  go through :func:`writer` to the primary, on a connection lent to the same request.

An unreachable replica is logged once, reads go to the primary, and the replica is tried again
every ``RETRY_SECONDS``; its return is logged too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool, PoolTimeout

from dashboard import sessions
from dashboard.authz import SESSION_COOKIE, Principal, signed_in

log = logging.getLogger(__name__)
REPLICA_POOL = "dashboard-replica"

POOL_SIZE = 8
# How long a request waits for a replica connection before it reads the primary instead.
REPLICA_WAIT_SECONDS = 1.0
# After the replica failed, reads go to the primary this long before the replica is tried again.
RETRY_SECONDS = 5.0


class ReplicaConnection(psycopg.Connection[TupleRow]):
    """A replica's connection, lent to one request's reads, with the primary's that the same
    request writes on (:func:`writer`): taken from the pool only when a write comes."""

    _lend_primary: Callable[[], psycopg.Connection[Any]] | None = None

    def primary(self) -> psycopg.Connection[Any]:
        if self._lend_primary is None:
            raise RuntimeError("a replica connection outside a request cannot write")
        return self._lend_primary()


def writer(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """Where a write of ``conn``'s request goes: ``conn``, unless it is the replica's; then the
    primary's connection lent to the same request."""
    return conn.primary() if isinstance(conn, ReplicaConnection) else conn


@dataclass(frozen=True, slots=True)
class ReplicaLag:
    """How far the replica is behind the primary, for ``/status``."""

    reachable: bool
    lag_bytes: int | None = None  # primary's WAL position minus the replica's replayed one
    lag_seconds: float | None = None  # since the last transaction replayed, while WAL waits
    error: str | None = None


def lsn_bytes(lsn: str) -> int:
    """A ``pg_lsn`` as text (``16/B374D848``) as the byte position it names."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


# Seconds of lag: none once everything received is replayed (an idle primary sends nothing, so
# the last replay's age would grow without any lag); otherwise the age of the last transaction
# replayed.
_REPLICA_POSITION = """
SELECT pg_last_wal_replay_lsn()::text,
       CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END
"""


class _QuietReplicaPool(logging.Filter):
    """Drops psycopg_pool's own warnings about the replica's connections: while the replica is
    away the pool retries, a warning each time; :class:`Databases` says it once instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return REPLICA_POOL not in message and ReplicaConnection.__name__ not in message


_QUIET_REPLICA_POOL = _QuietReplicaPool()


class Databases:
    """The dashboard's connection pools: the primary's and, if configured, the replica's."""

    def __init__(self, primary_url: str, replica_url: str | None = None) -> None:
        self.primary = ConnectionPool(
            primary_url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            kwargs={"autocommit": True},
            name="dashboard",
        )
        self.replica: ConnectionPool[ReplicaConnection] | None = (
            ConnectionPool(
                replica_url,
                connection_class=ReplicaConnection,
                min_size=1,
                max_size=POOL_SIZE,
                open=False,
                kwargs={"autocommit": True},
                name=REPLICA_POOL,
            )
            if replica_url
            else None
        )
        if self.replica is not None:
            logging.getLogger("psycopg.pool").addFilter(_QUIET_REPLICA_POOL)  # once: a set
        self._lock = threading.Lock()
        self._retry_at: float | None = None  # set while the replica is unreachable

    def open(self) -> None:
        self.primary.open(wait=False)
        if self.replica is not None:
            self.replica.open(wait=False)

    def close(self) -> None:
        if self.replica is not None:
            self.replica.close()
        self.primary.close()

    @contextmanager
    def reading(self, after: str | None) -> Iterator[psycopg.Connection[Any]]:
        """A connection for one request's reads: the replica's if it is reachable and has
        replayed the primary's WAL up to ``after`` (the session's last write), else the
        primary's."""
        with ExitStack() as stack:
            conn: psycopg.Connection[Any] | None = self._replica_for(stack, after)
            if conn is None:
                conn = stack.enter_context(self.primary.connection())
            yield conn

    def pool_of(self, conn: psycopg.Connection[Any]) -> ConnectionPool[Any]:
        """The pool a streamed read (a FHIR export, on connections of its own) continuing
        ``conn``'s takes from: the replica's if ``conn`` was found fresh enough there."""
        if isinstance(conn, ReplicaConnection) and self.replica is not None:
            return self.replica
        return self.primary

    def _replica_for(self, stack: ExitStack, after: str | None) -> ReplicaConnection | None:
        replica = self.replica
        if replica is None or (self._retry_at is not None and time.monotonic() < self._retry_at):
            return None
        try:
            conn = replica.getconn(timeout=REPLICA_WAIT_SECONDS)
        except PoolTimeout as exc:
            # None can be made (or all are busy that long): the primary serves meanwhile.
            self._failed(exc)
            return None
        try:
            # NULL on a server in no recovery: the read URL names a primary, current by nature.
            row = conn.execute(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= %s::pg_lsn, true)", (after or "0/0",)
            ).fetchone()
        except psycopg.OperationalError as exc:
            replica.putconn(conn)  # broken: the pool discards it
            self._failed(exc)
            return None
        self._reachable()
        if row is None or not row[0]:
            replica.putconn(conn)
            return None
        lent: list[psycopg.Connection[Any]] = []

        def lend_primary() -> psycopg.Connection[Any]:
            if not lent:
                lent.append(stack.enter_context(self.primary.connection()))
            return lent[0]

        stack.callback(replica.putconn, conn)
        stack.callback(setattr, conn, "_lend_primary", None)
        conn._lend_primary = lend_primary
        return conn

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            first = self._retry_at is None
            self._retry_at = time.monotonic() + RETRY_SECONDS
        if first:
            log.warning(
                "the read replica is unreachable or not answering (%s: %s): reading from the "
                "primary, trying the replica again every %.0f s",
                type(exc).__name__,
                (str(exc).strip().splitlines() or [""])[0],
                RETRY_SECONDS,
            )

    def _reachable(self) -> None:
        if self._retry_at is None:
            return
        with self._lock:
            was_down, self._retry_at = self._retry_at is not None, None
        if was_down:
            log.warning("the read replica is reachable again: reads go to it")

    def replica_lag(self) -> ReplicaLag | None:
        """The replica's lag behind the primary (None: no replica configured)."""
        if self.replica is None:
            return None
        try:
            # The replica first: the primary's position read after it errs towards more lag,
            # never less.
            with self.replica.connection(timeout=3.0) as replica:
                position = replica.execute(_REPLICA_POSITION).fetchone()
            with self.primary.connection(timeout=3.0) as primary:
                row = primary.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            return ReplicaLag(reachable=False, error=type(exc).__name__)
        assert row is not None and position is not None
        replayed, seconds = position
        if replayed is None:  # not a standby: the read URL names a primary
            return ReplicaLag(reachable=True, lag_bytes=0, lag_seconds=0.0)
        return ReplicaLag(
            reachable=True,
            lag_bytes=max(0, lsn_bytes(row[0]) - lsn_bytes(replayed)),
            lag_seconds=round(max(0.0, seconds or 0.0), 3),
        )


def read_conn(
    request: Request, user: Annotated[Principal, Depends(signed_in)]
) -> Iterator[psycopg.Connection[Any]]:
    databases: Databases = request.app.state.databases
    with databases.reading(after=user.written_lsn) as conn:
        yield conn


def write_conn(request: Request) -> Iterator[psycopg.Connection[Any]]:
    databases: Databases = request.app.state.databases
    with databases.primary.connection() as conn:
        yield conn
        token = request.cookies.get(SESSION_COOKIE)
        if databases.replica is not None and token:
            sessions.remember_write(conn, token)


# What a route's ``conn`` parameter says it needs. Writes ends before the response is sent
# (scope "function"), so the session's WAL position is recorded before the browser follows the
# redirect to a page that must show the change.
Reads = Annotated[psycopg.Connection, Depends(read_conn)]
Writes = Annotated[psycopg.Connection, Depends(write_conn, scope="function")]
