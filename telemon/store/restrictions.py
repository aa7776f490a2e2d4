"""Oscuramento in SQL: the one predicate over ``patient_restrictions`` (migration 0026).

A restriction hides, from everyone but the patient's GP, the rows of one protocol, of some
metrics, or of a period. The dashboard adds this predicate to every query it makes for someone
else; the notifier uses it to keep a hidden finding's value out of the service centre's SMS.
"""

from __future__ import annotations

from telemon.metrics import METRICS_BY_ID

# Each metric's id and key, for matching a finding's evidence (keys) to a restriction (ids).
_METRIC_KEYS = ", ".join(f"({m.id}, '{m.key}')" for m in METRICS_BY_ID.values())


def not_hidden(
    *,
    patient: str,
    metric: str | None = None,
    protocol: str | None = None,
    at: str | None = None,
    until: str | None = None,
    evidence: str | None = None,
) -> str:
    """SQL predicate: the row (of ``patient``, an SQL expression, as are the others) is hidden
    by none of the patient's restrictions in force. ``metric`` the row's metric id,
    ``protocol`` its protocol, ``at`` its time, or ``at``..``until`` the interval it covers;
    ``evidence`` a finding's evidence (telemon.findings), hidden when any value it shows is of
    a hidden metric: a NEWS2 score's parameters, a blood-pressure rule's both pressures."""
    hidden = []
    if metric is not None:
        hidden.append(f"{metric} = ANY (r.metric_ids)")
    if evidence is not None:
        hidden.append(
            f"EXISTS (SELECT 1 FROM (VALUES {_METRIC_KEYS}) m(id, key) "
            f"WHERE m.id = ANY (r.metric_ids) AND ({evidence} -> 'values' ? m.key "
            f"OR {evidence} -> 'means' ? m.key "
            f"OR {evidence} -> 'parameters' "
            "@> jsonb_build_array(jsonb_build_object('metric', m.key))))"
        )
    if protocol is not None:
        hidden.append(f"r.protocol = {protocol}")
    if at is not None:
        hidden.append(f"({at} < r.period_to AND {until or at} >= r.period_from)")
    if not hidden:
        return "true"
    return (
        "NOT EXISTS (SELECT 1 FROM patient_restrictions r "
        f"WHERE r.patient_id = {patient} AND r.revoked_at IS NULL AND ({' OR '.join(hidden)}))"
    )
