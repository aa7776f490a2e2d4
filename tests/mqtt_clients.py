"""Blocking paho clients for broker access tests (the shipped Mosquitto and the embedded broker).

"Not delivered" is proven without sleeping: after the forbidden message, the same or a later
publisher sends an allowed sentinel that the observer also receives. A broker forwards messages
to a subscriber in the order it accepted them, so once the sentinel is in, a forbidden message
would already have arrived.
"""

from __future__ import annotations

import contextlib
import queue
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

TIMEOUT = 5.0


def obs(gw: str) -> str:
    return f"telemon/v1/gw/{gw}/obs"


def status(gw: str) -> str:
    return f"telemon/v1/gw/{gw}/status"


def devices(gw: str) -> str:
    return f"telemon/v1/gw/{gw}/devices"


def config(gw: str) -> str:
    return f"telemon/v1/gw/{gw}/config"


@dataclass(frozen=True)
class BrokerLogins:
    """Where a broker listens (on 127.0.0.1) and the password of each of its users."""

    port: int
    passwords: Mapping[str, str]


class Client:
    """A paho-mqtt 2.x client with blocking connect, subscribe and publish, for tests."""

    def __init__(
        self,
        broker: BrokerLogins,
        username: str | None,
        password: str | None = None,
        *,
        client_id: str | None = None,
        protocol: mqtt.MQTTProtocolVersion = mqtt.MQTTv311,
        will: tuple[str, bytes] | None = None,
        clean_session: bool | None = None,
    ) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._subacks: queue.Queue[tuple[int, list[ReasonCode]]] = queue.Queue()
        self.disconnected = 0
        self.protocol = protocol
        self.mqtt = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{uuid.uuid4().hex[:12]}",
            protocol=protocol,
            clean_session=clean_session,
        )
        if username is not None:
            self.mqtt.username_pw_set(username, password)
        if will is not None:
            self.mqtt.will_set(will[0], will[1], qos=1, retain=True)
        self.mqtt.on_connect = lambda _c, _u, _f, rc, _p: self._connack.put(rc)
        self.mqtt.on_subscribe = lambda _c, _u, mid, rcs, _p: self._subacks.put((mid, rcs))
        self.mqtt.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.mqtt.on_disconnect = lambda *_: setattr(self, "disconnected", self.disconnected + 1)
        self.mqtt.connect("127.0.0.1", broker.port, keepalive=30)
        self.mqtt.loop_start()
        self.connack = self._connack.get(timeout=TIMEOUT)
        if self.connack.is_failure:
            # Refused: stop paho from retrying in the background.
            self.mqtt.loop_stop()

    def subscribe(self, topic: str) -> list[ReasonCode]:
        """Subscribe at QoS 1; returns the broker's SUBACK reason codes."""
        _, mid = self.mqtt.subscribe(topic, qos=1)
        got_mid, codes = self._subacks.get(timeout=TIMEOUT)
        assert got_mid == mid
        return codes

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the PUBACK: the broker has then routed the message."""
        info = self.mqtt.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(TIMEOUT)
        assert info.is_published()

    def receive_until(self, sentinel: bytes) -> list[tuple[str, bytes]]:
        """Every (topic, payload) received up to and including the message ``sentinel``."""
        received = []
        deadline = time.monotonic() + TIMEOUT
        while True:
            msg = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            received.append((msg.topic, msg.payload))
            if msg.payload == sentinel:
                return received

    def close(self, *, with_will: bool = False) -> None:
        if with_will:
            # MQTT 5 reason code 4: the broker publishes the will, as if the gateway had vanished.
            rc = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
            self.mqtt.disconnect(reasoncode=rc)
        else:
            self.mqtt.disconnect()
        self.mqtt.loop_stop()


@contextlib.contextmanager
def connected(broker: BrokerLogins, username: str, **kwargs) -> Iterator[Client]:
    client = Client(broker, username, broker.passwords[username], **kwargs)
    assert not client.connack.is_failure, f"{username} refused: {client.connack}"
    try:
        yield client
    finally:
        client.close()


def marker(name: str) -> bytes:
    return f"{name}-{uuid.uuid4().hex}".encode()
