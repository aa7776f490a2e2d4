"""The MQTT side: subscribe with manual acknowledgement, hand deliveries to the inbox, ack later.

A QoS 1 message is acknowledged only after the transaction holding its rows has committed (see
:meth:`Subscriber.ack`). Until then the broker keeps it, and redelivers it to this session, or to
another worker of the shared group, if this process dies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.inbound import UnusableMessage, classify
from ingest.inbox import Delivery, Inbox
from telemon.mqtt import BrokerAddress, connect, new_client
from telemon.payload import PayloadError, RejectReason
from telemon.topics import Channel, subscription

log = logging.getLogger(__name__)

# Unacknowledged messages the broker may have in flight to us (MQTT 5 Receive Maximum). Without
# it Mosquitto allows 20, which would cap a batch at 20 messages; acks wait for the commit.
RECEIVE_MAXIMUM = 2000
_MQTT_RECEIVE_MAXIMUM_LIMIT = 65_535


def receive_maximum_for(batch_size: int) -> int:
    """In flight for batches of ``batch_size`` observations: two batches' worth of messages.

    Acknowledgements wait for the commit, so while a batch is written the broker can send only
    what the Receive Maximum leaves. At one reading per message a maximum no larger than a batch
    stalled the pipe: the batch in the database held every message the broker could send, the
    next one could not start arriving until the commit, and every batch then waited out its
    whole deadline. Two batches' worth lets the next one arrive while this one is written.
    """
    return min(_MQTT_RECEIVE_MAXIMUM_LIMIT, max(RECEIVE_MAXIMUM, 2 * batch_size))


SESSION_EXPIRY_S = 86_400


class Subscriber:
    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        inbox: Inbox,
        *,
        shared_group: str | None,
        ca_file: Path | None = None,
        receive_maximum: int = RECEIVE_MAXIMUM,
        keepalive: int = 30,
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.inbox = inbox
        # Observations are spread over the workers of the group; every worker reads every status,
        # so each sees the retained ones at start and applies a gateway's statuses in order.
        self.subscriptions = [
            (subscription(Channel.OBS, shared_group=shared_group), 1),
            (subscription(Channel.STATUS), 1),
        ]
        self.receive_maximum = receive_maximum
        self.keepalive = keepalive
        self.generation = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._lock = threading.Lock()
        self._refusal: str | None = None
        self._client = new_client(address, client_id, ca_file=ca_file, manual_ack=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self, timeout: float = 10.0) -> None:
        """Connect (persistent session), start the network thread, wait for the subscription."""
        connect(
            self._client,
            self.address,
            session_expiry_s=SESSION_EXPIRY_S,
            keepalive=self.keepalive,
            receive_maximum=self.receive_maximum,
        )
        self._client.loop_start()
        if not self.subscribed.wait(timeout):
            self.stop()
            why = f": {self._refusal}" if self._refusal else ""
            raise TimeoutError(f"not subscribed on {self.address} within {timeout:g} s{why}")

    def stop(self) -> None:
        """Disconnect; the session and its unacknowledged messages stay with the broker."""
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, deliveries: Sequence[Delivery]) -> int:
        """Acknowledge committed deliveries, in the order received; return how many were sent.

        A delivery from an earlier connection is skipped: its message id may now name another
        message, and the broker redelivers it on this connection anyway (a harmless duplicate).
        """
        sent = 0
        with self._lock:
            generation = self.generation if self.connected.is_set() else -1
        for delivery in deliveries:
            if delivery.qos and delivery.generation == generation:
                self._client.ack(delivery.mid, delivery.qos)
                sent += 1
        return sent

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._refusal = f"the broker refused the connection ({reason_code})"
            log.error("broker %s refused the connection: %s", self.address, reason_code)
            return
        with self._lock:
            self.generation += 1
            self.connected.set()
        log.info("connected to %s as %s", self.address, self.client_id)
        client.subscribe(self.subscriptions)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            self._refusal = f"the broker refused the subscription ({', '.join(failed)})"
            log.error("subscription refused by %s: %s", self.address, ", ".join(failed))
            return
        self.subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._lock:
            self.connected.clear()
        if reason_code.is_failure:
            log.warning("disconnected from %s: %s; reconnecting", self.address, reason_code)
        else:
            log.info("disconnected from %s", self.address)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        received_at = time.monotonic()
        payload = bytes(message.payload)  # paho's bytearray, if ever, as bytes; bytes as they are
        try:
            inbound = classify(
                message.topic, payload, retained=message.retain, now=datetime.now(UTC)
            )
        except Exception as exc:
            # A decoder bug must cost one dead letter, not the network thread.
            log.exception("could not decode a message on %s", message.topic)
            error = PayloadError(RejectReason.INVALID_SCHEMA, f"undecodable: {exc!r}")
            inbound = UnusableMessage(message.topic, payload, error)
        delivery = Delivery(inbound, message.mid, message.qos, self.generation, received_at)
        # Blocks while the inbox is full; if it was closed (shutting down), the message is left
        # unacknowledged for the broker to deliver again.
        self.inbox.put(delivery)

    @property
    def is_connected(self) -> bool:
        return self.connected.is_set()
