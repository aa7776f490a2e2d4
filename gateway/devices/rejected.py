"""The local log of values the decoders refused, with their bytes, for a technician to read."""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

REJECTED_FILE = "rejected.jsonl"


@dataclass(frozen=True, slots=True)
class RejectedValue:
    at: datetime
    device_id: str
    characteristic: str
    payload_hex: str
    error: str


class RejectedLog:
    """Append-only JSON lines, cut back to the newest ``keep`` entries when it doubles.

    Small on purpose: a device sending garbage once a second must not fill the SD card.
    """

    def __init__(self, path: Path, *, keep: int = 500) -> None:
        self.path = path
        self.keep = keep
        self._lock = threading.Lock()

    def record(self, entry: RejectedValue) -> None:
        line = json.dumps({**asdict(entry), "at": entry.at.isoformat()}, sort_keys=True)
        with self._lock:
            with self.path.open("a") as handle:
                handle.write(line + "\n")
            if self._count() > 2 * self.keep:
                self._trim()

    def count(self) -> int:
        with self._lock:
            return self._count()

    def entries(self) -> list[dict[str, str]]:
        with self._lock:
            if not self.path.exists():
                return []
            return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def _count(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open() as handle:
            return sum(1 for _ in handle)

    def _trim(self) -> None:
        with self.path.open() as handle:
            newest = deque(handle, maxlen=self.keep)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(newest))
        temporary.replace(self.path)
