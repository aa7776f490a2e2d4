"""Schema migrations: ordered SQL files, applied once each, recorded in ``schema_migrations``.

A file named ``NNNN_name.sql`` applies everywhere; ``NNNN_name.native.sql`` and
``NNNN_name.timescale.sql`` are the two variants of one step, chosen by the storage backend
(``telemon/store/backend.py``: a usable TimescaleDB, or native partitions).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import psycopg

from telemon.database import connect, one_row
from telemon.metrics import METRICS
from telemon.store.backend import (
    Backend,
    BackendChoice,
    BackendSetting,
    BackendUnusable,
    ServerFacts,
    choose_backend,
    read_server_facts,
    timescaledb_missing,
)
from telemon.store.policies import (
    DEFAULT_COMPRESS_AFTER,
    DEFAULT_RETENTION,
    StoragePolicies,
    apply_storage_policies,
)

__all__ = [
    "PACKAGED_MIGRATIONS",
    "BackendUnusable",
    "MigrationError",
    "MigrationReport",
    "migrate",
    "migrate_database",
]

_FILE = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<variant>native|timescale))?\.sql$"
)
_LOCK_KEY = 0x7E1E_0001  # advisory lock: one migrator at a time
PACKAGED_MIGRATIONS = resources.files("telemon.store.migrations")


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
class ServerMessage:
    """A NOTICE or WARNING the server raised while migrating (e.g. TimescaleDB's advice)."""

    severity: str
    text: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.text}"


@dataclass(frozen=True, slots=True)
class ExtensionUpdate:
    old_version: str
    new_version: str
    server_messages: tuple[ServerMessage, ...] = ()

    @property
    def changed(self) -> bool:
        return self.old_version != self.new_version


@dataclass(frozen=True, slots=True)
class MigrationReport:
    backend: Backend
    reason: str  # why this backend
    applied: tuple[str, ...]
    current_version: int
    policy_changes: tuple[str, ...]  # "compress_after: 7 days -> 30 days"; empty: unchanged
    server_messages: tuple[ServerMessage, ...]
    extension_update: ExtensionUpdate | None = None


def detect_backend(conn: psycopg.Connection) -> Backend:
    """The backend ``auto`` picks on this server (ignoring what a database already uses)."""
    facts = read_server_facts(conn)
    return choose_backend(replace(facts, stored=None), "auto").backend


def load_migrations(
    backend: Backend, source: Traversable | Path = PACKAGED_MIGRATIONS
) -> list[Migration]:
    """The migrations of ``backend``, in order, from the package (or ``source``, a directory)."""
    variant = "timescale" if backend == "timescaledb" else "native"
    by_version: dict[int, Migration] = {}
    for entry in source.iterdir():
        match = _FILE.match(entry.name)
        if not match or match["variant"] not in (None, variant):
            continue
        version = int(match["version"])
        if version in by_version:
            raise MigrationError(f"two migrations share version {version:04d}")
        by_version[version] = Migration(version, match["name"], entry.read_text())
    return [by_version[v] for v in sorted(by_version)]


def migrate_database(
    database_url: str,
    *,
    retention: timedelta = DEFAULT_RETENTION,
    compress_after: timedelta = DEFAULT_COMPRESS_AFTER,
    backend_setting: BackendSetting = "auto",
    source: Traversable | Path = PACKAGED_MIGRATIONS,
) -> MigrationReport:
    """:func:`migrate` on ``database_url``, after updating the TimescaleDB extension if need be.

    ``ALTER EXTENSION timescaledb UPDATE`` must be the first command of its session: any
    earlier statement loads the old version's library into the session
    (https://www.tigerdata.com/docs/use-timescale/latest/troubleshoot-timescaledb). So the
    facts are read on one connection, the update runs on a fresh one dedicated to it, and the
    migrations on a third, opened after the update.
    """
    with connect(database_url, autocommit=True) as conn:
        facts = read_server_facts(conn)
    _choose(facts, backend_setting)  # refuses an unusable backend before anything runs
    update = None
    if extension_update_due(facts):
        update = _update_extension(database_url, facts.installed_version or "")
    with connect(database_url) as conn:
        report = migrate(
            conn,
            retention=retention,
            compress_after=compress_after,
            backend_setting=backend_setting,
            source=source,
        )
    if update is None:
        return report
    return replace(
        report,
        extension_update=update,
        server_messages=update.server_messages + report.server_messages,
    )


