"""The ingest worker's own MQTT connection over MQTT 3.1.1: Mosquitto and the demo's broker.

Mosquitto over MQTT 5 is covered by the service's tests (test_service.py, test_exactly_once.py);
here the other protocol, acknowledgement at the protocol level (what is acked is gone from the
session, what is not comes back on the next connection), and the embedded broker's logins.
"""

from __future__ import annotations

import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.embedded import EmbeddedBroker
from ingest.inbound import UnusableMessage
from ingest.inbox import Delivery, Inbox
from ingest.subscriber import Subscriber
from telemon.mqtt import BrokerAddress, connect, new_client
from telemon.payload import RejectReason
from tests.brokers import MosquittoProcess
from tests.mqtt_clients import BrokerLogins, connected, marker, obs


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(logins={u: secrets.token_urlsafe(16) for u in ("ingest", "gw-0001")})
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _subscriber(url: str, client_id: str, ca_file: Path | None = None) -> tuple[Subscriber, Inbox]:
    inbox = Inbox(capacity=1000)
    subscriber = Subscriber(
        BrokerAddress.parse(url), client_id, inbox, shared_group=None, ca_file=ca_file
    )
    return subscriber, inbox


def _take(subscriber: Subscriber, inbox: Inbox, count: int, topic: str) -> list[Delivery]:
    """The first ``count`` deliveries on ``topic``. Others (statuses retained by other tests on a
    shared broker) are acknowledged at once: over 3.1.1 Mosquitto has only 20 in flight."""
    deadline = time.monotonic() + 10
    taken: list[Delivery] = []
    while len(taken) < count and time.monotonic() < deadline:
        batch = inbox.take_batch(count - len(taken), 0.05, idle_wait=0.2)
        ours = [
            d for d in batch if isinstance(d.message, UnusableMessage) and d.message.topic == topic
        ]
        subscriber.ack([d for d in batch if d not in ours])
        taken += ours
    return taken


def _payloads(deliveries: list[Delivery]) -> list[bytes]:
    return [d.message.payload for d in deliveries if isinstance(d.message, UnusableMessage)]


def test_unacknowledged_messages_come_back_and_acknowledged_ones_do_not(mqtt_url: str) -> None:
    """(The embedded broker does not resend a session's unacknowledged messages at all.)"""
    address = BrokerAddress.parse(mqtt_url)
    url = f"{mqtt_url}?protocol=3.1.1"
    client_id = f"ingest-{secrets.token_hex(4)}"
    gateway = f"gw-{secrets.token_hex(4)}"
    first, inbox = _subscriber(url, client_id)
    first.start()
    sent = [marker("one"), marker("two"), marker("three")]
    with connected(BrokerLogins(address.port, {gateway: ""}), gateway) as gw:
        for payload in sent:
            gw.publish(obs(gateway), payload)
    deliveries = _take(first, inbox, 3, obs(gateway))
    assert _payloads(deliveries) == sent
    assert [d.qos for d in deliveries] == [1, 1, 1]
    assert first.ack(deliveries[:1]) == 1
    time.sleep(0.3)  # the network thread writes the PUBACK
    first.stop()
    assert not first.is_connected
    assert first.ack(deliveries[1:]) == 0  # no connection: nothing to acknowledge on

    again, inbox = _subscriber(url, client_id)
    again.start()
    try:
        redelivered = _take(again, inbox, 2, obs(gateway))
        assert _payloads(redelivered) == sent[1:]
        assert again.ack(redelivered) == 2
    finally:
        again.stop()


def test_a_login_on_the_embedded_broker_and_bad_payloads_dead_lettered(
    embedded: EmbeddedBroker,
) -> None:
    subscriber, inbox = _subscriber(embedded.url_for("ingest"), "ingest-embedded")
    subscriber.start()
    try:
        with connected(BrokerLogins(embedded.port, embedded.logins), "gw-0001") as gw:
            gw.publish(obs("gw-0001"), b"not json")
        (delivery,) = _take(subscriber, inbox, 1, obs("gw-0001"))
        assert isinstance(delivery.message, UnusableMessage)
        assert delivery.message.error.reason == RejectReason.MALFORMED_JSON
        assert subscriber.ack([delivery]) == 1
    finally:
        subscriber.stop()


def test_a_wrong_password_is_reported_as_the_brokers_refusal(embedded: EmbeddedBroker) -> None:
    url = embedded.url_for("ingest").replace(embedded.logins["ingest"], "wrong")
    subscriber, _ = _subscriber(url, "ingest-wrong")
    with pytest.raises(TimeoutError, match="refused the connection"):
        subscriber.start(timeout=2)
    assert not subscriber.is_connected


def test_over_tls_every_message_arrives_and_is_acknowledged(tmp_path: Path) -> None:
    """TLS with a CA file, as production brokers listen on 8883; many PUBLISHes per TLS record
    (the socket's pending bytes, which ``select`` cannot see)."""
    cert, key = tmp_path / "broker.crt", tmp_path / "broker.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    broker = MosquittoProcess(tmp_path / "broker")
    broker.config.write_text(
        broker.config.read_text() + f"cafile {cert}\ncertfile {cert}\nkeyfile {key}\n"
    )
    broker.start()
    url = f"mqtts://127.0.0.1:{broker.port}"
    subscriber, inbox = _subscriber(url, "ingest-tls", ca_file=cert)
    publisher = new_client(BrokerAddress.parse(url), "gw-tls", ca_file=cert)
    try:
        subscriber.start()
        connect(publisher, BrokerAddress.parse(url), clean_start=True)
        publisher.loop_start()
        sent = [marker(f"tls-{i}") for i in range(200)]
        for info in [publisher.publish(obs("gw-tls"), payload, qos=1) for payload in sent]:
            info.wait_for_publish(10)
        deliveries = _take(subscriber, inbox, len(sent), obs("gw-tls"))
        assert _payloads(deliveries) == sent
        assert subscriber.ack(deliveries) == len(sent)
        assert subscriber.is_connected
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        subscriber.stop()
        broker.stop()


def test_a_malformed_packet_costs_a_reconnection_not_the_network_thread() -> None:
    """A broker of bytes: CONNACK, SUBACK, then a PUBLISH at QoS 3 (no such thing) on the first
    connection; the same then a good PUBLISH on the second."""
    publish = bytes.fromhex("320a0003612f620007007b7d")  # QoS 1, mid 7, "{}"
    replies = [bytes.fromhex("3605000161620000"), publish]  # QoS 3; then a good one
    connections: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        for reply in replies:
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)  # CONNECT
                conn.sendall(bytes.fromhex("2006000003220001"))  # CONNACK, properties
                conn.recv(1024)  # SUBSCRIBE
                conn.sendall(bytes.fromhex("90050001000101") + reply)
                connections.append(conn.recv(1024))  # what came back: a PUBACK, or b"" (closed)

    broker = threading.Thread(target=serve, daemon=True)
    broker.start()
    subscriber, inbox = _subscriber(f"mqtt://127.0.0.1:{server.getsockname()[1]}", "ingest-bytes")
    subscriber.start()
    try:
        (delivery,) = _take(subscriber, inbox, 1, "a/b")
        assert (delivery.mid, delivery.generation, subscriber.generation) == (7, 2, 2)
        assert subscriber.ack([delivery]) == 1
        broker.join(10)
        assert connections == [b"", bytes.fromhex("40020007")]
    finally:
        subscriber.stop()
        server.close()
