"""Reaching the MQTT broker: URL parsing, client construction and a reachability probe."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit, urlunsplit

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

_DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883}
Protocol = Literal["5", "3.1.1"]
_PROTOCOLS: Mapping[Protocol, mqtt.MQTTProtocolVersion] = {
    "5": mqtt.MQTTv5,
    "3.1.1": mqtt.MQTTv311,
}


class BrokerUnavailable(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is. MQTT 5 unless the URL says ``?protocol=3.1.1``.

    Production brokers (Mosquitto, EMQX) speak MQTT 5; the demo's embedded broker speaks only
    3.1.1, where a persistent session is ``clean_session=False`` and has no expiry interval.
    """

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    protocol: Protocol = "5"

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        parts = urlsplit(url)
        if parts.scheme not in _DEFAULT_PORTS:
            raise ValueError(f"MQTT URL must start with mqtt:// or mqtts://, got {url!r}")
        if not parts.hostname:
            raise ValueError(f"MQTT URL has no host: {url!r}")
        asked = parse_qs(parts.query).get("protocol", ["5"])[-1]
        protocol = next((p for p in _PROTOCOLS if p == asked), None)
        if protocol is None:
            raise ValueError(f"MQTT protocol must be 5 or 3.1.1, got {asked!r} in {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or _DEFAULT_PORTS[parts.scheme],
            tls=parts.scheme in ("mqtts", "ssl"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            protocol=protocol,
        )

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        query = "" if self.protocol == "5" else f"?protocol={self.protocol}"
        return f"{scheme}://{user}{self.host}:{self.port}{query}"


def without_login(url: str) -> str:
    """``url`` with no username or password in it."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def with_login(url: str, username: str, password: str) -> str:
    """``url`` logging in as ``username`` (replacing any login it had), for TELEMON_MQTT_URL."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    login = f"{quote(username, safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{login}@{host}"))


def new_client(
    address: BrokerAddress,
    client_id: str,
    *,
    ca_file: Path | None = None,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client set up for ``address``; :func:`connect` it, then run its loop."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=_PROTOCOLS[address.protocol],
        clean_session=None if address.protocol == "5" else False,
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
    background: bool = False,
) -> None:
    """Connect with a persistent session by default.

    A persistent session lets the broker keep subscriptions and queued QoS 1 messages while a
    client is briefly away, which is what every telemon service wants. ``background`` returns at
    once and lets the client's network loop connect (and reconnect, with backoff) by itself.
    (The ingest worker, which acks after commit and needs a larger Receive Maximum, has a
    connection of its own: ingest/subscriber.py.)
    """
    connect_call = client.connect_async if background else client.connect
    if address.protocol != "5":
        # 3.1.1 fixes the session choice when the client is made; see new_client().
        connect_call(address.host, address.port, keepalive=keepalive)
        return
    # paho's Properties.__init__ has no annotations (the rest of paho has).
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = session_expiry_s
    connect_call(
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
