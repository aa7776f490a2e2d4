"""The bounded queue between the MQTT network thread and the writer thread.

Bounded by observations, not messages, because a message carries from one to a thousand of them.
When it is full, :meth:`Inbox.put` blocks the network thread, which then stops reading the socket:
a slow store slows the broker down instead of growing this process without limit.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from ingest.inbound import Inbound


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as delivered by the broker, with what is needed to acknowledge it later."""

    message: Inbound
    mid: int
    qos: int
    generation: int  # the broker connection it came on; a message id is meaningful only there
    received_at: float  # time.monotonic()

    @property
    def weight(self) -> int:
        return self.message.weight


class Inbox:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: deque[Delivery] = deque()
        self._weight = 0
        self._closed = False
        lock = threading.Lock()
        # Two conditions on one lock: the writer is woken only when a batch can close, not by
        # each of the thousands of single-reading messages a second that make it up.
        self._ready = threading.Condition(lock)  # the taker: enough weight queued, or closed
        self._room = threading.Condition(lock)  # the producer: room again
        self._wanted = 1  # the weight that would let a waiting taker return (1: any delivery)

    def put(self, delivery: Delivery) -> bool:
        """Queue a delivery, waiting while full; False once closed (the delivery is dropped)."""
        with self._ready:
            # An item heavier than the whole capacity still gets in when the queue is empty.
            while not self._closed and self._items and self._weight >= self.capacity:
                # Full: a batch waiting for more must close now, not at its deadline.
                self._ready.notify()
                self._room.wait()
            if self._closed:
                return False
            self._items.append(delivery)
            self._weight += delivery.weight
            if self._weight >= self._wanted:
                self._ready.notify()
            return True

    def take_batch(self, max_weight: int, max_wait: float, idle_wait: float) -> list[Delivery]:
        """Up to ``max_weight`` observations, waiting at most ``max_wait`` after the first arrives.

        Returns an empty list after ``idle_wait`` without any delivery, or when closed and empty.
        """
        batch: list[Delivery] = []
        weight = 0
        with self._ready:
            if not self._items and not self._closed:
                self._wanted = 1
                self._ready.wait(idle_wait)
            if not self._items:
                return batch
            deadline = self._items[0].received_at + max_wait
            self._wanted = max_weight
            while not self._closed and self._weight < max_weight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._weight >= self.capacity:
                    break
                self._ready.wait(remaining)
            self._wanted = 1
            while self._items and (not batch or weight + self._items[0].weight <= max_weight):
                delivery = self._items.popleft()
                self._weight -= delivery.weight
                batch.append(delivery)
                weight += delivery.weight
            self._room.notify_all()
            return batch

    def close(self) -> None:
        """Refuse new deliveries; those queued can still be taken."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
            self._room.notify_all()

    @property
    def depth(self) -> tuple[int, int]:
        """(messages, observations) waiting."""
        with self._ready:
            return len(self._items), self._weight
