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
        self._changed = threading.Condition()

    def put(self, delivery: Delivery) -> bool:
        """Queue a delivery, waiting while full; False once closed (the delivery is dropped)."""
        with self._changed:
            # An item heavier than the whole capacity still gets in when the queue is empty.
            while not self._closed and self._items and self._weight >= self.capacity:
                self._changed.wait()
            if self._closed:
                return False
            self._items.append(delivery)
            self._weight += delivery.weight
            self._changed.notify_all()
            return True

    def take_batch(self, max_weight: int, max_wait: float, idle_wait: float) -> list[Delivery]:
        """Up to ``max_weight`` observations, waiting at most ``max_wait`` after the first arrives.

        Returns an empty list after ``idle_wait`` without any delivery, or when closed and empty.
        """
        batch: list[Delivery] = []
        weight = 0
        with self._changed:
            if not self._items and not self._closed:
                self._changed.wait(idle_wait)
            if not self._items:
                return batch
            deadline = self._items[0].received_at + max_wait
            while True:
                while self._items and (not batch or weight + self._items[0].weight <= max_weight):
                    delivery = self._items.popleft()
                    self._weight -= delivery.weight
                    batch.append(delivery)
                    weight += delivery.weight
                self._changed.notify_all()
                remaining = deadline - time.monotonic()
                if weight >= max_weight or self._items or self._closed or remaining <= 0:
                    return batch
                self._changed.wait(remaining)

    def close(self) -> None:
        """Refuse new deliveries; those queued can still be taken."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    @property
    def depth(self) -> tuple[int, int]:
        """(messages, observations) waiting."""
        with self._changed:
            return len(self._items), self._weight
