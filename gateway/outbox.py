"""The durable outbox: every reading is on disk, with its sequence number, before anything else.

SQLite in WAL mode with ``synchronous=FULL``: a committed append survives a power cut. The
publisher deletes entries only after the broker acknowledged them, so a reading leaves the
outbox only when it has reached the server's broker.

Bounded disk use: past ``max_entries`` (or when the disk's free space falls below
``min_free_bytes``) the oldest *continuous* oximetry samples are evicted first: they arrive once
a second and the rollup keeps their trend. Spot readings (a blood pressure, a glucose, a weight)
are never evicted; they are a few a day and each may be the one that matters. Every eviction is
counted and reported in the gateway's status.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from telemon.observation import Observation

CONTINUOUS = "continuous"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY,
    item         TEXT NOT NULL,
    continuous   INTEGER NOT NULL,
    enqueued_at  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_continuous ON outbox (continuous, seq);
CREATE TABLE IF NOT EXISTS identifiers (n INTEGER PRIMARY KEY, identifier TEXT NOT NULL UNIQUE);
"""
# Identifiers of the records already appended, newest kept: a device that cannot delete its
# memory sends it all again at every connection (a glucometer holds some hundreds, a blood
# pressure monitor some tens per user). Past this many, the oldest are forgotten and a record that
# old sent again is stored again here, and recognised by ingest (issue 19).
IDENTIFIERS_KEPT = 50_000


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    oldest_enqueued_at: datetime | None
    last_seq: int
    evicted: int
    duplicates: int = 0  # records a device sent again, recognised by identifier and not stored


