"""Who has live event streams open: at most a few per staff member, the oldest ended first.

Every stream polls the database, so 150 of one account's made every page slower for everyone.
A nurse keeps several tabs open; the one she opened last is the one in front of her, so a new
stream beyond the limit ends that person's oldest (which says so to its page, and the page
stops listening) rather than being refused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

MAX_STREAMS_PER_USER = 4


@dataclass(eq=False)
class Stream:
    staff_id: int
    superseded: asyncio.Event = field(default_factory=asyncio.Event)


class StreamRegistry:
    """The open streams of one dashboard process, by staff member. Used from its event loop
    only, so it needs no lock."""

    def __init__(self, limit: int = MAX_STREAMS_PER_USER) -> None:
        self.limit = limit
        self._open: dict[int, deque[Stream]] = {}

    def open(self, staff_id: int) -> Stream:
        streams = self._open.setdefault(staff_id, deque())
        while len(streams) >= self.limit:
            streams.popleft().superseded.set()
        stream = Stream(staff_id)
        streams.append(stream)
        return stream

    def close(self, stream: Stream) -> None:
        streams = self._open.get(stream.staff_id)
        if streams is not None and stream in streams:
            streams.remove(stream)
            if not streams:
                del self._open[stream.staff_id]

    def count(self, staff_id: int) -> int:
        return len(self._open.get(staff_id, ()))
