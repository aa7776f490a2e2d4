"""Why a batch write failed, and how long the writer waits before trying it again.

These are the failures left once the store has isolated what the database refuses for a single
message (``Store.write_isolated``, the ``store_error`` dead letters): none of them turns valid
messages into dead letters or acknowledges them; the batch stays unacknowledged and is written
again after a delay. What changes with the kind is the delay and
what an operator is told. A database out of resources (SQLSTATE class 53: disk full, out of
memory, a configuration limit) is not a lost connection: the connection works and the server
refuses the write, so reconnecting at once only adds load; the writer stops taking new work, backs
off up to a minute, and /healthz says why until a write succeeds again.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from telemon.database import DatabaseUnavailable

# Delays between attempts at one batch, by kind; the last delay repeats.
RETRY_DELAYS_S: dict[str, tuple[float, ...]] = {
    "connection": (0.2, 0.5, 1.0, 2.0, 5.0),
    "conflict": (0.2, 0.5, 1.0, 2.0, 5.0),
    "resources": (1.0, 2.0, 5.0, 15.0, 30.0, 60.0),
    "unexpected": (0.2, 0.5, 1.0, 2.0, 5.0),
}

# SQLSTATE classes that say the server refused the work, whatever psycopg's exception class:
# psycopg maps DiskFull, OutOfMemory... straight onto OperationalError, like a broken connection.
_KIND_BY_SQLSTATE_CLASS = {
    "53": "resources",  # insufficient_resources
    "40": "conflict",  # transaction_rollback: deadlock, serialization failure
}


@dataclass(frozen=True, slots=True)
class StoreFailure:
    kind: str  # a key of RETRY_DELAYS_S
    reason: str  # one line for /healthz and the log

    @property
    def refused(self) -> bool:
        """The server is up and refuses writes for want of resources."""
        return self.kind == "resources"

    def delay(self, attempt: int) -> float:
        delays = RETRY_DELAYS_S[self.kind]
        return delays[min(attempt, len(delays) - 1)]


def classify_failure(exc: Exception) -> StoreFailure:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    kind = _KIND_BY_SQLSTATE_CLASS.get(sqlstate[:2])
    if kind is None:
        unreachable = isinstance(exc, psycopg.OperationalError | DatabaseUnavailable)
        kind = "connection" if unreachable else "unexpected"
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else type(exc).__name__
    code = f"{sqlstate} {type(exc).__name__}: " if sqlstate else ""
    return StoreFailure(kind, f"{code}{first_line}")
