"""Reaching the MQTT broker: URL parsing, client construction and a reachability probe."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}


class BrokerUnavailable(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS:
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"MQTT URL has no host: {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or _DEFAULT_PORTS[parts.scheme],
            tls=parts.scheme in ("mqtts", "ssl"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def new_client(
    address: BrokerAddress,
    client_id: str,
    *,
    ca_file: Path | None = None,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client (MQTT 5) set up for ``address``; :func:`connect` it, then run its loop."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if address.username:
        client.username_pw_set(address.username, address.password)
    if address.tls:
        client.tls_set(ca_certs=str(ca_file) if ca_file else None, cert_reqs=ssl.CERT_REQUIRED)
    client.reconnect_delay_set(min_delay=1, max_delay=60)
    return client


def connect(
    client: mqtt.Client,
    address: BrokerAddress,
    *,
    clean_start: bool = False,
    session_expiry_s: int = 86_400,
    keepalive: int = 30,
) -> None:
    """Connect with a persistent session by default.

    A persistent session lets the broker keep subscriptions and queued QoS 1 messages while a
    client is briefly away, which is what every telemon service wants.
    """
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = session_expiry_s
    client.connect(
        address.host,
        address.port,
        keepalive=keepalive,
        clean_start=clean_start,
        properties=properties,
    )


def probe(address: BrokerAddress, *, timeout: float = 3.0) -> None:
    """Raise :class:`BrokerUnavailable` with a useful message unless a TCP connect succeeds."""
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            return
    except OSError as exc:
        raise BrokerUnavailable(
            f"cannot reach the MQTT broker at {address}: {exc.strerror or exc}. "
            "Start the broker or point TELEMON_MQTT_URL at a running one "
            "(unset it to let `telemon demo` start an embedded broker)."
        ) from exc
