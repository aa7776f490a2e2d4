"""The test rig: a real PostgreSQL and a real MQTT broker for every test session.

Each is taken from an environment variable (defaults: the local servers of the development
machine); when none is reachable, the rig starts an embedded one. Tests never skip for want of
a server.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from bumble.link import LocalLink
from psycopg import sql

from bench._fleet_setup import create_database, drop_database
from console.embedded import EmbeddedBroker, EmbeddedPostgres
from firmware_sim.ble import radio
from telemon.database import DatabaseUnavailable, connect
from telemon.mqtt import BrokerAddress, BrokerUnavailable, probe
from tests.database import truncate_data

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An administrative URL of a running PostgreSQL server."""
    url = os.environ.get("TELEMON_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        connect(url, timeout=2).close()
    except DatabaseUnavailable:
        server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data", database="postgres")
        yield server.start()
        server.stop()
        return
    yield url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this test session, with the schema applied."""
    name, url = create_database(postgres_server_url, prefix="telemon_test")
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture
def app_url(postgres_server_url: str, database_url: str) -> Iterator[str]:
    """The session database's URL as a fresh login member of telemon_app (trust auth locally):
    what the services connect as, with its grants and no more."""
    role = f"telemon_test_app_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE telemon_app").format(sql.Identifier(role))
        )
    try:
        yield psycopg.conninfo.make_conninfo(database_url, user=role)
    finally:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def app_conn(app_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(app_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session database, emptied of test data before the test."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        truncate_data(conn)
        yield conn


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    """The URL of a running MQTT broker."""
    url = os.environ.get("TELEMON_TEST_MQTT_URL", DEFAULT_MQTT_URL)
    try:
        probe(BrokerAddress.parse(url), timeout=2)
    except BrokerUnavailable:
        # Open like a development machine's local Mosquitto: tests act as any gateway or service.
        # The demo's broker requires logins (tests/test_embedded_broker.py).
        broker = EmbeddedBroker(allow_anonymous=True)
        yield broker.start()
        broker.stop()
        return
    yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "telemon-data"
    path.mkdir()
    return path


@pytest_asyncio.fixture(loop_scope="function")
async def link() -> AsyncIterator[LocalLink]:
    """A bumble radio link between simulated devices and the gateway's central, which is also
    the default radio for code that opens a central of its own. Ask for it before any fixture
    that starts devices: torn down after them, the central stays up while they stop."""
    link = LocalLink()
    radio.set_default_radio(link)
    try:
        yield link
    finally:
        await radio.close_central(link)
        radio.set_default_radio(None)
    # A clean shutdown leaves nothing running behind: no bumble task outlives its devices.
    await asyncio.sleep(0)
    leftovers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    assert not leftovers, leftovers