class Outbox:
    """Append observations (numbering them), read the oldest, remove what was acknowledged.

    Thread-safe: the BLE side appends while the MQTT side drains.
    """

    def __init__(
        self,
        path: Path,
        gateway_id: str,
        *,
        max_entries: int = 2_000_000,
        min_free_bytes: int = 64 * 1024 * 1024,
        identifiers_kept: int = IDENTIFIERS_KEPT,
    ) -> None:
        self.path = path
        self.gateway_id = gateway_id
        self.max_entries = max_entries
        self.min_free_bytes = min_free_bytes
        self.identifiers_kept = identifiers_kept
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        # Kept in step with every insert and delete: counting the table at each append would
        # scan up to max_entries rows once a second while the broker is unreachable.
        self._depth: int = self._db.execute("SELECT count(*) FROM outbox").fetchone()[0]
        owner = self._meta("gateway_id")
        if owner is None:
            self._set_meta("gateway_id", gateway_id)
        elif owner != gateway_id:
            raise ValueError(
                f"outbox {path} belongs to gateway {owner!r}, not {gateway_id!r}: "
                "its sequence numbers must not be reused under another identity"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def append(
        self, observations: Sequence[Observation], *, state: Mapping[str, str] | None = None
    ) -> list[Observation]:
        """Number ``observations`` with the next sequence numbers and store them durably.

        The given ``seq`` values are ignored: the outbox is the only source of sequence numbers,
        so they stay monotonic across restarts. ``state`` is written in the same transaction
        (e.g. how far a glucometer's records have been read), so it can never run ahead of or
        behind the readings it describes. An observation whose ``identifier`` was appended
        before (a record the device sent again) is dropped and counted. Returns the stored
        observations.
        """
        if not observations:
            if state:
                with self._lock, self._transaction():
                    for key, value in state.items():
                        self._set_meta(key, value)
            return []
        now = datetime.now(UTC).isoformat()
        with self._lock:
            with self._transaction():
                for key, value in (state or {}).items():
                    self._set_meta(key, value)
                observations = self._new_records(observations)
                if not observations:
                    return []
                last = int(self._meta("last_seq") or 0)
                numbered = [
                    replace(obs, seq=last + i, gateway_id=self.gateway_id)
                    for i, obs in enumerate(observations, start=1)
                ]
                self._db.executemany(
                    "INSERT INTO outbox (seq, item, continuous, enqueued_at) VALUES (?, ?, ?, ?)",
                    [
                        (
                            obs.seq,
                            json.dumps(obs.wire_item(), separators=(",", ":")),
                            int(obs.context.get("source") == CONTINUOUS),
                            now,
                        )
                        for obs in numbered
                    ],
                )
                self._set_meta("last_seq", str(numbered[-1].seq))
                depth = self._enforce_bounds(self._depth + len(numbered))
            self._depth = depth  # only once committed: a failed COMMIT undoes the rows
        return numbered

    def peek(self, limit: int, *, from_seq: int = 0) -> list[Observation]:
        """The oldest ``limit`` observations still waiting from ``from_seq`` on, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT item FROM outbox WHERE seq >= ? ORDER BY seq LIMIT ?", (from_seq, limit)
            ).fetchall()
        # Judged as the wire item it is (timestamps as ISO strings, strict numbers).
        return [Observation.from_wire_item(json.loads(item), self.gateway_id) for (item,) in rows]

    def remove(self, seqs: Iterable[int]) -> int:
        with self._lock:
            with self._transaction():
                cursor = self._db.executemany(
                    "DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs]
                )
            self._depth -= cursor.rowcount
            return cursor.rowcount

    def state(self, prefix: str) -> dict[str, str]:
        """The entries written with :meth:`append`'s ``state`` whose keys start with ``prefix``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, value FROM meta WHERE substr(key, 1, length(?)) = ?", (prefix, prefix)
            ).fetchall()
        return dict(rows)

    def stats(self) -> OutboxStats:
        with self._lock:
            depth, oldest = self._db.execute(
                "SELECT count(*), min(enqueued_at) FROM outbox"
            ).fetchone()
            return OutboxStats(
                depth=depth,
                oldest_enqueued_at=datetime.fromisoformat(oldest) if oldest else None,
                last_seq=int(self._meta("last_seq") or 0),
                evicted=int(self._meta("evicted") or 0),
                duplicates=int(self._meta("duplicates") or 0),
            )

    # -- internals (call with self._lock held) --------------------------------------------------

    def _new_records(self, observations: Sequence[Observation]) -> list[Observation]:
        """``observations`` less those whose identifier is known; the new ones become known."""
        fresh: list[Observation] = []
        seen: set[str] = set()
        for obs in observations:
            if obs.identifier is not None:
                if (
                    obs.identifier in seen
                    or self._db.execute(
                        "SELECT 1 FROM identifiers WHERE identifier = ?", (obs.identifier,)
                    ).fetchone()
                ):
                    continue
                seen.add(obs.identifier)
            fresh.append(obs)
        dropped = len(observations) - len(fresh)
        if dropped:
            self._set_meta("duplicates", str(int(self._meta("duplicates") or 0) + dropped))
        if seen:
            self._db.executemany(
                "INSERT INTO identifiers (identifier) VALUES (?)", [(i,) for i in seen]
            )
            self._db.execute(
                "DELETE FROM identifiers WHERE n <= (SELECT max(n) FROM identifiers) - ?",
                (self.identifiers_kept,),
            )
        return fresh

    def _enforce_bounds(self, depth: int) -> int:
        """Evict what ``depth`` entries exceed of the bounds; returns the depth left."""
        excess = depth - self.max_entries
        if excess <= 0 and self._disk_free() >= self.min_free_bytes:
            return depth
        # Under disk pressure without an entry cap to go by, free a tenth of the samples.
        to_evict = excess if excess > 0 else max(1, depth // 10)
        evicted = self._db.execute(
            "DELETE FROM outbox WHERE seq IN ("
            " SELECT seq FROM outbox WHERE continuous = 1 ORDER BY seq LIMIT ?)",
            (to_evict,),
        ).rowcount
        if evicted:
            self._set_meta("evicted", str(int(self._meta("evicted") or 0) + evicted))
        return depth - evicted

    def _disk_free(self) -> int:
        return shutil.disk_usage(self.path.parent).free

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _transaction(self):
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (sqlite3 in autocommit mode)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
