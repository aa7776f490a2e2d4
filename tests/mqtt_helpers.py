"""A test-side MQTT subscriber that records what it receives."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt

from telemon.mqtt import BrokerAddress, connect, new_client
from telemon.payload_schema import decode_observations
from telemon.topics import Channel, topic


class Collector:
    """Subscribes to ``topics`` with QoS 1 and keeps every message, in arrival order.

    With ``persistent=True`` the broker keeps the session while the collector (or the broker)
    is away, the way the ingest service subscribes.
    """

    def __init__(self, url: str, *topics: str, persistent: bool = False) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._topics = topics
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._address = BrokerAddress.parse(url)
        self._client = new_client(self._address, client_id=f"collector-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *args: self._subscribed.set()
        self._client.on_message = self._on_message
        self._persistent = persistent

    def __enter__(self) -> Collector:
        connect(self._client, self._address, clean_start=not self._persistent, background=True)
        self._client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("collector did not subscribe")
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        for name in self._topics:
            client.subscribe(name, qos=1)

    def _on_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(message)

    def snapshot(self) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, condition: Callable[[list[mqtt.MQTTMessage]], bool], timeout: float = 20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.snapshot()
            if condition(messages):
                return messages
            time.sleep(0.05)
        raise TimeoutError(f"condition not met within {timeout} s; got {len(self.snapshot())}")


def received_seqs(messages: list[mqtt.MQTTMessage], gateway_id: str) -> list[int]:
    """The sequence numbers of ``gateway_id``'s observations in ``messages``, in arrival order."""
    obs_topic = topic(gateway_id, Channel.OBS)
    return [
        o.seq
        for m in messages
        if m.topic == obs_topic
        for o in decode_observations(m.topic, m.payload).observations
    ]
