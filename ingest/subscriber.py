"""The MQTT side: subscribe with manual acknowledgement, hand deliveries to the inbox, ack later.

A QoS 1 message is acknowledged only after the transaction holding its rows has committed (see
:meth:`Subscriber.ack`). Until then the broker keeps it, and redelivers it to this session, or to
another worker of the shared group, if this process dies.

The connection is ours, not paho's: at one reading per message paho's per-packet work (a
``select`` and three ``recv`` calls, an MQTT 5 ``Properties`` object, one ``send`` per PUBACK)
was two thirds of a worker's CPU. Here one ``recv`` takes whatever the socket holds,
:func:`ingest.mqtt_packets.split_packets` cuts it into packets, and a batch's PUBACKs leave in
one write after its commit. Only the subscriber's side of MQTT is needed, so that is all there is.
"""

from __future__ import annotations

import contextlib
import logging
import select
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ingest import mqtt_packets as packets
from ingest.inbound import UnusableMessage, classify
from ingest.inbox import Delivery, Inbox
from telemon.mqtt import BrokerAddress
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


SESSION_EXPIRY_S = 86_400
RECONNECT_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0)  # then 60 s; reset once connected
_RECV_BYTES = 256 * 1024
_SUBSCRIBE_MID = 1
# Why a broker refused a CONNECT or a SUBSCRIBE, by reason code (MQTT 5; 3.1.1's return codes
# 1-5 for CONNACK). Others are shown as their number.
_REFUSALS = {
    1: "unacceptable protocol version",
    2: "identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
    0x80: "unspecified error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x97: "quota exceeded",
    0x9E: "shared subscriptions not supported",
}


def _refusal(code: int) -> str:
    return _REFUSALS.get(code, f"reason code 0x{code:02x}")


