"""Which storage backend the schema uses: native partitions or TimescaleDB, and why.

"The extension is available" is not "TimescaleDB is usable". The library must be in
``shared_preload_libraries`` (otherwise ``CREATE EXTENSION`` fails, or the backend closes the
connection), and the build's licence must allow compression (``timescaledb.license`` =
``timescale``; Apache-only builds such as the ``-oss`` images and distribution packages report
``apache`` and refuse ``timescaledb.compress``). The facts are read from the server by
:func:`read_server_facts`; the decision is the pure function :func:`choose_backend`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import psycopg

from telemon.database import one_row

Backend = Literal["native", "timescaledb"]
BackendSetting = Literal["auto", "native", "timescale"]

# The licence under which TimescaleDB compresses hypertables; 'apache' builds cannot.
# https://www.tigerdata.com/docs/reference/timescaledb/configuration/gucs/ (timescaledb.license)
COMPRESSION_LICENCE = "timescale"


class BackendUnusable(RuntimeError):
    """The backend asked for (or already in use) cannot run on this server."""


@dataclass(frozen=True, slots=True)
class ServerFacts:
    available: bool  # listed in pg_available_extensions
    preloaded: bool  # named in shared_preload_libraries
    licence: str | None  # timescaledb.license as the loaded library reports it; None: unread
    installed_version: str | None  # pg_extension.extversion in this database
    stored: Backend | None  # storage_settings.backend of an existing install
    # pg_available_extensions.default_version: what the server's library would update it to.
    available_version: str | None = None
    # ALTER EXTENSION needs the extension's owner or a superuser; a schema owner that is
    # neither (docs/deployment.md, "Database roles") cannot run the update.
    may_update_extension: bool = True
    # shared_preload_libraries is shown only to superusers and members of pg_read_all_settings.
    settings_readable: bool = True


@dataclass(frozen=True, slots=True)
class BackendChoice:
    backend: Backend
    reason: str


def timescaledb_missing(facts: ServerFacts) -> tuple[str, ...]:
    """What keeps TimescaleDB from being usable here, in words an operator can act on."""
    if not facts.available:
        return ("the timescaledb extension is not on this server (pg_available_extensions)",)
    missing = []
    if not facts.preloaded and not facts.settings_readable:
        missing.append(
            "this role may not read shared_preload_libraries (grant it pg_read_all_settings)"
        )
    elif not facts.preloaded:
        missing.append("timescaledb is not in shared_preload_libraries")
    if facts.preloaded and facts.licence is None:
        missing.append("its licence could not be read (timescaledb.license)")
    elif facts.licence is not None and facts.licence != COMPRESSION_LICENCE:
        missing.append(
            f"timescaledb.license is {facts.licence!r}, compression needs {COMPRESSION_LICENCE!r}"
        )
    return tuple(missing)


def choose_backend(facts: ServerFacts, setting: BackendSetting) -> BackendChoice:
    """The backend for this database, or :class:`BackendUnusable` naming what is missing.

    An existing install keeps the backend it was created with: its observations live in that
    layout, and no setting converts them.
    """
    missing = timescaledb_missing(facts)
    if facts.stored is not None:
        wanted = _SETTING_BACKEND[setting]
        if wanted is not None and wanted != facts.stored:
            raise BackendUnusable(
                f"TELEMON_STORAGE_BACKEND={setting}, but this database already stores its "
                f"observations on {facts.stored}; a setting cannot convert them "
                "(docs/storage.md, 'Choosing the backend')"
            )
        if facts.stored == "timescaledb" and missing:
            raise BackendUnusable(
                "this database stores its observations on TimescaleDB, which is not usable "
                f"on this server: {'; '.join(missing)}"
            )
        return BackendChoice(facts.stored, f"this database was created on {facts.stored}")
    if setting == "native":
        return BackendChoice("native", "TELEMON_STORAGE_BACKEND=native")
    if setting == "timescale":
        if missing:
            raise BackendUnusable(
                "TELEMON_STORAGE_BACKEND=timescale, but TimescaleDB is not usable on this "
                f"server: {'; '.join(missing)}"
            )
        return BackendChoice("timescaledb", "TELEMON_STORAGE_BACKEND=timescale")
    if missing:
        return BackendChoice("native", f"TimescaleDB is not usable: {'; '.join(missing)}")
    return BackendChoice(
        "timescaledb",
        f"TimescaleDB is usable: available, preloaded, licence {COMPRESSION_LICENCE!r}",
    )


_SETTING_BACKEND: dict[BackendSetting, Backend | None] = {
    "auto": None,
    "native": "native",
    "timescale": "timescaledb",
}


def read_server_facts(conn: psycopg.Connection) -> ServerFacts:
    """What the server says about TimescaleDB. ``conn`` must be in autocommit mode.

    The licence is a setting of the loaded library; where the extension is not created yet,
    it is read inside a transaction that creates it and is rolled back, so nothing stays
    behind. That is tried only when the library is preloaded: without it, ``CREATE EXTENSION``
    can end the connection.
    """
    offered = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    available = offered is not None
    # pg_settings leaves out what this role may not read, where current_setting() would raise.
    preload_setting = conn.execute(
        "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'"
    ).fetchone()
    installed = conn.execute(
        "SELECT e.extversion, r.rolsuper OR pg_has_role(e.extowner, 'USAGE') "
        "FROM pg_extension e, pg_roles r WHERE e.extname = 'timescaledb' "
        "AND r.rolname = current_user"
    ).fetchone()
    if preload_setting is not None:
        preloaded = "timescaledb" in _library_names(preload_setting[0])
    else:
        # An extension that is installed and answers was loaded at the server's start.
        preloaded = installed is not None
    licence = None
    if available and preloaded:
        licence = _read_licence(conn, created=installed is not None)
    return ServerFacts(
        available=available,
        preloaded=preloaded,
        licence=licence,
        installed_version=installed[0] if installed else None,
        stored=stored_backend(conn),
        available_version=offered[0] if offered else None,
        may_update_extension=bool(installed[1]) if installed else True,
        settings_readable=preload_setting is not None,
    )


def _library_names(setting: str) -> set[str]:
    return {name.strip().strip('"') for name in setting.split(",") if name.strip()}


_LICENCE = "SELECT current_setting('timescaledb.license', true)"


def _licence(conn: psycopg.Connection) -> str | None:
    licence: str | None = one_row(conn.execute(_LICENCE))[0]
    return licence


def _read_licence(conn: psycopg.Connection, *, created: bool) -> str | None:
    try:
        if created:
            return _licence(conn)
        with conn.transaction(force_rollback=True):
            # Loading the library defines timescaledb.license with the build's value
            # (https://www.tigerdata.com/docs/reference/timescaledb/configuration/gucs/).
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            return _licence(conn)
    except psycopg.Error:
        return None  # reported as "licence could not be read"


def stored_backend(conn: psycopg.Connection) -> Backend | None:
    """The backend ``telemon migrate`` set the observations up with; None before it ran."""
    if one_row(conn.execute("SELECT to_regclass('storage_settings')"))[0] is None:
        return None
    row = conn.execute("SELECT backend FROM storage_settings").fetchone()
    return row[0] if row else None
