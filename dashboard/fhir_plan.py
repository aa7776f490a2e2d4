"""The monitoring plan and the episodes as FHIR R4: a CarePlan whose activities (one per
protocol) instantiate ActivityDefinitions requiring ObservationDefinitions, whose
``qualifiedInterval`` ranges are the thresholds as they apply to the patient (the protocol's,
or the patient's own with its reason), as the HL7 Italia telemonitoring guide's *Piano di
Telemonitoraggio* does (hl7-it/telemonitoraggio, input/fsh/profiles/pianoTM/); each episode
as a DetectedIssue (severity, when, the findings, how it ended).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from alerts.protocol import Band, PatientOverride, Protocol, rule_title
from dashboard import restrictions
from dashboard.authz import Principal
from dashboard.bands import effective_protocol, protocols
from dashboard.glance import schedules
from telemon.metrics import METRICS, Metric
from telemon.reasons import OPS, duration, number

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
LEVELS = "urn:telemon:alert-level"
RULES = "urn:telemon:protocol-rule"
# The HL7 Italia guide's CarePlan category: csTipologiaPiano#01 "Piano di Telemonitoraggio".
PLAN_CATEGORY = "http://hl7.it/fhir/telemonitoraggio/CodeSystem/cs-tipologia-piano"
RANGE_CATEGORY = "http://hl7.org/fhir/observation-range-category"
_VALUE_KINDS = ("threshold", "aggregate")
# A band fires at ``value op limit``: the range of values it fires for.
_LOW_OPS = ("<", "<=")


@dataclass(frozen=True, slots=True)
class Assignment:
    protocol: str
    overrides: dict[str, Any]
    started_at: datetime
    ended_at: datetime | None


def _fhir_id(*parts: object) -> str:
    # FHIR ids take [A-Za-z0-9-.]: protocol and rule keys are [a-z0-9_].
    return "-".join(str(p) for p in parts).replace("_", "-")[:64]


def _interval(band: Band, metric: Metric, rule_text: str, own: bool, reason: str) -> dict[str, Any]:
    bound = {"value": band.value, "unit": metric.unit, "system": UCUM, "code": metric.unit}
    condition = f"{band.level}: {rule_text}: {metric.short_label_en} {OPS[band.op]} " + number(
        band.value, "en"
    )
    condition += f" {metric.display_unit_en}"
    if own:
        condition += " (the patient's own threshold" + (f": {reason})" if reason else ")")
    interval: dict[str, Any] = {
        "context": {
            "coding": [{"system": LEVELS, "code": band.level}],
            "text": band.level,
        },
        "range": {"high": bound} if band.op in _LOW_OPS else {"low": bound},
        "condition": condition,
    }
    if band.level == "red":
        interval["category"] = "critical"
    return interval


def _definitions(
    patient_id: int, key: str, applied: Protocol, default: Protocol, override: PatientOverride
) -> list[dict[str, Any]]:
    """One ObservationDefinition per metric the protocol's value rules read, its bands as
    qualified intervals."""
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for rule in applied.rules:
        if rule.kind not in _VALUE_KINDS or not rule.enabled:
            continue
        base = {(b.level, b.channel): (b.op, b.value) for b in default.rule(rule.key).bands}
        reason = override.rules[rule.key].reason if rule.key in override.rules else ""
        for band in sorted(rule.bands, key=lambda b: b.severity):
            metric = METRICS.get(band.channel)
            if metric is None:
                continue
            own = base.get((band.level, band.channel)) != (band.op, band.value)
            by_metric.setdefault(metric.key, []).append(
                _interval(band, metric, rule_title(rule, "en"), own, reason)
            )
    return [
        {
            "resourceType": "ObservationDefinition",
            "id": _fhir_id(patient_id, key, metric_key),
            "code": {
                "coding": [
                    {
                        "system": LOINC,
                        "code": METRICS[metric_key].loinc,
                        "display": METRICS[metric_key].label_en,
                    }
                ],
                "text": METRICS[metric_key].label_en,
            },
            "permittedDataType": ["Quantity"],
            "quantitativeDetails": {
                "unit": {"coding": [{"system": UCUM, "code": METRICS[metric_key].unit}]}
            },
            "qualifiedInterval": intervals,
        }
        for metric_key, intervals in by_metric.items()
    ]


def assignments(
    conn: psycopg.Connection, patient_id: int, reader: Principal | None
) -> list[Assignment]:
    """The patient's protocols, but one the patient hid from ``reader`` (None: all)."""
    shown = restrictions.visible(reader, patient="patient_id", protocol="protocol")
    rows = conn.execute(
        "SELECT protocol, overrides, started_at, ended_at FROM patient_protocols "
        f"WHERE patient_id = %s AND {shown} ORDER BY started_at, protocol",
        (patient_id,),
    ).fetchall()
    return [Assignment(*row) for row in rows]


