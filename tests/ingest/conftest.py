"""Fixtures for ingest: registered patients and gateways, payload builders, a store."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest

from ingest.service import IngestService
from ingest.store import Store, connect_store
from telemon.config import Settings
from telemon.mqtt import BrokerAddress, connect, new_client
from telemon.observation import Observation
from telemon.payload import encode_observations
from telemon.topics import Channel, topic


@dataclass(frozen=True, slots=True)
class Enrolled:
    """A patient with a gateway paired to them, as registered in the database."""

    patient_code: str
    patient_id: int
    gateway_code: str
    gateway_id: int

    def observations(
        self,
        count: int,
        *,
        first_seq: int = 0,
        start: datetime | None = None,
        metric: str = "spo2",
        value: float = 97.0,
        unit: str = "%",
        device: str = "AA:BB:CC:00:00:01",
    ) -> list[Observation]:
        start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        return [
            Observation(
                gateway_id=self.gateway_code,
                seq=first_seq + i,
                device_id=device,
                patient_id=self.patient_code,
                metric=metric,
                value=value,
                unit=unit,
                measured_at=start + timedelta(seconds=i),
            )
            for i in range(count)
        ]

    def obs_message(self, observations: list[Observation]) -> tuple[str, bytes]:
        return topic(self.gateway_code, Channel.OBS), encode_observations(
            self.gateway_code, observations, sent_at=datetime.now(UTC)
        )

    @property
    def obs_topic(self) -> str:
        return topic(self.gateway_code, Channel.OBS)

    @property
    def status_topic(self) -> str:
        return topic(self.gateway_code, Channel.STATUS)


def unique_code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _enroll(db: psycopg.Connection, *, gateway_code: str | None = None) -> Enrolled:
    gp = db.execute(
        "INSERT INTO staff (username, display_name, role) VALUES (%s, 'Dr Test', 'gp') "
        "ON CONFLICT (username) DO UPDATE SET display_name = excluded.display_name RETURNING id",
        ("dr.test",),
    ).fetchone()[0]
    patient_code = unique_code("P")
    patient_id = db.execute(
        "INSERT INTO patients (code, given_name, family_name, gp_id) "
        "VALUES (%s, 'Maria', 'Bianchi', %s) RETURNING id",
        (patient_code, gp),
    ).fetchone()[0]
    gateway_code = gateway_code or unique_code("gw")
    gateway_id = db.execute(
        "INSERT INTO gateways (code, patient_id) VALUES (%s, %s) RETURNING id",
        (gateway_code, patient_id),
    ).fetchone()[0]
    return Enrolled(patient_code, patient_id, gateway_code, gateway_id)


@pytest.fixture
def enroll(db: psycopg.Connection):
    """Register a patient and a gateway paired with them: ``enroll(gateway_code=None)``."""
    return lambda **kwargs: _enroll(db, **kwargs)


@pytest.fixture
def patient(db: psycopg.Connection) -> Enrolled:
    return _enroll(db)


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


def wait_for(condition, timeout: float = 15.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)


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
    return wait_for
