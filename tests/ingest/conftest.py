"""Fixtures for ingest: registered patients and gateways, payload builders, a store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import psycopg
import pytest

from ingest.service import IngestService
from ingest.store import Store, connect_store
from telemon.config import Settings
from telemon.mqtt import BrokerAddress, connect, new_client
from tests.ingest.support import Enrolled, enroll_patient, unique_code
from tests.waiting import wait_until


@pytest.fixture
def enroll(db: psycopg.Connection):
    """Register a patient and a gateway paired with them: ``enroll(gateway_code=None)``."""
    return lambda **kwargs: enroll_patient(db, **kwargs)


@pytest.fixture
def patient(db: psycopg.Connection) -> Enrolled:
    return enroll_patient(db)


@pytest.fixture
def store(db: psycopg.Connection, database_url: str) -> Iterator[Store]:
    store = connect_store(database_url)
    yield store
    store.conn.close()


# --- broker and service -------------------------------------------------------------------------


def mqtt_client(
    mqtt_url: str, client_id: str | None = None, *, will: tuple[str, bytes] | None = None
) -> mqtt.Client:
    """A connected paho client with its network loop running; ``will`` is a retained QoS 1 will."""
    address = BrokerAddress.parse(mqtt_url)
    client = new_client(address, client_id or unique_code("test"))
    if will:
        client.will_set(*will, qos=1, retain=True)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect(address.host, address.port, clean_start=True)
    client.loop_start()
    assert connected.wait(5), "test client could not connect"
    return client


def publish_all(client: mqtt.Client, messages: list[tuple[str, bytes]], **kwargs) -> None:
    """Publish at QoS 1 and wait until the broker has acknowledged every message."""
    infos = [client.publish(t, p, qos=1, **kwargs) for t, p in messages]
    for info in infos:
        info.wait_for_publish(timeout=10)
        assert info.is_published()


def forget_session(mqtt_url: str, client_id: str) -> None:
    """Remove a persistent session from the broker, so it collects nothing after the test."""
    address = BrokerAddress.parse(mqtt_url)
    client = new_client(address, client_id)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    connect(client, address, clean_start=True, session_expiry_s=0)
    client.loop_start()
    connected.wait(5)
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def ingest_settings(database_url: str, mqtt_url: str) -> Settings:
    # A group of its own: other tests on this broker must not share our deliveries.
    return Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        ingest_batch_size=500,
        ingest_batch_ms=50,
        ingest_shared_group=unique_code("ingest"),
        ingest_metrics_port=0,
    )


@pytest.fixture
def start_ingest(ingest_settings: Settings, mqtt_url: str, db: psycopg.Connection):
    """Start an IngestService (``start_ingest(client_id=None, **settings)``); stopped after."""
    started: list[IngestService] = []

    def start(client_id: str | None = None, **overrides) -> IngestService:
        settings = ingest_settings.model_copy(update=overrides)
        service = IngestService(
            settings, client_id=client_id or unique_code("ingest"), metrics_host="127.0.0.1"
        )
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop(timeout=5)
        forget_session(mqtt_url, service.client_id)


@dataclass
class Broker:
    """Test-side access to the broker; every client made here is disconnected after the test."""

    url: str
    clients: list[mqtt.Client]

    def client(self, client_id: str | None = None, **kwargs) -> mqtt.Client:
        client = mqtt_client(self.url, client_id, **kwargs)
        self.clients.append(client)
        return client

    def publish_all(self, messages: list[tuple[str, bytes]], **kwargs) -> None:
        publish_all(self.clients[0] if self.clients else self.client(), messages, **kwargs)

    def forget_session(self, client_id: str) -> None:
        forget_session(self.url, client_id)


@pytest.fixture
def broker(mqtt_url: str) -> Iterator[Broker]:
    helper = Broker(mqtt_url, [])
    yield helper
    for client in helper.clients:
        client.disconnect()
        client.loop_stop()


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    """tests.waiting.wait_until, as the fixture the ingest tests ask for."""
    return wait_until
