"""Schema migrations: ordered SQL files, applied once each, recorded in ``schema_migrations``.

A file named ``NNNN_name.sql`` applies everywhere; ``NNNN_name.native.sql`` and
``NNNN_name.timescale.sql`` are the two variants of one step, chosen by whether the
``timescaledb`` extension can be installed on the server.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Literal

import psycopg

from telemon.metrics import METRICS

Backend = Literal["native", "timescaledb"]

_FILE = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<variant>native|timescale))?\.sql$"
)
_LOCK_KEY = 0x7E1E_0001  # advisory lock: one migrator at a time


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class MigrationReport:
    backend: Backend
    applied: tuple[str, ...]
    current_version: int


def detect_backend(conn: psycopg.Connection) -> Backend:
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return "timescaledb" if row else "native"


def load_migrations(backend: Backend) -> list[Migration]:
    variant = "timescale" if backend == "timescaledb" else "native"
    by_version: dict[int, Migration] = {}
    for entry in resources.files("ingest.migrations").iterdir():
        match = _FILE.match(entry.name)
        if not match or match["variant"] not in (None, variant):
            continue
        version = int(match["version"])
        if version in by_version:
            raise MigrationError(f"two migrations share version {version:04d}")
        by_version[version] = Migration(version, match["name"], entry.read_text())
    return [by_version[v] for v in sorted(by_version)]


def migrate(
    conn: psycopg.Connection,
    *,
    retention: timedelta = timedelta(days=3650),
    compress_after: timedelta = timedelta(days=7),
) -> MigrationReport:
    """Bring the schema up to date. Safe to run concurrently and repeatedly."""
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        backend = _stored_backend(conn) or detect_backend(conn)
        applied_before = {
            version: (name, checksum)
            for version, name, checksum in conn.execute(
                "SELECT version, name, checksum FROM schema_migrations"
            )
        }
        applied_now: list[str] = []
        for migration in load_migrations(backend):
            recorded = applied_before.get(migration.version)
            if recorded is not None:
                if recorded[1] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after it "
                        "was applied; add a new migration instead of editing an applied one"
                    )
                continue
            with conn.transaction():
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            applied_now.append(f"{migration.version:04d}_{migration.name}")
        with conn.transaction():
            _sync_metric_catalogue(conn)
            _apply_storage_policies(conn, backend, retention, compress_after)
        current = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        return MigrationReport(backend, tuple(applied_now), current or 0)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _stored_backend(conn: psycopg.Connection) -> Backend | None:
    if conn.execute("SELECT to_regclass('storage_settings')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT backend FROM storage_settings").fetchone()
    return row[0] if row else None


def _sync_metric_catalogue(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO metrics (id, key, loinc, unit) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET key = excluded.key, loinc = excluded.loinc, "
            "unit = excluded.unit",
            [(m.id, m.key, m.loinc, m.unit) for m in METRICS.values()],
        )


def _apply_storage_policies(
    conn: psycopg.Connection, backend: Backend, retention: timedelta, compress_after: timedelta
) -> None:
    conn.execute(
        "INSERT INTO storage_settings (backend, retention, compress_after) VALUES (%s, %s, %s) "
        "ON CONFLICT (singleton) DO UPDATE SET retention = excluded.retention, "
        "compress_after = excluded.compress_after, updated_at = now()",
        (backend, retention, compress_after),
    )
    conn.execute("SELECT telemon_apply_storage_policies(%s, %s)", (retention, compress_after))
