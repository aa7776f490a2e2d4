"""The audit log's hash chain (migration 0023): verification and retention.

Each row's ``row_hash`` is SHA-256 of the previous row's hash followed by the row's canonical
text. The text is spelled out here rather than taken from the database's function, so that a
function replaced by someone who rewrote rows cannot vouch for them; the database computes
each column's text (jsonb and inet have one text form each), this module hashes and chains.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import psycopg

# Keep in step with telemon_audit_canonical in 0023_audit_chain.sql.
CANONICAL = (
    "jsonb_build_array(a.seq, a.id, "
    """to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), """
    "a.actor_id, a.actor_username, a.actor_name, a.actor_role, a.action, a.patient_id, "
    "a.object_type, a.object_id, a.details, a.client_address::text, a.relation, a.care_team"
    ")::text"
)
GENESIS = bytes(32)
# The Garante's guidelines on health dossiers (4 Jun 2015): access logs kept at least 24 months.
MINIMUM_RETENTION_MONTHS = 24
_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Break:
    """The first row where the chain does not hold, and why."""

    seq: int
    row_id: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Verification:
    checked: int  # rows whose hash was recomputed
    first_seq: int | None
    last_seq: int | None
    head_seq: int
    head_hash: bytes
    pruned_seq: int
    broken: Break | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def row_hash(previous: bytes, canonical: str) -> bytes:
    return hashlib.sha256(previous + canonical.encode()).digest()


def verify(conn: psycopg.Connection) -> Verification:
    """Recompute the chain from the first row kept to the head; stop at the first break.

    Read in one REPEATABLE READ snapshot, so rows appended meanwhile are neither half-seen
    nor a false break: the head read is the one the rows read belong to. ``conn`` must have
    no transaction open (an autocommit connection, as telemon.database.connect gives).
    """
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        head = conn.execute(
            "SELECT last_seq, last_hash, pruned_seq, pruned_hash FROM audit_chain"
        ).fetchone()
        if head is None:
            raise LookupError("audit_chain has no head row: is the schema migrated (0023)?")
        head_seq, head_hash, pruned_seq, pruned_hash = head
        expected_seq, previous = pruned_seq + 1, bytes(pruned_hash)
        checked, first, broken = 0, None, None
        after = pruned_seq
        cursor = conn.cursor(name="audit_chain_verify")
        cursor.itersize = _BATCH
        cursor.execute(
            f"SELECT a.seq, a.id, a.prev_hash, a.row_hash, {CANONICAL} "
            "FROM audit_log a ORDER BY a.seq"
        )
        for seq, row_id, prev_hash, stored, canonical in cursor:
            if first is None:
                first = seq
            if seq < expected_seq:
                broken = Break(
                    seq,
                    row_id,
                    f"row {seq} precedes the chain's start after "
                    f"retention ({pruned_seq}): it was inserted behind the trigger",
                )
            elif seq != expected_seq:
                broken = Break(expected_seq, None, f"rows {expected_seq}..{seq - 1} are missing")
            elif bytes(prev_hash) != previous:
                broken = Break(
                    seq, row_id, "its previous hash is not the hash of the row before it"
                )
            elif row_hash(previous, canonical) != bytes(stored):
                broken = Break(
                    seq,
                    row_id,
                    "its content does not match its hash: the row was changed after it was written",
                )
            if broken is not None:
                break
            checked += 1
            after, previous, expected_seq = seq, bytes(stored), seq + 1
        cursor.close()
        if broken is None and (after, previous) != (head_seq, bytes(head_hash)):
            broken = Break(
                after + 1,
                None,
                f"the chain ends at row {after} but its head says {head_seq}: "
                "rows at the end were removed or the head was changed",
            )
    return Verification(
        checked, first, after if checked else None, head_seq, bytes(head_hash), pruned_seq, broken
    )


def check_retention(months: int) -> None:
    """Refuse a retention shorter than the legal minimum before asking the database."""
    if months < MINIMUM_RETENTION_MONTHS:
        raise ValueError(
            f"the audit log is kept at least {MINIMUM_RETENTION_MONTHS} months, not {months}"
        )


def apply_retention(conn: psycopg.Connection, months: int, *, now: datetime | None = None) -> int:
    """Remove the audit rows older than ``months`` (``now``: the clock, for tests); return how
    many. The database applies it (migration 0023): only a prefix of the chain, never less
    than 24 months, never with a clock ahead of its own."""
    check_retention(months)
    with conn.transaction():
        row = conn.execute(
            "SELECT telemon_apply_audit_retention(make_interval(months => %s), "
            "coalesce(%s, now()))",
            (months, now),
        ).fetchone()
    return int(row[0]) if row else 0
