"""The MQTT uplink: drains the outbox to the broker, announces presence, receives config.

Ordering and loss: batches leave in sequence order, at most ``window`` unacknowledged at once,
and an outbox entry is deleted only when the broker's PUBACK for its batch arrives. After a
reconnect everything not yet acknowledged is sent again from the outbox; the server ignores
what it already has, because (gateway id, seq) names each observation once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from gateway.identity import GatewayIdentity
from gateway.outbox import Outbox
from telemon import __version__
from telemon.mqtt import connect, new_client
from telemon.payload import (
    MAX_BATCH,
    DeviceHealth,
    GatewayConfig,
    GatewayStatus,
    encode_observations,
    offline_will,
)
from telemon.topics import Channel, topic

log = logging.getLogger(__name__)


@dataclass(slots=True)
class UplinkCounters:
    connects: int = 0
    disconnects: int = 0
    published_batches: int = 0
    refused_batches: int = 0
    unrouted_batches: int = 0  # acknowledged, but nobody was subscribed to store them
    acknowledged_observations: int = 0
    rejected_configs: int = 0
    recoveries: dict[str, int] = field(default_factory=dict)


# MQTT 5 PUBACK "No matching subscribers": the broker took the batch but had no one to give it
# to. Mosquitto does not restore shared subscriptions across its own restart, so until the
# ingest workers subscribe again this is what a batch gets: it must stay in the outbox.
NO_MATCHING_SUBSCRIBERS = 0x10
UNROUTED_RETRY_S = 5.0


class Uplink:
    def __init__(
        self,
        identity: GatewayIdentity,
        outbox: Outbox,
        *,
        devices: Callable[[], list[DeviceHealth]] = list,
        recoveries: Callable[[], dict[str, int]] = dict,
        on_config: Callable[[GatewayConfig], None] | None = None,
        batch_size: int = 200,
        window: int = 8,
        status_interval: float = 60.0,
    ) -> None:
        self.identity = identity
        self.outbox = outbox
        self.counters = UplinkCounters()
        self._devices = devices
        self._recoveries = recoveries
        self._on_config = on_config
        self._batch_size = min(batch_size, MAX_BATCH)
        self._window = window
        self._status_interval = status_interval
        self._started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()

        # In-flight state belongs to the asyncio thread alone: paho's callbacks run in its
        # network thread while holding paho's own locks, so they only signal (calling back into
        # a lock of ours from there, while we publish under it, deadlocks).
        self._in_flight: list[tuple[mqtt.MQTTMessageInfo, list[int]]] = []
        self._refused: dict[int, str] = {}  # mid -> reason, written by paho's thread
        self._unrouted: set[int] = set()  # mids nobody was subscribed for, idem
        self._hold_until = 0.0  # no publishing before this (time.monotonic()) after unrouted
        self._next_seq = 0  # first sequence number not yet handed to the broker in this session
        self._session = 0  # bumped on every connect: a batch peeked before one is stale
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._wake = asyncio.Event()

        gateway_id = identity.gateway_id
        self._obs_topic = topic(gateway_id, Channel.OBS)
        self._status_topic = topic(gateway_id, Channel.STATUS)
        self._config_topic = topic(gateway_id, Channel.CONFIG)
        self._client = new_client(
            identity.broker(), client_id=gateway_id, ca_file=identity.mqtt_ca_file
        )
        self._client.will_set(self._status_topic, offline_will(gateway_id), qos=1, retain=True)
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_publish = self._handle_publish
        self._client.on_message = self._handle_message

    def notify_new_data(self) -> None:
        """Tell the drain loop the outbox has something new (thread-safe)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        connect(self._client, self.identity.broker(), background=True)
        self._client.loop_start()
        try:
            await asyncio.gather(self._drain(stop), self._report_status(stop))
        finally:
            await self._settle_acknowledged()
            await self._say_goodbye()
            self._client.loop_stop()

    # -- the drain loop --------------------------------------------------------------------------

    async def _drain(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self._connected.is_set():
                await _first(self._connected.wait(), stop.wait())
                continue
            await self._settle_acknowledged()
            batch = []
            session = self._session
            if (wait := self._hold_until - time.monotonic()) > 0:
                await _first(stop.wait(), timeout=wait)
                continue
            if len(self._in_flight) < self._window:
                batch = await asyncio.to_thread(
                    self.outbox.peek, self._batch_size, from_seq=self._next_seq
                )
            if session != self._session:
                continue  # reconnected while reading the outbox: start again from the oldest
            if not batch or not self._client.is_connected():
                self._wake.clear()
                await _first(self._wake.wait(), stop.wait(), timeout=1.0)
                continue
            payload = encode_observations(
                self.identity.gateway_id, batch, sent_at=datetime.now(UTC)
            )
            info = self._client.publish(self._obs_topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                continue  # the connection dropped under us; resent after reconnect
            self._in_flight.append((info, [o.seq for o in batch]))
            self._next_seq = batch[-1].seq + 1
            self.counters.published_batches += 1

    async def _settle_acknowledged(self) -> None:
        """Delete from the outbox the batches the broker acknowledged, oldest first."""
        # One look per batch: the PUBACK may land between two looks (paho's thread).
        done: list[tuple[mqtt.MQTTMessageInfo, list[int]]] = []
        waiting: list[tuple[mqtt.MQTTMessageInfo, list[int]]] = []
        for entry in self._in_flight:
            (done if entry[0].is_published() else waiting).append(entry)
        if not done:
            return
        self._in_flight = waiting
        accepted: list[int] = []
        for info, seqs in done:
            reason = self._refused.pop(info.mid, None)
            if info.mid in self._unrouted:
                self._unrouted.discard(info.mid)
                log.warning(
                    "no subscriber for batch %s..%s; keeping it, retrying in %g s",
                    seqs[0],
                    seqs[-1],
                    UNROUTED_RETRY_S,
                )
                self.counters.unrouted_batches += 1
                self._next_seq = min(self._next_seq, seqs[0])
                self._hold_until = time.monotonic() + UNROUTED_RETRY_S
            elif reason is None:
                accepted.extend(seqs)
            else:
                # Not authorised, quota...: keep the batch for the next session.
                log.warning("broker refused batch %s..%s: %s", seqs[0], seqs[-1], reason)
                self.counters.refused_batches += 1
                self._next_seq = min(self._next_seq, seqs[0])
        # A status message can go unrouted too; its mid must not linger. Every batch's mid is in
        # flight before its PUBACK is looked at here (both happen on this thread), so a mid in
        # neither list is not a batch's.
        batches = {info.mid for info, _ in self._in_flight} | {info.mid for info, _ in done}
        self._unrouted.difference_update([m for m in list(self._unrouted) if m not in batches])
        if accepted:
            await asyncio.to_thread(self.outbox.remove, accepted)
            self.counters.acknowledged_observations += len(accepted)

    # -- presence --------------------------------------------------------------------------------

    async def _report_status(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self._connected.is_set():
                self._publish_status()
            await _first(stop.wait(), timeout=self._status_interval)

    def status(self) -> GatewayStatus:
        stats = self.outbox.stats()
        return GatewayStatus(
            gateway_id=self.identity.gateway_id,
            state="online",
            system_id=self.identity.system_id,
            version=__version__,
            started_at=self._started_at,
            uptime_s=round(time.monotonic() - self._started_monotonic, 1),
            outbox_depth=stats.depth,
            outbox_oldest_at=stats.oldest_enqueued_at,
            recoveries={
                **self._recoveries(),
                "outbox_evicted": stats.evicted,
                "records_resent": stats.duplicates,
                "mqtt_reconnects": max(0, self.counters.connects - 1),
            },
            devices=tuple(self._devices()),
        )

    def _publish_status(self) -> None:
        self._client.publish(self._status_topic, self.status().encode(), qos=1, retain=True)

    async def _say_goodbye(self) -> None:
        """A clean stop says 'offline' itself: the broker sends the last will only on a drop."""
        if not self._client.is_connected():
            return
        info = self._client.publish(
            self._status_topic, offline_will(self.identity.gateway_id), qos=1, retain=True
        )
        await asyncio.to_thread(info.wait_for_publish, 5.0)
        self._client.disconnect()

    # -- paho callbacks (network thread) ---------------------------------------------------------

    def _handle_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("broker refused the connection: %s", reason_code)
            return
        self.counters.connects += 1
        client.subscribe(self._config_topic, qos=1)
        self._publish_status()
        self._signal(self._start_session)

    def _start_session(self) -> None:
        """A new connection: resend from the oldest entry whatever was not acknowledged."""
        self._in_flight.clear()
        self._next_seq = 0
        self._session += 1
        self._connected.set()
        self._wake.set()

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.counters.disconnects += 1
        self._signal(self._connected.clear)

    def _handle_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused[mid] = str(reason_code)
        elif reason_code.value == NO_MATCHING_SUBSCRIBERS:
            self._unrouted.add(mid)
        self._signal(self._wake.set)

    def _handle_message(self, client, userdata, message: mqtt.MQTTMessage) -> None:
        if message.topic != self._config_topic or not message.payload:
            return
        try:
            config = GatewayConfig.decode(message.payload)
            if config.gateway_id != self.identity.gateway_id:
                raise ValueError(f"config is for gateway {config.gateway_id!r}")
        except ValueError as exc:  # InvalidValue says which field and why
            self.counters.rejected_configs += 1
            log.warning("ignored an invalid config message: %s", exc)
            return
        if self._on_config is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._on_config, config)

    def _signal(self, action: Callable[[], None]) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(action)


async def _first(*awaitables, timeout: float | None = None) -> None:
    """Wait until the first of ``awaitables`` finishes (or ``timeout``); cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
