"""``telemon alerts replay``: the current protocol and a candidate replayed side by side."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import psycopg

from alerts.protocol import LEVELS, Protocol, ProtocolError, load_protocols, parse_protocol
from alerts.replay import SimulatedEpisode, by_patient_week, replay

_LEVEL_WORDS = {value: word for word, value in LEVELS.items()}


class ReplayError(ValueError):
    """The request cannot be replayed: said in one line a clinical lead can act on."""


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    candidate: Path
    start: datetime
    end: datetime  # exclusive
    patient_codes: tuple[str, ...] = ()
    every: timedelta = timedelta(minutes=30)
    show_all: bool = False


def load_candidate(path: Path, current: dict[str, Protocol]) -> Protocol:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        candidate = parse_protocol(raw, str(path))
    except tomllib.TOMLDecodeError as exc:
        raise ReplayError(f"{path}: TOML syntax: {exc}") from None
    except ProtocolError as exc:
        raise ReplayError(str(exc)) from None
    if candidate.key not in current:
        raise ReplayError(
            f"{path}: key {candidate.key!r} is not a protocol patients follow; "
            f"known: {', '.join(sorted(current))}"
        )
    return candidate


def patient_ids(conn: psycopg.Connection, codes: Sequence[str]) -> tuple[list[int], dict[int, str]]:
    """The ids of ``codes`` (everyone when empty), and every id's code for printing."""
    rows = conn.execute("SELECT id, code FROM patients ORDER BY id").fetchall()
    code_of = {patient_id: code for patient_id, code in rows}
    if not codes:
        return list(code_of), code_of
    by_code = {code: patient_id for patient_id, code in rows}
    unknown = [c for c in codes if c not in by_code]
    if unknown:
        raise ReplayError(f"unknown patient codes: {', '.join(unknown)}")
    return sorted(by_code[c] for c in codes), code_of


def run_replay(conn: psycopg.Connection, request: ReplayRequest) -> Iterator[str]:
    if request.end <= request.start:
        raise ReplayError("--to must not be before --from")
    protocols = load_protocols()
    candidate = load_candidate(request.candidate, protocols)
    current = protocols[candidate.key]
    ids, code_of = patient_ids(conn, request.patient_codes)
    period = f"{request.start:%Y-%m-%d} to {request.end - timedelta(days=1):%Y-%m-%d}"
    yield (
        f"Replaying {candidate.key}: current {current.version} and candidate "
        f"{candidate.version} ({request.candidate}), {period}, every "
        f"{int(request.every.total_seconds() // 60)} min. Nothing is written, nobody is texted."
    )
    run = partial(
        replay, conn, patient_ids=ids, start=request.start, end=request.end, every=request.every
    )
    before, after = run(current), run(candidate)
    rows = by_patient_week(before, after)
    shown = [row for row in rows if request.show_all or row.differs]
    if shown:
        yield f"{'patient':<10} {'week':<9} {'current':<44} candidate"
    for row in shown:
        yield (
            f"{code_of.get(row.patient_id, row.patient_id)!s:<10} {row.week:<9} "
            f"{_cell(row.current):<44} {_cell(row.candidate)}"
        )
    yield (
        f"Episodes: current {len(before)} ({len({e.patient_id for e in before})} patients), "
        f"candidate {len(after)} ({len({e.patient_id for e in after})} patients); "
        f"patient-weeks that differ: {sum(row.differs for row in rows)} of {len(rows)}."
    )


def _cell(episodes: Sequence[SimulatedEpisode]) -> str:
    if not episodes:
        return "-"
    described = [
        ", ".join(f"{rule} {_LEVEL_WORDS[level]}" for rule, level in e.findings.items())
        for e in episodes
    ]
    return f"{len(episodes)}: " + "; ".join(described)
