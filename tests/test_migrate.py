"""``telemon migrate``: the storage backend it picks and why, policies applied only when changed,
the server's messages shown, the compression layout keyed like the unique key (issue 16)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from importlib import resources

import psycopg
import pytest
from psycopg import sql
from pydantic import ValidationError

from telemon.config import COMPRESSION_HORIZON_DAYS, Settings
from telemon.metrics import METRICS, panel_of
from telemon.store.backend import (
    BackendChoice,
    ServerFacts,
    choose_backend,
    read_server_facts,
    timescaledb_missing,
)
from telemon.store.migrate import (
    BackendUnusable,
    MigrationError,
    extension_update_due,
    migrate,
    migrate_database,
)
from telemon.store.policies import StoragePolicies, policy_changes
from tests.test_cli import run_cli

USABLE = ServerFacts(
    available=True, preloaded=True, licence="timescale", installed_version=None, stored=None
)
ABSENT = ServerFacts(
    available=False, preloaded=False, licence=None, installed_version=None, stored=None
)
NOT_PRELOADED = ServerFacts(
    available=True, preloaded=False, licence=None, installed_version=None, stored=None
)
APACHE = ServerFacts(
    available=True, preloaded=True, licence="apache", installed_version=None, stored=None
)
UNREADABLE_LICENCE = ServerFacts(
    available=True, preloaded=True, licence=None, installed_version=None, stored=None
)


def stored(facts: ServerFacts, backend: str) -> ServerFacts:
    return ServerFacts(
        facts.available, facts.preloaded, facts.licence, facts.installed_version, backend
    )


# facts, setting -> backend and words its reason contains
CHOICES = [
    (USABLE, "auto", "timescaledb", "TimescaleDB is usable"),
    (ABSENT, "auto", "native", "pg_available_extensions"),
    (NOT_PRELOADED, "auto", "native", "not in shared_preload_libraries"),
    (APACHE, "auto", "native", "timescaledb.license is 'apache'"),
    (UNREADABLE_LICENCE, "auto", "native", "licence could not be read"),
    (USABLE, "native", "native", "TELEMON_STORAGE_BACKEND=native"),
    (ABSENT, "native", "native", "TELEMON_STORAGE_BACKEND=native"),
    (USABLE, "timescale", "timescaledb", "TELEMON_STORAGE_BACKEND=timescale"),
    (stored(USABLE, "native"), "auto", "native", "created on native"),
    (stored(USABLE, "timescaledb"), "auto", "timescaledb", "created on timescaledb"),
    (stored(USABLE, "timescaledb"), "timescale", "timescaledb", "created on timescaledb"),
    (stored(ABSENT, "native"), "native", "native", "created on native"),
]

# facts, setting -> words the refusal contains
REFUSALS = [
    (ABSENT, "timescale", "pg_available_extensions"),
    (NOT_PRELOADED, "timescale", "not in shared_preload_libraries"),
    (APACHE, "timescale", "compression needs 'timescale'"),
    (stored(USABLE, "native"), "timescale", "already stores its observations on native"),
    (stored(USABLE, "timescaledb"), "native", "already stores its observations on timescaledb"),
    (stored(NOT_PRELOADED, "timescaledb"), "auto", "not in shared_preload_libraries"),
]


@pytest.mark.parametrize(("facts", "setting", "backend", "because"), CHOICES)
def test_backend_choice(facts, setting, backend, because):
    choice = choose_backend(facts, setting)
    assert choice.backend == backend
    assert because in choice.reason


@pytest.mark.parametrize(("facts", "setting", "because"), REFUSALS)
def test_backend_refusal_names_what_is_missing(facts, setting, because):
    with pytest.raises(BackendUnusable, match=re.escape(because)):
        choose_backend(facts, setting)


def test_a_server_that_misses_several_things_names_them_all():
    facts = ServerFacts(True, False, "apache", None, None)
    choice = choose_backend(facts, "auto")
    assert choice == BackendChoice(
        "native",
        "TimescaleDB is not usable: timescaledb is not in shared_preload_libraries; "
        "timescaledb.license is 'apache', compression needs 'timescale'",
    )


def test_policy_changes_name_old_and_new_values():
    before = StoragePolicies("native", timedelta(days=3650), timedelta(days=7))
    after = StoragePolicies("native", timedelta(days=3650), timedelta(days=30))
    assert policy_changes(before, after) == ("compress_after: 7 days -> 30 days",)
    assert policy_changes(after, after) == ()
    assert policy_changes(None, after) == (
        "backend: native",
        "retention: 3650 days",
        "compress_after: 30 days",
    )


def test_compression_starts_no_earlier_than_the_outbox_horizon(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    assert Settings().compress_after_days == COMPRESSION_HORIZON_DAYS >= 30
    monkeypatch.setenv("TELEMON_COMPRESS_AFTER_DAYS", "7")
    with pytest.raises(ValidationError, match="below the gateways' outbox horizon of 30 days"):
        Settings()
    monkeypatch.setenv("TELEMON_COMPRESS_AFTER_DAYS", "45")
    assert Settings().compress_after_days == 45


def test_migrate_refuses_compression_before_the_horizon_in_one_line(empty_database):
    env = {"TELEMON_DATABASE_URL": empty_database, "TELEMON_COMPRESS_AFTER_DAYS": "7"}
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    refusal = "TELEMON_COMPRESS_AFTER_DAYS: 7 days is below the gateways' outbox horizon"
    assert refusal in result.stderr
    assert "Traceback" not in result.stderr
    assert _tables(empty_database) == []


def _compression_columns(text: str, option: str) -> list[str]:
    value = re.search(rf"timescaledb\.{option}\s*=\s*'([^']*)'", text)[1]
    return [re.sub(r"\s+(ASC|DESC)\b.*", "", part.strip()) for part in value.split(",")]


def test_compression_layout_covers_the_unique_key():
    """Every key column is segment-by or order-by: a late row checks only matching batches."""
    migrations = resources.files("telemon.store.migrations")
    layout = (migrations / "0011_compression_by_key.timescale.sql").read_text()
    key = re.search(
        r"CONSTRAINT observations_once UNIQUE \(([^)]*)\)",
        (migrations / "0002_observations.timescale.sql").read_text(),
    )[1]
    segment_by = _compression_columns(layout, "compress_segmentby")
    order_by = _compression_columns(layout, "compress_orderby")
    assert segment_by == ["gateway_id"]
    assert order_by == ["measured_at", "seq"]
    assert {c.strip() for c in key.split(",")} <= set(segment_by) | set(order_by)
    # Chunks within the horizon lose the old layout; the horizon is the configured minimum.
    assert f"interval '{COMPRESSION_HORIZON_DAYS} days'" in layout


@pytest.fixture
def empty_database(postgres_server_url: str) -> Iterator[str]:
    """A database of its own, with no schema yet."""
    name = f"telemon_migrate_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(postgres_server_url, dbname=name)
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]


def test_this_server_has_no_usable_timescaledb(empty_database):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        facts = read_server_facts(conn)
    assert (facts.available, facts.preloaded, facts.stored) == (False, False, None)


def test_auto_falls_back_to_native_and_says_why(empty_database):
    report = migrate_database(empty_database)
    assert report.backend == "native"
    assert report.reason.startswith("TimescaleDB is not usable: ")
    assert "pg_available_extensions" in report.reason
    assert report.extension_update is None  # no TimescaleDB to update

    result = run_cli("migrate", env={"TELEMON_DATABASE_URL": empty_database})
    assert result.returncode == 0, result.stderr
    assert "storage backend: native; reason: this database was created on native" in result.stdout


def test_forced_timescale_on_a_server_without_it_is_refused_before_anything_is_applied(
    empty_database,
):
    with pytest.raises(BackendUnusable, match="pg_available_extensions"):
        migrate_database(empty_database, backend_setting="timescale")
    assert _tables(empty_database) == []

    result = run_cli(
        "migrate",
        env={"TELEMON_DATABASE_URL": empty_database, "TELEMON_STORAGE_BACKEND": "timescale"},
    )
    assert result.returncode == 2
    assert "TELEMON_STORAGE_BACKEND=timescale, but TimescaleDB is not usable" in result.stderr
    assert "pg_available_extensions" in result.stderr
    assert "nothing was applied" in result.stderr
    assert "Traceback" not in result.stderr
    assert _tables(empty_database) == []


def _settings_row(url: str):
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT retention, compress_after, updated_at FROM storage_settings"
        ).fetchone()


def test_policies_are_applied_only_when_they_change(empty_database):
    first = migrate_database(empty_database)
    assert first.policy_changes == (
        "backend: native",
        "retention: 3650 days",
        "compress_after: 30 days",
    )
    recorded = _settings_row(empty_database)

    again = migrate_database(empty_database)
    assert again.policy_changes == ()
    assert _settings_row(empty_database) == recorded  # not rewritten, not re-applied

    changed = migrate_database(empty_database, retention=timedelta(days=365))
    assert changed.policy_changes == ("retention: 3650 days -> 365 days",)
    retention, compress_after, updated_at = _settings_row(empty_database)
    assert (retention, compress_after) == (timedelta(days=365), timedelta(days=30))
    assert updated_at > recorded[2]


def test_an_install_compressing_at_7_days_moves_to_the_horizon(empty_database):
    with psycopg.connect(empty_database) as conn:
        migrate(conn, compress_after=timedelta(days=7))  # what the old default recorded
    result = run_cli("migrate", env={"TELEMON_DATABASE_URL": empty_database})
    assert result.returncode == 0, result.stderr
    assert "storage policies: compress_after: 7 days -> 30 days" in result.stdout
    assert _settings_row(empty_database)[1] == timedelta(days=30)


def test_policy_settings_reach_the_migrate_command(empty_database):
    result = run_cli(
        "migrate",
        env={
            "TELEMON_DATABASE_URL": empty_database,
            "TELEMON_OBSERVATION_RETENTION_DAYS": "400",
            "TELEMON_COMPRESS_AFTER_DAYS": "60",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "retention: 400 days" in result.stdout and "compress_after: 60 days" in result.stdout
    assert _settings_row(empty_database)[:2] == (timedelta(days=400), timedelta(days=60))


def test_server_notices_and_warnings_raised_by_a_migration_are_shown(empty_database, tmp_path):
    for entry in resources.files("telemon.store.migrations").iterdir():
        if entry.name.endswith(".sql"):
            shutil.copy(entry, tmp_path / entry.name)
    (tmp_path / "0999_says_something.sql").write_text(
        "DO $$ BEGIN\n"
        "  RAISE NOTICE 'layout of % checked', 'observations';\n"
        "  RAISE WARNING 'unique key not covered by the compression layout';\n"
        "END $$;\n"
    )
    result = run_cli(
        "migrate",
        "--migrations-dir",
        str(tmp_path),
        env={"TELEMON_DATABASE_URL": empty_database},
    )
    assert result.returncode == 0, result.stderr
    assert "applied: 0001_core" in result.stdout and "0999_says_something" in result.stdout
    assert "server NOTICE: layout of observations checked" in result.stdout
    assert "server WARNING: unique key not covered by the compression layout" in result.stdout

    # A run with nothing to apply has nothing from the server to show.
    quiet = run_cli(
        "migrate", "--migrations-dir", str(tmp_path), env={"TELEMON_DATABASE_URL": empty_database}
    )
    assert quiet.returncode == 0, quiet.stderr
    assert "server " not in quiet.stdout


def test_an_edited_applied_migration_is_refused_in_one_line(empty_database):
    migrate_database(empty_database)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 11")
    result = run_cli("migrate", env={"TELEMON_DATABASE_URL": empty_database})
    assert result.returncode == 2
    assert "0011_compression_by_key was changed after it was applied" in result.stderr
    assert "Traceback" not in result.stderr


INSTALLED = dataclasses.replace(USABLE, installed_version="2.28.3", stored="timescaledb")


@pytest.mark.parametrize(
    ("facts", "due"),
    [
        (dataclasses.replace(INSTALLED, available_version="2.28.3"), False),  # up to date
        (dataclasses.replace(INSTALLED, available_version="2.29.0"), True),  # after an image pull
        (dataclasses.replace(USABLE, available_version="2.29.0"), False),  # not created yet
        (dataclasses.replace(ABSENT, installed_version="2.28.3"), False),  # library gone
    ],
)
def test_the_extension_is_updated_only_when_the_server_offers_a_newer_one(facts, due) -> None:
    assert extension_update_due(facts) is due


def test_a_role_that_may_not_update_the_extension_is_told_who_must() -> None:
    """The schema's owner is not the extension's (docs/deployment.md, "Database roles"): after an
    image pull, migrate stops with the one statement a superuser runs, instead of failing inside
    TimescaleDB on a library that no longer matches."""
    facts = dataclasses.replace(INSTALLED, available_version="2.29.0", may_update_extension=False)
    with pytest.raises(MigrationError) as refused:
        extension_update_due(facts)
    message = str(refused.value)
    assert "2.28.3" in message and "2.29.0" in message
    assert "ALTER EXTENSION timescaledb UPDATE" in message and "superuser" in message


def test_the_facts_name_the_servers_extension_version_and_who_may_update_it(db) -> None:
    facts = read_server_facts(db)
    # No TimescaleDB on this server: nothing installed, nothing offered, nothing to update.
    assert facts.available_version is None and facts.installed_version is None
    assert extension_update_due(facts) is False


def test_a_role_that_may_not_read_the_preload_setting_is_told_what_to_grant() -> None:
    hidden = dataclasses.replace(NOT_PRELOADED, settings_readable=False)
    assert timescaledb_missing(hidden) == (
        "this role may not read shared_preload_libraries (grant it pg_read_all_settings)",
    )
    assert choose_backend(hidden, "auto").backend == "native"


def test_0028_widens_the_blood_pressure_restrictions_recorded_before_it(empty_database, tmp_path):
    """Before 0028 a blood-pressure restriction named the systolic and diastolic pressures
    and left the cuff's mean showing; migrating widens each one naming any of the panel's
    values to the whole panel (telemon.metrics.panel_of), and leaves the others as they were."""
    for entry in resources.files("telemon.store.migrations").iterdir():
        if entry.name.endswith(".sql") and int(entry.name[:4]) < 28:
            shutil.copy(entry, tmp_path / entry.name)
    migrate_database(empty_database, source=tmp_path)
    panel = sorted(METRICS[k].id for k in panel_of("systolic") or ())
    systolic, diastolic, spo2 = (METRICS[k].id for k in ("systolic", "diastolic", "spo2"))
    recorded = {
        # kind, protocol, category, metric ids as recorded before 0028
        "category": ("metric_category", None, "blood_pressure", [systolic, diastolic]),
        "protocol": ("protocol", "hypertension", None, [spo2, diastolic]),
        "other": ("metric_category", None, "spo2", [spo2]),
    }
    with psycopg.connect(empty_database) as conn:
        gp = conn.execute(
            "INSERT INTO staff (username, display_name, role, password_hash) "
            "VALUES ('dr.test', 'Dr Test', 'gp', 'x') RETURNING id"
        ).fetchone()[0]
        patient = conn.execute(
            "INSERT INTO patients (code, given_name, family_name, gp_id) "
            "VALUES ('P-1', 'A', 'B', %s) RETURNING id",
            (gp,),
        ).fetchone()[0]
        ids = {
            key: conn.execute(
                "INSERT INTO patient_restrictions (patient_id, kind, protocol, category, "
                "metric_ids, requested_on, recorded_by) "
                "VALUES (%s, %s, %s, %s, %s, current_date, %s) RETURNING id",
                (patient, kind, protocol, category, metric_ids, gp),
            ).fetchone()[0]
            for key, (kind, protocol, category, metric_ids) in recorded.items()
        }
    migrate_database(empty_database)
    with psycopg.connect(empty_database) as conn:
        widened = {
            key: conn.execute(
                "SELECT metric_ids FROM patient_restrictions WHERE id = %s", (ids[key],)
            ).fetchone()[0]
            for key in ids
        }
    assert widened == {
        "category": panel,
        "protocol": sorted({spo2, *panel}),
        "other": [spo2],
    }
