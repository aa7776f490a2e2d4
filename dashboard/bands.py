"""Threshold bands to draw on a patient's charts: their protocols with their own overrides."""

from __future__ import annotations

import json
from functools import lru_cache

import psycopg
from pydantic import ValidationError

from alerts.protocol import (
    PatientOverride,
    Protocol,
    ProtocolError,
    apply_override,
    load_protocols,
    rule_title,
)
from dashboard.models import BandOut

# Rule kinds whose bands compare a metric's own values (a trend compares changes, a score
# compares points, a missing-data rule compares hours): only those belong on a vitals chart.
_DRAWABLE = ("threshold", "aggregate")


@lru_cache(maxsize=1)
def protocols() -> dict[str, Protocol]:
    return load_protocols()


def effective_protocol(name: str, overrides: dict[str, object]) -> Protocol | None:
    """The protocol as it applies to the patient; a stored override that no longer validates
    falls back to the protocol itself rather than hiding the chart."""
    if name not in protocols():
        return None
    return _overridden(name, json.dumps(overrides or {}, sort_keys=True))


# Pure in (protocol, overrides), and a list of 200 patients asks for the same few pairs.
@lru_cache(maxsize=1024)
def _overridden(name: str, overrides: str) -> Protocol:
    protocol = protocols()[name]
    try:
        return apply_override(protocol, PatientOverride.model_validate_json(overrides))
    except (ValidationError, ProtocolError):
        return protocol


def bands_for_patient(
    conn: psycopg.Connection, patient_id: int, language: str = "en"
) -> dict[str, list[BandOut]]:
    out: dict[str, list[BandOut]] = {}
    for name, overrides in conn.execute(
        "SELECT protocol, overrides FROM patient_protocols "
        "WHERE patient_id = %s AND ended_at IS NULL ORDER BY protocol",
        (patient_id,),
    ):
        protocol = effective_protocol(name, overrides)
        if protocol is None:
            continue
        for rule in protocol.rules:
            if rule.kind not in _DRAWABLE or not rule.enabled:
                continue
            for band in rule.bands:
                drawn = BandOut(
                    level=band.level, op=band.op, value=band.value, rule=rule_title(rule, language)
                )
                same = [
                    b
                    for b in out.get(band.channel, [])
                    if (b.level, b.op, b.value) == (drawn.level, drawn.op, drawn.value)
                ]
                if not same:
                    out.setdefault(band.channel, []).append(drawn)
    return out
