"""The demo's embedded broker requires a login and enforces the ACL of telemon/acl.py.

Issue 15 found it open: an anonymous client subscribed to '#', forged readings, marked a gateway
offline and published a config. These tests replay that against the broker as the demo starts
it (EmbeddedBroker with logins), with the users of the shipped Mosquitto configuration, and the
ways around amqtt's own checks that console/embedded_mqtt.py closes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from console.embedded import EmbeddedBroker
from telemon.mqtt import BrokerAddress
from tests.mqtt_clients import (
    BrokerLogins,
    Client,
    config,
    connected,
    devices,
    marker,
    obs,
    status,
)

USERS = ("ingest", "server", "gw-0001", "gw-0002")


@pytest.fixture(scope="module")
def broker() -> Iterator[BrokerLogins]:
    embedded = EmbeddedBroker(logins={user: secrets.token_urlsafe(16) for user in USERS})
    embedded.start()
    try:
        yield BrokerLogins(embedded.port, embedded.logins)
    finally:
        embedded.stop()


def test_the_embedded_broker_is_open_only_when_asked() -> None:
    with pytest.raises(ValueError, match="needs logins"):
        EmbeddedBroker()


def test_url_for_a_user_carries_its_login() -> None:
    embedded = EmbeddedBroker(logins={"gw-0001": "pw/with:odd@chars"})
    address = BrokerAddress.parse(embedded.url_for("gw-0001"))
    assert (address.username, address.password) == ("gw-0001", "pw/with:odd@chars")
    assert address.protocol == "3.1.1" and "@" not in embedded.url


def test_anonymous_unknown_user_and_wrong_password_are_refused(broker: BrokerLogins) -> None:
    for username, password in [
        (None, None),
        ("gw-0001", None),
        ("gw-0001", "not-the-password"),
        ("gw-0001", broker.passwords["gw-0002"]),
        ("gw-9999", broker.passwords["gw-0001"]),
    ]:
        client = Client(broker, username, password)
        assert client.connack.getName() == "Not authorized", (username, client.connack)


def test_gateway_cannot_publish_as_another_gateway(broker: BrokerLogins) -> None:
    with (
        connected(broker, "ingest") as ingest,
        connected(broker, "gw-0002", client_id="gw-0002") as victim,
        connected(broker, "gw-0001") as gateway,
    ):
        for topic in (obs("+"), status("+"), devices("+")):
            assert not ingest.subscribe(topic)[0].is_failure
        assert not victim.subscribe(config("gw-0002"))[0].is_failure
        # The forged SpO2, the forged 'offline', a forged inventory and a forged config.
        for topic in (obs("gw-0002"), status("gw-0002"), devices("gw-0002"), config("gw-0002")):
            gateway.publish(topic, b"forged by gw-0001", retain=topic != obs("gw-0002"))
        sentinel = marker("gw-0001-own")
        gateway.publish(obs("gw-0001"), sentinel)
        assert ingest.receive_until(sentinel) == [(obs("gw-0001"), sentinel)]
        config_sentinel = marker("config-gw-0002")
        with connected(broker, "server") as server:
            server.publish(config("gw-0002"), config_sentinel, retain=True)
        assert victim.receive_until(config_sentinel) == [(config("gw-0002"), config_sentinel)]
        with connected(broker, "server") as server:
            server.publish(config("gw-0002"), b"", retain=True)  # clear the retained config


def test_gateway_cannot_subscribe_to_everything_nor_read_another_gateway(
    broker: BrokerLogins,
) -> None:
    with connected(broker, "server") as server, connected(broker, "gw-0002") as other:
        other.subscribe(config("gw-0002"))
        # A retained config for gw-0002 exists before gw-0001 connects: amqtt would hand it to
        # every newcomer, since another client is subscribed to it.
        server.publish(config("gw-0002"), b"secret config of gw-0002", retain=True)
        with connected(broker, "gw-0001") as gateway:
            for forbidden in [
                "#",
                "telemon/#",
                "telemon/v1/gw/+/config",
                config("gw-0002"),
                "telemon/v1/gw/+/obs",
                obs("gw-0001"),
                "$share/ingest/telemon/v1/gw/+/obs",
            ]:
                assert gateway.subscribe(forbidden)[0].is_failure, forbidden
            assert not gateway.subscribe(config("gw-0001"))[0].is_failure
            server.publish(config("gw-0002"), b"live config of gw-0002")
            other.publish(obs("gw-0002"), b"observations of gw-0002")
            other.publish(status("gw-0002"), b"status of gw-0002")
            sentinel = marker("config-gw-0001")
            server.publish(config("gw-0001"), sentinel)
            received = gateway.receive_until(sentinel)
        assert received == [(config("gw-0001"), sentinel)]
        for topic in (config("gw-0001"), config("gw-0002"), status("gw-0002")):
            server.publish(topic, b"", retain=True)  # server may not clear status: no-op


def test_only_the_server_may_publish_a_config(broker: BrokerLogins) -> None:
    with (
        connected(broker, "gw-0001") as gateway,
        connected(broker, "ingest") as ingest,
        connected(broker, "server") as server,
    ):
        gateway.subscribe(config("gw-0001"))
        forged = b'{"v":1,"gateway_id":"gw-0001","revision":1000000000000000,"devices":[]}'
        gateway.publish(config("gw-0001"), forged, retain=True)
        ingest.publish(config("gw-0001"), forged, retain=True)
        sentinel = marker("server-config")
        server.publish(config("gw-0001"), sentinel)
        assert gateway.receive_until(sentinel) == [(config("gw-0001"), sentinel)]
    # Nothing forged was retained either: a gateway (re)connecting gets no config at all.
    with connected(broker, "gw-0001") as gateway, connected(broker, "server") as server:
        gateway.subscribe(config("gw-0001"))
        sentinel = marker("after-reconnect")
        server.publish(config("gw-0001"), sentinel)
        assert gateway.receive_until(sentinel) == [(config("gw-0001"), sentinel)]


def test_ingest_reads_what_every_gateway_sends(broker: BrokerLogins) -> None:
    with (
        connected(broker, "ingest") as ingest,
        connected(broker, "gw-0001") as one,
        connected(broker, "gw-0002") as two,
    ):
        for topic in (obs("+"), status("+"), devices("+")):
            assert not ingest.subscribe(topic)[0].is_failure
        sent = []
        for gateway, gw in ((one, "gw-0001"), (two, "gw-0002")):
            for topic in (obs(gw), status(gw), devices(gw)):
                payload = marker(topic)
                gateway.publish(topic, payload)
                sent.append((topic, payload))
        assert ingest.receive_until(sent[-1][1]) == sent


def test_a_will_on_another_gateways_topic_refuses_the_connection(broker: BrokerLogins) -> None:
    """amqtt publishes a last will unchecked: a gateway could mark another one offline."""
    forged_will = Client(
        broker,
        "gw-0001",
        broker.passwords["gw-0001"],
        will=(status("gw-0002"), b'{"v":1,"gateway_id":"gw-0002","state":"offline"}'),
    )
    assert forged_will.connack.getName() == "Not authorized"
    own_will = Client(
        broker, "gw-0001", broker.passwords["gw-0001"], will=(status("gw-0001"), b"offline")
    )
    assert not own_will.connack.is_failure
    own_will.close()


def test_a_refused_client_with_a_taken_client_id_disturbs_nobody(broker: BrokerLogins) -> None:
    """amqtt dropped or took over the session of a CONNECT's client id before the login check."""
    with (
        connected(broker, "ingest", client_id="telemon-demo-ingest", clean_session=False) as ingest,
        connected(broker, "gw-0001") as gateway,
    ):
        ingest.subscribe(obs("+"))
        for username, password, clean in [
            (None, None, True),  # would have deleted ingest's subscriptions
            (None, None, False),  # would have disconnected ingest
            ("gw-0002", broker.passwords["gw-0002"], False),  # another user's client id
        ]:
            intruder = Client(
                broker, username, password, client_id="telemon-demo-ingest", clean_session=clean
            )
            assert intruder.connack.getName() == "Not authorized", (username, clean)
        sentinel = marker("still-subscribed")
        gateway.publish(obs("gw-0001"), sentinel)
        assert ingest.receive_until(sentinel) == [(obs("gw-0001"), sentinel)]
        assert ingest.disconnected == 0
