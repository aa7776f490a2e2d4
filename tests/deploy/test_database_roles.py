"""deploy/postgres/10-roles.sh on a real server: the owner that is no superuser migrates, the
service user works through telemon_app and can change no schema.

The script runs as the database image runs it on first start (psql as the superuser into
POSTGRES_DB), here over TCP to the test server. Roles are cluster-wide: the test names its own
and drops them after, with its database.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import errors, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from console.embedded import EmbeddedPostgres
from telemon.store.migrate import migrate

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "postgres" / "10-roles.sh"


def _psql() -> str:
    found = shutil.which("psql") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True)), None
    )
    if found is None:
        pytest.fail("psql is missing: apt-get install postgresql-client")
    return found


@dataclass(frozen=True)
class Server:
    admin_url: str
    database: str
    owner: str
    app_user: str

    def url(self, user: str) -> str:
        return make_conninfo(self.admin_url, dbname=self.database, user=user)

    def run_script(self, tmp_path: Path) -> subprocess.CompletedProcess[str]:
        params = conninfo_to_dict(self.admin_url)
        owner_secret = tmp_path / "owner_password"
        owner_secret.write_text("owner secret\n")
        env = {
            "PATH": f"{Path(_psql()).parent}:{os.environ['PATH']}",
            "PGHOST": str(params.get("host", "127.0.0.1")),
            "PGPORT": str(params.get("port", 5432)),
            "POSTGRES_USER": str(params.get("user", "postgres")),
            "POSTGRES_DB": self.database,
            "TELEMON_DB_OWNER": self.owner,
            "TELEMON_DB_APP_USER": self.app_user,
            "TELEMON_DB_OWNER_PASSWORD_FILE": str(owner_secret),  # a Docker secret
            "TELEMON_DB_APP_PASSWORD": "app secret",
        }
        return subprocess.run(
            ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
        )


@pytest.fixture
def server(postgres_server_url: str) -> Iterator[Server]:
    tag = uuid.uuid4().hex[:12]
    server = Server(
        postgres_server_url,
        f"telemon_roles_{tag}",
        f"telemon_test_owner_{tag}",
        f"telemon_test_svc_{tag}",
    )
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(server.database)))
    try:
        yield server
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(server.database)
                )
            )
            for role in (server.owner, server.app_user):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_the_owner_migrates_and_the_service_user_only_uses_the_schema(
    server: Server, tmp_path: Path
) -> None:
    first = server.run_script(tmp_path)
    assert first.returncode == 0, first.stderr
    again = server.run_script(tmp_path)  # on a server made before the script, or to rotate
    assert again.returncode == 0, again.stderr

    with psycopg.connect(server.url(server.owner), autocommit=True) as owner:
        assert owner.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone() == (False,)
        report = migrate(owner)  # as no superuser, without CREATEROLE
        assert report.backend == "native"
        owners = owner.execute(
            "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'S')"
        ).fetchall()
        assert owners == [(server.owner,)]

    with psycopg.connect(server.url(server.app_user), autocommit=True) as app:
        assert app.execute(
            "SELECT rolsuper, pg_has_role(current_user, 'telemon_app', 'USAGE') FROM pg_roles "
            "WHERE rolname = current_user"
        ).fetchone() == (False, True)
        app.execute(
            "INSERT INTO staff (username, display_name, role) VALUES ('dr.roles', 'Dr R', 'gp')"
        )
        # Partitions are made and dropped for it by the owner's functions, not as a superuser.
        week = datetime(2030, 1, 7, tzinfo=UTC)
        assert app.execute(
            "SELECT telemon_ensure_observation_partitions(%s, %s)", (week, week)
        ).fetchone() == (1,)
        assert app.execute(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'observations_20300107'"
        ).fetchone() == (server.owner,)
        assert app.execute("SELECT telemon_apply_observation_retention()").fetchone() == (0,)
        for statement in (
            "DROP TABLE staff",
            "ALTER TABLE staff ADD COLUMN nickname text",
            "CREATE TABLE public.intruder (id int)",
            "DELETE FROM audit_log",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                app.execute(statement)


def test_a_missing_password_is_refused_with_its_name() -> None:
    env = {"PATH": os.environ["PATH"], "TELEMON_DB_APP_PASSWORD": "app secret"}
    refused = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 2
    assert "set TELEMON_DB_OWNER_PASSWORD or TELEMON_DB_OWNER_PASSWORD_FILE" in refused.stderr


def test_compose_runs_migrate_as_the_owner_and_the_services_as_the_service_user() -> None:
    yaml = pytest.importorskip("yaml")  # PyYAML comes with amqtt, a project dependency
    compose = yaml.safe_load((SCRIPT.parents[2] / "compose.yaml").read_text())
    services = compose["services"]
    assert (
        "./deploy/postgres/10-roles.sh:/docker-entrypoint-initdb.d/10-roles.sh:ro"
        in (services["db"]["volumes"])
    )
    for name in ("TELEMON_DB_OWNER_PASSWORD", "TELEMON_DB_APP_PASSWORD"):
        assert name in services["db"]["environment"]
    owner = "postgresql://${TELEMON_DB_OWNER:-telemon_owner}:"
    app = "postgresql://${TELEMON_DB_APP_USER:-telemon_service}:"
    assert services["migrate"]["environment"]["TELEMON_DATABASE_URL"].startswith(owner)
    for name in ("ingest", "alerts", "dashboard"):
        assert services[name]["environment"]["TELEMON_DATABASE_URL"].startswith(app), name


def test_a_migrating_role_that_cannot_create_telemon_app_is_told_what_to_do(
    tmp_path: Path,
) -> None:
    # A server of its own: telemon_app exists on the shared one, and roles are cluster-wide.
    server = EmbeddedPostgres(tmp_path / "pg", database="postgres")
    admin_url = server.start()
    try:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("CREATE ROLE owner_without_createrole LOGIN")
            admin.execute("CREATE DATABASE telemon OWNER owner_without_createrole")
        owner_url = make_conninfo(admin_url, dbname="telemon", user="owner_without_createrole")
        with psycopg.connect(owner_url) as owner:
            with pytest.raises(errors.RaiseException) as refused:
                migrate(owner)
            assert "the role telemon_app does not exist" in str(refused.value)
            assert "CREATE ROLE telemon_app NOLOGIN" in (refused.value.diag.message_hint or "")
            # Nothing of 0012 stays half done; the migrations before it are kept.
            applied = owner.execute("SELECT array_agg(version) FROM schema_migrations").fetchone()
            assert 12 not in applied[0] and 1 in applied[0]
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("CREATE ROLE telemon_app NOLOGIN")  # the documented pre-step
        with psycopg.connect(owner_url) as owner:
            assert migrate(owner).current_version >= 12
    finally:
        server.stop()
