"""Publishing the fleet's messages at QoS 1, and a one-line progress display.

Connections: one per gateway, with the gateway id as client id, as real gateways connect, when
there are at most ``connections`` gateways; beyond that a pool of ``connections`` clients, each
carrying a fixed share of the gateways. Every paho client needs a network thread and a socket,
and one Python process cannot drive thousands of them; the broker and ingest see the same
topics and payloads either way, and a gateway always uses the same connection, so its batches
still arrive in sequence order.

Sessions are clean and expire on disconnect: nothing of the fleet stays on the broker.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TextIO

import paho.mqtt.client as mqtt

from bench._fleet_streams import Message
from telemon.mqtt import BrokerAddress, connect, new_client

CONNECT_TIMEOUT = 10.0


class Publisher:
    def __init__(
        self,
        mqtt_url: str,
        gateway_ids: Sequence[str],
        *,
        connections: int,
        run: str,
        inflight: int = 100,
    ) -> None:
        self.address = BrokerAddress.parse(mqtt_url)
        self.own_connections = len(gateway_ids) <= connections
        if self.own_connections:
            client_ids = list(gateway_ids)
        else:
            client_ids = [f"fleet-{run}-{i}" for i in range(max(1, connections))]
        self.clients = [new_client(self.address, client_id) for client_id in client_ids]
        for client in self.clients:
            client.max_inflight_messages_set(inflight)
            client.max_queued_messages_set(0)  # no limit: pacing, not paho, bounds the queue
        self._route = {
            gateway: self.clients[i % len(self.clients)] for i, gateway in enumerate(gateway_ids)
        }
        self._lock = threading.Lock()
        self._unacked: list[tuple[mqtt.MQTTMessageInfo, int]] = []
        self.published_messages = 0
        self.published_observations = 0
        self.acked_messages = 0
        self.acked_observations = 0

    def __enter__(self) -> Publisher:
        for client in self.clients:
            connect(client, self.address, clean_start=True, session_expiry_s=0)
            client.loop_start()
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while not all(client.is_connected() for client in self.clients):
            if time.monotonic() > deadline:
                self.close()
                raise SystemExit(f"the fleet could not connect to the broker at {self.address}")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for client in self.clients:
            client.disconnect()
            client.loop_stop()

    def publish(self, message: Message) -> float:
        """Stamp ``sent_at``, publish at QoS 1; returns the POSIX time of sending."""
        now = time.time()
        payload = message.payload(datetime.fromtimestamp(now, UTC))
        info = self._route[message.gateway_id].publish(message.topic, payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_NO_CONN:
            # Not connected (the broker restarting): paho keeps the message and sends it once
            # reconnected, as it resends every unacknowledged one; its info would go on saying
            # "not connected" though, and is_published() raise, after the PUBACK.
            info.rc = mqtt.MQTT_ERR_SUCCESS
        with self._lock:
            self._unacked.append((info, message.observations))
            self.published_messages += 1
            self.published_observations += message.observations
        return now

    def settle(self) -> None:
        """Count the messages the broker has acknowledged (PUBACK) since the last call."""
        with self._lock:
            waiting = []
            for info, observations in self._unacked:
                if info.is_published():
                    self.acked_messages += 1
                    self.acked_observations += observations
                else:
                    waiting.append((info, observations))
            self._unacked = waiting

    def wait_acked(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            self.settle()
            if self.acked_messages == self.published_messages:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def describe(self) -> str:
        return (
            "one connection per gateway (client id = gateway id)"
            if self.own_connections
            else f"{len(self.clients)} pooled connections"
        )


class Progress:
    """A status line: rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(
        self,
        line: Callable[[], str],
        *,
        stream: TextIO = sys.stdout,
        interval: float | None = None,
        only_on_tty: bool = False,
    ) -> None:
        self.line = line
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval or (0.5 if self.tty else 5.0)
        self.enabled = self.tty or not only_on_tty
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fleet-progress", daemon=True)

    def __enter__(self) -> Progress:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.enabled:
            return
        self._stop.set()
        self._thread.join()
        if self.tty:  # the final figures, then leave the line for what follows
            self._show()
            self.stream.write("\n")
            self.stream.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._show()

    def _show(self) -> None:
        text = self.line()
        if self.tty:
            self.stream.write(f"\r{text}\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