def extension_update_due(facts: ServerFacts) -> bool:
    """Whether the TimescaleDB extension of this database is older than the server's library.

    Raises :class:`MigrationError` when it is and the migrating role may not update it: only
    the extension's owner or a superuser may (https://www.postgresql.org/docs/16/sql-alterextension.html),
    and until someone does, TimescaleDB refuses to work with the mismatched library."""
    if facts.installed_version is None or timescaledb_missing(facts):
        return False
    if facts.available_version in (None, facts.installed_version):
        return False
    if not facts.may_update_extension:
        raise MigrationError(
            f"the timescaledb extension is at {facts.installed_version} and the server offers "
            f"{facts.available_version}; this role may not update it. Run once as the "
            "database's superuser, in a fresh session: ALTER EXTENSION timescaledb UPDATE; "
            'then migrate again (docs/deployment.md, "Image versions")'
        )
    return True


def _update_extension(database_url: str, old_version: str) -> ExtensionUpdate:
    with connect(database_url, autocommit=True) as conn, _server_messages(conn) as messages:
        # The session's first statement: see migrate_database(). (A notice handler is
        # client-side: adding it sends nothing.)
        conn.execute("ALTER EXTENSION timescaledb UPDATE")
        new_version = one_row(
            conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        )[0]
    return ExtensionUpdate(old_version, new_version, tuple(messages))


def migrate(
    conn: psycopg.Connection,
    *,
    retention: timedelta = DEFAULT_RETENTION,
    compress_after: timedelta = DEFAULT_COMPRESS_AFTER,
    backend_setting: BackendSetting = "auto",
    source: Traversable | Path = PACKAGED_MIGRATIONS,
) -> MigrationReport:
    """Bring the schema up to date. Safe to run concurrently and repeatedly.

    Raises :class:`BackendUnusable` before applying anything when the backend asked for (or
    the one this database already uses) cannot run on this server.
    """
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        # Read before listening: the licence probe's rolled-back CREATE EXTENSION raises
        # notices of its own that say nothing about this migration.
        choice = _choose(read_server_facts(conn), backend_setting)
        with _server_messages(conn) as messages:
            policies = StoragePolicies(choice.backend, retention, compress_after)
            return _apply(conn, choice, source, policies, messages)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _choose(facts: ServerFacts, setting: BackendSetting) -> BackendChoice:
    try:
        return choose_backend(facts, setting)
    except BackendUnusable as exc:
        raise BackendUnusable(f"{exc}; nothing was applied") from None


def _apply(
    conn: psycopg.Connection,
    choice: BackendChoice,
    source: Traversable | Path,
    policies: StoragePolicies,
    messages: list[ServerMessage],
) -> MigrationReport:
    """Apply the pending migrations and the storage policies (under migrate's lock)."""
    if one_row(conn.execute("SELECT to_regclass('schema_migrations')"))[0] is None:
        conn.execute(
            "CREATE TABLE schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    applied_before = {
        version: (name, checksum)
        for version, name, checksum in conn.execute(
            "SELECT version, name, checksum FROM schema_migrations"
        )
    }
    applied_now: list[str] = []
    for migration in load_migrations(choice.backend, source):
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
        changes = apply_storage_policies(conn, policies)
    current = one_row(conn.execute("SELECT max(version) FROM schema_migrations"))[0]
    return MigrationReport(
        backend=choice.backend,
        reason=choice.reason,
        applied=tuple(applied_now),
        current_version=current or 0,
        policy_changes=changes,
        server_messages=tuple(messages),
    )


@contextlib.contextmanager
def _server_messages(conn: psycopg.Connection) -> Iterator[list[ServerMessage]]:
    """The NOTICEs and WARNINGs the server sends on ``conn`` while in the block."""
    messages: list[ServerMessage] = []

    def keep(diagnostic: psycopg.errors.Diagnostic) -> None:
        messages.append(
            ServerMessage(diagnostic.severity or "NOTICE", diagnostic.message_primary or "")
        )

    conn.add_notice_handler(keep)
    try:
        yield messages
    finally:
        conn.remove_notice_handler(keep)


def _sync_metric_catalogue(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO metrics (id, key, loinc, unit) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET key = excluded.key, loinc = excluded.loinc, "
            "unit = excluded.unit",
            [(m.id, m.key, m.loinc, m.unit) for m in METRICS.values()],
        )
