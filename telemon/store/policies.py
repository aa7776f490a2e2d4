"""Retention and compression as configured, recorded in ``storage_settings``.

The policies are (re)applied only when the configured values differ from the recorded ones:
re-creating TimescaleDB's policy jobs on every start reschedules them (and resets their run
history) for nothing. What changed is returned, for ``telemon migrate`` to report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import psycopg

from telemon.config import COMPRESSION_HORIZON_DAYS
from telemon.store.backend import Backend

DEFAULT_RETENTION = timedelta(days=3650)
# After the gateways' outbox horizon: late rows arrive in chunks that are not compressed yet.
DEFAULT_COMPRESS_AFTER = timedelta(days=COMPRESSION_HORIZON_DAYS)


@dataclass(frozen=True, slots=True)
class StoragePolicies:
    backend: Backend
    retention: timedelta
    compress_after: timedelta


def recorded_policies(conn: psycopg.Connection) -> StoragePolicies | None:
    row = conn.execute("SELECT backend, retention, compress_after FROM storage_settings").fetchone()
    return StoragePolicies(*row) if row else None


def policy_changes(before: StoragePolicies | None, after: StoragePolicies) -> tuple[str, ...]:
    """What differs, as "name: old -> new" ("name: new" on a first install)."""
    fields = ("backend", "retention", "compress_after")
    return tuple(
        f"{name}: {_shown(getattr(after, name))}"
        if before is None
        else f"{name}: {_shown(getattr(before, name))} -> {_shown(getattr(after, name))}"
        for name in fields
        if before is None or getattr(before, name) != getattr(after, name)
    )


def apply_storage_policies(conn: psycopg.Connection, wanted: StoragePolicies) -> tuple[str, ...]:
    """Record and apply ``wanted`` if it differs from what is recorded; return the changes."""
    changes = policy_changes(recorded_policies(conn), wanted)
    if not changes:
        return ()
    conn.execute(
        "INSERT INTO storage_settings (backend, retention, compress_after) VALUES (%s, %s, %s) "
        "ON CONFLICT (singleton) DO UPDATE SET retention = excluded.retention, "
        "compress_after = excluded.compress_after, updated_at = now()",
        (wanted.backend, wanted.retention, wanted.compress_after),
    )
    conn.execute(
        "SELECT telemon_apply_storage_policies(%s, %s)", (wanted.retention, wanted.compress_after)
    )
    return changes


def _shown(value: object) -> str:
    if isinstance(value, timedelta) and value == timedelta(days=value.days):
        return f"{value.days} days"
    return str(value)