def plan_resources(
    *,
    patient_id: int,
    gp_id: int,
    gp_name: str,
    assigned: list[Assignment],
    devices: list[str],
    base: str,
    hidden: frozenset[str] | set[str] = frozenset(),
) -> list[dict[str, Any]]:
    """The CarePlan, then its ActivityDefinitions and ObservationDefinitions. ``devices``:
    references to the patient's devices in use, the activities' performers; ``hidden``: the
    metrics the patient hid from the reader (no definition, no schedule of theirs)."""
    activities: list[dict[str, Any]] = []
    definitions: list[dict[str, Any]] = []
    for a in assigned:
        default = protocols().get(a.protocol)
        applied = effective_protocol(a.protocol, a.overrides)
        if default is None or applied is None:
            continue
        override = PatientOverride.model_validate(a.overrides or {})
        observation_defs = [
            d
            for d in _definitions(patient_id, a.protocol, applied, default, override)
            if d["id"] not in {_fhir_id(patient_id, a.protocol, m) for m in hidden}
        ]
        watch = [
            f"{METRICS[s.metric].label_en} every {duration(s.every_seconds, 'en')}"
            for s in schedules(applied)
            if s.metric not in hidden
        ]
        activity_id = _fhir_id(patient_id, a.protocol)
        canonical = f"{base}/ActivityDefinition/{activity_id}"
        definitions.append(
            {
                "resourceType": "ActivityDefinition",
                "id": activity_id,
                "url": canonical,
                "name": a.protocol,
                "title": rule_title(applied, "en"),
                "status": "active" if a.ended_at is None else "retired",
                "description": "; ".join(watch) or rule_title(applied, "en"),
                "kind": "ServiceRequest",
                "observationRequirement": [
                    {"reference": f"ObservationDefinition/{d['id']}"} for d in observation_defs
                ],
            }
        )
        definitions.extend(observation_defs)
        detail: dict[str, Any] = {
            "instantiatesCanonical": [canonical],
            "code": {
                "coding": [{"system": RULES, "code": a.protocol, "display": applied.title}],
                "text": rule_title(applied, "en"),
            },
            "status": "in-progress" if a.ended_at is None else "completed",
            "scheduledPeriod": {"start": a.started_at.isoformat()}
            | ({"end": a.ended_at.isoformat()} if a.ended_at else {}),
        }
        if watch:  # none when the patient hid every metric it watches: FHIR has no empty string
            detail["description"] = "; ".join(watch)
        if devices and a.ended_at is None:
            detail["performer"] = [{"reference": ref} for ref in devices]
        activities.append({"detail": detail})
    starts = [a.started_at for a in assigned]
    ongoing = any(a.ended_at is None for a in assigned)
    period: dict[str, str] = {"start": min(starts).isoformat()} if starts else {}
    if starts and not ongoing:
        period["end"] = max(a.ended_at for a in assigned if a.ended_at).isoformat()
    careplan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": _fhir_id("plan", patient_id),
        "identifier": [{"system": "urn:telemon:care-plan", "value": str(patient_id)}],
        "status": "active" if ongoing else "completed",
        "intent": "plan",
        "category": [
            {
                "coding": [
                    {"system": PLAN_CATEGORY, "code": "01", "display": "Piano di Telemonitoraggio"}
                ]
            }
        ],
        "title": "Telemonitoring plan",
        "subject": {"reference": f"Patient/{patient_id}"},
        "author": {"reference": f"Practitioner/{gp_id}", "display": gp_name},
        "activity": activities,
    }
    if period:
        careplan["period"] = period
    return [careplan, *definitions]


_SEVERITY = {2: ("high", "red"), 1: ("moderate", "amber")}


def episode_resources(
    conn: psycopg.Connection,
    patient_id: int,
    reader: Principal | None,
    *,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """Each episode (changed ``since``, when given) as a DetectedIssue: its severity, when
    it was open, its findings in words (but those the patient hid from ``reader``), and who
    resolved it how."""
    rows = conn.execute(
        "SELECT e.id, e.severity, e.state, e.opened_at, e.resolved_at, e.outcome, "
        "e.resolution_note, e.resolved_by, s.display_name, "
        "coalesce((SELECT array_agg(coalesce(a.reason, a.rule) ORDER BY a.opened_at) "
        f"FROM alerts a WHERE a.episode_id = e.id AND {restrictions.finding_visible(reader)}), "
        "'{}') "
        "FROM episodes e LEFT JOIN staff s ON s.id = e.resolved_by "
        "WHERE e.patient_id = %s AND e.updated_at >= coalesce(%s::timestamptz, '-infinity') "
        "ORDER BY e.opened_at",
        (patient_id, since),
    ).fetchall()
    out = []
    for episode_id, severity, state, opened, resolved, outcome, note, by, by_name, findings in rows:
        fhir_severity, level = _SEVERITY.get(severity, ("low", "amber"))
        issue: dict[str, Any] = {
            "resourceType": "DetectedIssue",
            "id": _fhir_id("episode", episode_id),
            "identifier": [{"system": "urn:telemon:episode", "value": str(episode_id)}],
            "status": "final" if state == "resolved" else "preliminary",
            "code": {"coding": [{"system": LEVELS, "code": level}], "text": f"{level} episode"},
            "severity": fhir_severity,
            "patient": {"reference": f"Patient/{patient_id}"},
            "identifiedPeriod": {"start": opened.isoformat()}
            | ({"end": resolved.isoformat()} if resolved else {}),
        }
        if findings:
            issue["detail"] = "; ".join(findings)
        if resolved is not None:
            mitigation: dict[str, Any] = {
                "action": {"text": outcome or "resolved"},
                "date": resolved.isoformat(),
            }
            if by is not None:
                mitigation["author"] = {"reference": f"Practitioner/{by}", "display": by_name}
            if note:
                mitigation["action"]["text"] += f": {note}"
            issue["mitigation"] = [mitigation]
        out.append(issue)
    return out
