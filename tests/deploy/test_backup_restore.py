"""deploy/backup.sh and deploy/restore.sh bring back every row of a populated database.

The database is populated by the real components: the demo's cohort, days of readings and the
real alerts engine's findings, episodes and SMS (tests/engine_made.py), and batches written by
ingest's store, one of them from an unknown gateway (a dead letter). The scripts run exactly as
documented, with PG_EXEC empty so that they use this machine's pg_dump and pg_restore against the
test server; the database is dropped between the two. Native storage only: TimescaleDB does not
run here (the scripts' Timescale steps follow the documented procedure, see deploy/restore.sh).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from bench._fleet_setup import create_database, drop_database
from ingest.inbound import classify
from ingest.store import connect_store
from telemon.config import Settings
from telemon.observation import Observation
from telemon.payload import encode_observations
from telemon.store.migrate import migrate
from telemon.topics import Channel, topic
from tests.engine_made import replay_demo

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)

Snapshot = dict[str, tuple[object, ...]]


@pytest.fixture
def database(postgres_server_url: str) -> Iterator[tuple[str, str]]:
    """A database of this test's own (it is dropped and restored): (name, URL)."""
    name, url = create_database(postgres_server_url, prefix="telemon_backup")
    yield name, url
    drop_database(postgres_server_url, name)


def script_env(server_url: str, name: str) -> dict[str, str]:
    """The scripts' environment for this machine's client programs and the test server."""
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    libpq = {"host": "PGHOST", "port": "PGPORT", "password": "PGPASSWORD"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "TELEMON_"))}
    env |= {variable: str(info[key]) for key, variable in libpq.items() if info.get(key)}
    return env | {"PG_EXEC": "", "TELEMON_DB_NAME": name, "TELEMON_DB_USER": str(info["user"])}


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "deploy" / script), *args], env=env, capture_output=True, text=True
    )


def populate(url: str) -> None:
    made = replay_demo(url, Settings(), now=NOW, days=3, patients=4)
    first = made.cohort.patients[0]
    address = first.devices[0][0]
    readings = [
        Observation(
            gateway_id=first.gateway_code,
            seq=10_000_000 + i,  # beyond the replayed readings' numbers
            device_id=address,
            patient_id=first.code,
            metric="spo2",
            value=88.0 + i % 3,
            unit="%",
            measured_at=NOW - timedelta(minutes=30 - i),
        )
        for i in range(20)
    ]
    stranger = [replace(r, gateway_id="gw-unknown") for r in readings[:3]]
    store = connect_store(url)
    try:
        batch = classify(
            topic(first.gateway_code, Channel.OBS),
            encode_observations(first.gateway_code, readings, sent_at=NOW),
        )
        assert store.write([batch]).stored == 20
        assert store.write([batch]).duplicates == 20  # a redelivery stores nothing twice
        unknown = classify(
            topic("gw-unknown", Channel.OBS), encode_observations("gw-unknown", stranger)
        )
        assert dict(store.write([unknown]).rejected) == {"unknown_gateway": 1}
    finally:
        store.conn.close()


def snapshot(url: str) -> Snapshot:
    """Per table: row count and a hash of its rows in order; per sequence: where it stands."""
    tables: Snapshot = {}
    with psycopg.connect(url) as conn:
        relations = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'm', 'S') "
            "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
            "AND n.nspname NOT LIKE 'pg\\_toast%' ORDER BY 1, 2"
        ).fetchall()
        for schema, name, kind in relations:
            relation = sql.Identifier(schema, name)
            query = (
                sql.SQL("SELECT last_value, is_called FROM {}")
                if kind == "S"
                else sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' "
                    "ORDER BY t::text), '')) FROM {} t"
                )
            )
            tables[f"{schema}.{name}"] = conn.execute(query.format(relation)).fetchone()
    return tables


def clinical_record(url: str) -> list[tuple]:
    """What the engine made, as a person reads it: episodes, their alerts and SMS."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT p.code, e.state, e.opened_at, "
            "(SELECT count(*) FROM alerts a WHERE a.episode_id = e.id), "
            "(SELECT count(*) FROM notifications n WHERE n.episode_id = e.id) "
            "FROM episodes e JOIN patients p ON p.id = e.patient_id ORDER BY e.id"
        ).fetchall()


def test_a_dump_restores_every_row_after_the_database_is_dropped(
    postgres_server_url: str, database: tuple[str, str], tmp_path: Path
) -> None:
    name, url = database
    populate(url)
    before = snapshot(url)
    record = clinical_record(url)
    for table in ("episodes", "alerts", "notifications", "dead_letters"):
        assert before[f"public.{table}"][0] > 0, f"the engine and ingest made no {table}"
    assert record

    env = script_env(postgres_server_url, name)
    dump = tmp_path / "backups" / "telemon.dump"
    backup = run("backup.sh", str(dump), env=env)
    assert backup.returncode == 0, backup.stderr
    assert backup.stdout.strip() == str(dump)
    assert (dump.stat().st_mode & 0o077, Path(f"{dump}.versions").stat().st_mode & 0o077) == (0, 0)
    assert Path(f"{dump}.versions").read_text().splitlines()[1] == "timescaledb="  # native

    drop_database(postgres_server_url, name)
    restore = run("restore.sh", str(dump), env=env)
    assert restore.returncode == 0, restore.stderr

    after = snapshot(url)
    assert after.keys() == before.keys()
    differing = [table for table in before if after[table] != before[table]]
    assert differing == [], f"restored differently: {differing}"
    assert clinical_record(url) == record
    with psycopg.connect(url) as conn:
        assert migrate(conn).applied == ()  # the restored schema is the current one


def test_restore_refuses_a_database_that_exists(
    postgres_server_url: str, database: tuple[str, str], tmp_path: Path
) -> None:
    name, url = database
    env = script_env(postgres_server_url, name)
    dump = tmp_path / "telemon.dump"
    assert run("backup.sh", str(dump), env=env).returncode == 0
    before = snapshot(url)
    refused = run("restore.sh", str(dump), env=env)
    assert refused.returncode == 2
    assert f"database {name} exists" in refused.stderr
    assert snapshot(url) == before


def test_backup_never_overwrites_an_earlier_dump(
    postgres_server_url: str, database: tuple[str, str], tmp_path: Path
) -> None:
    name, _ = database
    dump = tmp_path / "telemon.dump"
    dump.write_bytes(b"yesterday")
    refused = run("backup.sh", str(dump), env=script_env(postgres_server_url, name))
    assert refused.returncode == 2 and "exists" in refused.stderr
    assert dump.read_bytes() == b"yesterday"