class ConnectionLost(Exception):
    """The broker went away, closed the connection or sent something unusable."""


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
        self.ca_file = ca_file
        self.generation = 0
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._mqtt5 = address.protocol == "5"
        self._lock = threading.Lock()  # the connection, its generation and what waits to be sent
        # What came in behind the CONNACK, for _serve().
        self._pending = b""
        self._pending_packets: list[packets.Packet] = []
        self._outgoing: list[bytes] = []
        # The network thread alone touches the socket (an SSL socket must not be read and written
        # from two threads); ack() queues its PUBACKs and wakes it through this pair (made by
        # start(), closed by stop()).
        self._wake_pair: tuple[socket.socket, socket.socket] | None = None
        self._stopping = threading.Event()
        self._refusal: str | None = None
        self._thread = threading.Thread(target=self._run, name="ingest-mqtt", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        """Connect (persistent session), start the network thread, wait for the subscription."""
        self._wake_pair = socket.socketpair()
        for end in self._wake_pair:
            end.setblocking(False)
        self._thread.start()
        if not self.subscribed.wait(timeout):
            self.stop()
            why = f": {self._refusal}" if self._refusal else ""
            raise TimeoutError(f"not subscribed on {self.address} within {timeout:g} s{why}")

    def stop(self) -> None:
        """Disconnect; the session and its unacknowledged messages stay with the broker."""
        self._stopping.set()
        self._wake()
        if self._thread.is_alive():
            self._thread.join(5.0)
        self.connected.clear()
        if self._wake_pair is not None and not self._thread.is_alive():
            for end in self._wake_pair:
                end.close()

    def ack(self, deliveries: Sequence[Delivery]) -> int:
        """Acknowledge committed deliveries, in the order received; return how many were queued.

        They leave in one write. A delivery from an earlier connection is skipped: its message id
        may now name another message, and the broker redelivers it on this connection anyway (a
        harmless duplicate).
        """
        with self._lock:
            if not self.connected.is_set():
                return 0
            mids = [d.mid for d in deliveries if d.qos and d.generation == self.generation]
            if mids:
                self._outgoing.append(packets.pubacks(mids))
        if mids:
            self._wake()
        return len(mids)

    @property
    def is_connected(self) -> bool:
        return self.connected.is_set()

    # --- the network thread ------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                sock = self._open()
            except (OSError, ConnectionLost, packets.MalformedPacket) as exc:
                self._refusal = self._refusal or f"cannot connect: {exc}"
                log.warning("cannot connect to %s: %s", self.address, exc)
            else:
                failures = 0
                try:
                    self._serve(sock)
                except (OSError, ConnectionLost, packets.MalformedPacket) as exc:
                    if not self._stopping.is_set():
                        log.warning("disconnected from %s: %s; reconnecting", self.address, exc)
                except Exception:
                    # A bug must cost a reconnection (the unacknowledged messages come again),
                    # not the network thread.
                    log.exception("the connection to %s failed; reconnecting", self.address)
                finally:
                    self._close(sock)
            if self._stopping.is_set():
                break
            delay = RECONNECT_DELAYS_S[min(failures, len(RECONNECT_DELAYS_S) - 1)]
            failures += 1
            self._stopping.wait(delay)
        log.info("disconnected from %s", self.address)

    def _open(self) -> socket.socket:
        """A connected, accepted MQTT session, subscription requested."""
        sock = socket.create_connection((self.address.host, self.address.port), timeout=10.0)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.address.tls:
                context = ssl.create_default_context(
                    cafile=str(self.ca_file) if self.ca_file else None
                )
                sock = context.wrap_socket(sock, server_hostname=self.address.host)
            sock.sendall(
                packets.connect(
                    self.client_id,
                    mqtt5=self._mqtt5,
                    keepalive=self.keepalive,
                    username=self.address.username,
                    password=self.address.password,
                    session_expiry_s=SESSION_EXPIRY_S,
                    receive_maximum=self.receive_maximum if self._mqtt5 else None,
                )
            )
            buffer = bytearray()
            while True:
                found, used = packets.split_packets(buffer)
                if found:
                    break
                data = sock.recv(4096)
                if not data:
                    raise ConnectionLost("the broker closed the connection before CONNACK")
                buffer += data
            first = found[0]
            if first.type != packets.PacketType.CONNACK:
                raise ConnectionLost(f"expected CONNACK, got packet type {first.type}")
            connack = packets.parse_connack(first)
            if connack.reason_code:
                self._refusal = (
                    f"the broker refused the connection ({_refusal(connack.reason_code)})"
                )
                raise ConnectionLost(self._refusal)
            sock.sendall(packets.subscribe(_SUBSCRIBE_MID, self.subscriptions, mqtt5=self._mqtt5))
        except BaseException:
            sock.close()
            raise
        # Anything after the CONNACK (the session's queued PUBLISHes) is served next.
        self._pending = bytes(buffer[used:])
        self._pending_packets = found[1:]
        with self._lock:
            self._outgoing.clear()
            self.generation += 1
            self.connected.set()
        log.info("connected to %s as %s", self.address, self.client_id)
        return sock

    def _serve(self, sock: socket.socket) -> None:
        """Read and dispatch packets, send queued PUBACKs and pings, until the connection ends."""
        sock.setblocking(False)
        buffer = bytearray(self._pending)
        self._dispatch(self._pending_packets)
        interval = self.keepalive / 2
        last_sent = last_received = time.monotonic()
        ping_sent = False
        poller = selectors.DefaultSelector()
        poller.register(sock, selectors.EVENT_READ)
        assert self._wake_pair is not None  # start() made it before starting this thread
        wake = self._wake_pair[0]
        poller.register(wake, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                # An SSL socket may hold decrypted bytes the selector cannot see.
                ready = isinstance(sock, ssl.SSLSocket) and sock.pending() > 0
                if not ready:
                    events = poller.select(interval)
                    ready = any(key.fileobj is sock for key, _ in events)
                    if any(key.fileobj is wake for key, _ in events):
                        self._drain_wake(wake)
                if self._flush(sock):
                    last_sent = time.monotonic()
                if ready:
                    data = self._recv(sock)
                    if data:
                        ping_sent = False
                        buffer += data
                        found, used = packets.split_packets(buffer)
                        del buffer[:used]
                        self._dispatch(found)
                        # A full inbox may have held the dispatch: not the broker's silence.
                        last_received = time.monotonic()
                now = time.monotonic()
                if now - last_received > 1.5 * self.keepalive:
                    raise ConnectionLost(f"nothing from the broker for {now - last_received:.0f} s")
                if now - last_sent >= interval and not ping_sent:
                    self._send(sock, packets.PINGREQ)
                    last_sent, ping_sent = now, True
            self._flush(sock)
            self._send(sock, packets.DISCONNECT)
        finally:
            poller.close()

    def _recv(self, sock: socket.socket) -> bytes | None:
        try:
            data = sock.recv(_RECV_BYTES)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        if not data:
            raise ConnectionLost("the broker closed the connection")
        return data

    def _send(self, sock: socket.socket, data: bytes) -> None:
        """Write all of ``data`` on the non-blocking socket, waiting for room when it is full."""
        view = memoryview(data)
        while view:
            try:
                view = view[sock.send(view) :]
            except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                select.select([], [sock], [], 1.0)

    def _flush(self, sock: socket.socket) -> bool:
        with self._lock:
            outgoing, self._outgoing = self._outgoing, []
        if outgoing:
            self._send(sock, b"".join(outgoing))
        return bool(outgoing)

    def _dispatch(self, found: list[packets.Packet]) -> None:
        for packet in found:
            if packet.type == packets.PacketType.PUBLISH:
                self._on_publish(packets.parse_publish(packet, mqtt5=self._mqtt5))
            elif packet.type == packets.PacketType.SUBACK:
                self._on_suback(packets.parse_suback(packet, mqtt5=self._mqtt5))
            elif packet.type == packets.PacketType.DISCONNECT:
                reason = packets.disconnect_reason(packet)
                raise ConnectionLost(f"the broker disconnected us ({_refusal(reason)})")
            elif packet.type != packets.PacketType.PINGRESP:
                raise ConnectionLost(f"unexpected packet type {packet.type} from the broker")

    def _on_suback(self, suback: packets.Suback) -> None:
        failed = [_refusal(code) for code in suback.reason_codes if code >= 0x80]
        if failed:
            self._refusal = f"the broker refused the subscription ({', '.join(failed)})"
            log.error("subscription refused by %s: %s", self.address, ", ".join(failed))
            return
        self.subscribed.set()

    def _on_publish(self, publish: packets.Publish) -> None:
        received_at = time.monotonic()
        try:
            inbound = classify(
                publish.topic, publish.payload, retained=publish.retain, now=datetime.now(UTC)
            )
        except Exception as exc:
            # A decoder bug must cost one dead letter, not the network thread.
            log.exception("could not decode a message on %s", publish.topic)
            error = PayloadError(RejectReason.INVALID_SCHEMA, f"undecodable: {exc!r}")
            inbound = UnusableMessage(publish.topic, publish.payload, error)
        delivery = Delivery(inbound, publish.mid, publish.qos, self.generation, received_at)
        # Blocks while the inbox is full (this thread then stops reading the socket); if it was
        # closed (shutting down), the message is left unacknowledged for the broker to resend.
        self.inbox.put(delivery)

    def _wake(self) -> None:
        # BlockingIOError: already awake, the pair is full of wake-ups; OSError: stopped, closed.
        with contextlib.suppress(OSError):
            if self._wake_pair is not None:
                self._wake_pair[1].send(b"\x00")

    def _drain_wake(self, wake: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError):
            while wake.recv(4096):
                pass

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self.connected.clear()
            self._outgoing.clear()
        sock.close()
