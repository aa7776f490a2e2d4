"""The debounce state of every (patient, protocol, rule), kept in ``alert_rule_state``.

Rows equal to the initial state are not kept. For missing_data rules the time of the last
evaluation (their ``last_at``) alone is not worth a row per patient and minute: it only stops
the same instant being counted twice, and every later evaluation is newer anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from alerts.debounce import DebounceState

FIELDS: tuple[str, ...] = tuple(f.name for f in fields(DebounceState))
_COLUMNS = sql.SQL(", ").join(sql.Identifier(name) for name in FIELDS)


def load_states(
    conn: psycopg.Connection,
    protocol: str,
    rules: Sequence[str],
    patient_ids: np.ndarray,
    *,
    everyone: bool = False,
) -> dict[str, DebounceState]:
    """The stored state of ``rules`` for ``patient_ids`` (sorted), initial where none is kept."""
    initial = DebounceState.initial(patient_ids.size)
    arrays = {rule: {name: getattr(initial, name).copy() for name in FIELDS} for rule in rules}
    subset = sql.SQL("" if everyone else "AND patient_id = ANY(%(ids)s)")
    query = sql.SQL(
        "SELECT rule, patient_id, {} FROM alert_rule_state WHERE protocol = %(protocol)s {}"
    ).format(_COLUMNS, subset)
    params = {"protocol": protocol, "ids": patient_ids.tolist()}
    rows = conn.execute(query, params).fetchall()
    for rule, columns in _by_rule(rows).items():
        if rule not in arrays:
            continue  # a rule since removed from the protocol
        patient = np.asarray(columns[0], dtype=np.int64)
        index = np.searchsorted(patient_ids, patient)
        inside = index < patient_ids.size
        inside[inside] = patient_ids[index[inside]] == patient[inside]
        for name, values in zip(FIELDS, columns[1:], strict=True):
            target = arrays[rule][name]
            target[index[inside]] = np.asarray(values, dtype=target.dtype)[inside]
    return {rule: DebounceState(**values) for rule, values in arrays.items()}


def _by_rule(rows: list[TupleRow]) -> dict[str, list[TupleRow]]:
    grouped: dict[str, list[TupleRow]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(row[1:])
    return {rule: list(zip(*members, strict=True)) for rule, members in grouped.items()}


def _significant(state: DebounceState, with_last_at: bool) -> list[np.ndarray]:
    return [getattr(state, name) for name in FIELDS if with_last_at or name != "last_at"]


def save_states(
    conn: psycopg.Connection,
    protocol: str,
    rule: str,
    patient_ids: np.ndarray,
    stored: DebounceState,
    new: DebounceState,
    *,
    with_last_at: bool,
) -> int:
    """Write the patients whose state changed since ``stored``; the number of rows touched."""
    old_values = _significant(stored, with_last_at)
    new_values = _significant(new, with_last_at)
    changed = np.logical_or.reduce([a != b for a, b in zip(old_values, new_values, strict=True)])
    initial = _significant(DebounceState.initial(len(new)), with_last_at)
    kept = np.logical_or.reduce([a != b for a, b in zip(new_values, initial, strict=True)])
    gone = np.flatnonzero(changed & ~kept)
    if gone.size:
        conn.execute(
            "DELETE FROM alert_rule_state WHERE protocol = %s AND rule = %s "
            "AND patient_id = ANY(%s)",
            (protocol, rule, patient_ids[gone].tolist()),
        )
    write = np.flatnonzero(changed & kept)
    if write.size:
        _upsert(conn, protocol, rule, patient_ids[write], new, write)
    return int(gone.size + write.size)


def _upsert(
    conn: psycopg.Connection,
    protocol: str,
    rule: str,
    patient_ids: np.ndarray,
    state: DebounceState,
    index: np.ndarray,
) -> None:
    # COPY into a scratch table then one upsert: thousands of rows (a first run, a tick after a
    # gap) cost one round trip instead of one each.
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS alert_rule_state_incoming "
        "(LIKE alert_rule_state INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    columns = [getattr(state, name)[index].tolist() for name in FIELDS]
    copy_sql = sql.SQL(
        "COPY alert_rule_state_incoming (protocol, rule, patient_id, {}) FROM STDIN"
    ).format(_COLUMNS)
    with conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for patient, *values in zip(patient_ids.tolist(), *columns, strict=True):
            copy.write_row((protocol, rule, patient, *values))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in FIELDS
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO alert_rule_state (protocol, rule, patient_id, {columns}) "
            "SELECT protocol, rule, patient_id, {columns} FROM alert_rule_state_incoming "
            "ON CONFLICT (protocol, patient_id, rule) DO UPDATE SET {updates}, updated_at = now()"
        ).format(columns=_COLUMNS, updates=updates)
    )
    conn.execute("DELETE FROM alert_rule_state_incoming")
