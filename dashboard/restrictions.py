"""Oscuramento: data a patient asked to hide from everyone but their GP (migration 0026).

A restriction hides one care protocol (its findings and the readings of the metrics it
watches), one metric category (a metric, or a group read together: blood pressure), or a
period (readings taken and findings opened in it). ``visible`` is the one filter: the query
builders that read observations, the hourly rollup and findings add it to their WHERE, so every
page, API answer, FHIR resource and export made for someone else leaves the rows out. The GP
sees everything (their scope holds only their own patients); the alerts engine, which reads no
restriction, still evaluates everything, so the GP is alerted.

What a nurse sees of an episode whose findings are hidden: the episode (it may be red and
routed to the centre: hiding it would hide a danger), its severity and state, and no finding
but the count of those withheld, with the words "findings your access does not show: call the
patient's GP" (docs/privacy.md).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

import psycopg
from psycopg.rows import dict_row

from dashboard import audit
from dashboard.authz import Principal
from dashboard.bands import protocols
from dashboard.models import RestrictionIn, RestrictionItem
from dashboard.web import LOCAL_TZ
from telemon.metrics import GROUPS, METRICS, METRICS_BY_ID, group_of, panel_of
from telemon.store.restrictions import not_hidden

KINDS = ("protocol", "metric_category", "period")

# The pages that show the form (templates/_restrictions.html), and where its answer returns:
# a fixed table, so a form field never names a redirect target.
Back = Literal["patient", "admin"]
RETURN_TO: dict[str, str] = {
    "patient": "/patients/{patient_id}#restrictions",
    "admin": "/admin/patients/{patient_id}/restrictions",
}


class InvalidRestriction(ValueError):
    """A restriction that names nothing the platform knows (a message for the form)."""


def sees_everything(user: Principal | None) -> bool:
    # The GP's scope is their own patients: for them no restriction applies. None: no reader
    # but the record itself (the documents the GP validates and freezes).
    return user is None or user.role == "gp"


def visible(
    user: Principal | None,
    *,
    patient: str,
    metric: str | None = None,
    protocol: str | None = None,
    at: str | None = None,
    until: str | None = None,
    evidence: str | None = None,
) -> str:
    """SQL predicate: the row (of ``patient``, an SQL expression, as are the others) is not
    hidden from ``user``. ``metric`` the row's metric id, ``protocol`` its protocol, ``at`` its
    time, or ``at``..``until`` the interval it covers (an hourly bucket), ``evidence`` the
    finding's evidence (JSON)."""
    if sees_everything(user):
        return "true"
    return not_hidden(
        patient=patient, metric=metric, protocol=protocol, at=at, until=until, evidence=evidence
    )


def finding_visible(user: Principal | None, alias: str = "a") -> str:
    """SQL predicate over ``alerts AS {alias}``: a finding the patient did not hide from
    ``user`` (by its protocol, its metric, a metric whose value its evidence shows, or when
    it opened)."""
    return visible(
        user,
        patient=f"{alias}.patient_id",
        metric=f"{alias}.metric_id",
        protocol=f"{alias}.protocol",
        at=f"{alias}.opened_at",
        evidence=f"({alias}.details -> 'evidence')",
    )


def readings_visible(user: Principal | None, alias: str = "o") -> str:
    """SQL predicate over ``observations AS {alias}``: a reading not hidden from ``user``."""
    return visible(
        user, patient=f"{alias}.patient_id", metric=f"{alias}.metric_id", at=f"{alias}.measured_at"
    )


def rollup_visible(user: Principal | None, alias: str = "h") -> str:
    """SQL predicate over ``observation_hourly AS {alias}``: an hour none of whose readings
    is hidden from ``user``."""
    return visible(
        user,
        patient=f"{alias}.patient_id",
        metric=f"{alias}.metric_id",
        at=f"{alias}.bucket",
        until=f"{alias}.bucket + interval '1 hour'",
    )


def withholds(conn: psycopg.Connection, user: Principal | None, patient_id: int) -> bool:
    """Whether some of the patient's data is hidden from ``user`` (an export says so)."""
    if sees_everything(user):
        return False
    row = conn.execute(
        "SELECT 1 FROM patient_restrictions WHERE patient_id = %s AND revoked_at IS NULL",
        (patient_id,),
    ).fetchone()
    return row is not None


def hidden_metrics(conn: psycopg.Connection, user: Principal | None, patient_id: int) -> set[str]:
    """The metrics whose every reading is hidden from ``user`` (by a protocol or a category):
    no chart of theirs, not even empty, for its title would tell."""
    if sees_everything(user):
        return set()
    return {
        METRICS_BY_ID[m].key
        for (m,) in conn.execute(
            "SELECT DISTINCT unnest(metric_ids) FROM patient_restrictions "
            "WHERE patient_id = %s AND revoked_at IS NULL",
            (patient_id,),
        )
        if m in METRICS_BY_ID
    }


def hidden_by_patient(
    conn: psycopg.Connection, user: Principal | None, patient_ids: list[int]
) -> dict[int, tuple[set[str], set[str]]]:
    """For lists of patients: each one's protocols and metrics hidden from ``user``."""
    if sees_everything(user) or not patient_ids:
        return {}
    found: dict[int, tuple[set[str], set[str]]] = {}
    for patient_id, protocol, metric_ids in conn.execute(
        "SELECT patient_id, protocol, metric_ids FROM patient_restrictions "
        "WHERE patient_id = ANY(%s) AND revoked_at IS NULL",
        (patient_ids,),
    ):
        protocols_, metrics = found.setdefault(patient_id, (set(), set()))
        if protocol:
            protocols_.add(protocol)
        metrics.update(METRICS_BY_ID[m].key for m in metric_ids if m in METRICS_BY_ID)
    return found


def categories() -> list[str]:
    """The metric categories a patient may hide: each group, and each metric in none (a
    blood pressure's mean is hidden with the blood pressure, not alone)."""
    return [g.key for g in GROUPS] + [
        k for k in METRICS if group_of(k) is None and panel_of(k) is None
    ]


def _with_panels(metrics: list[str]) -> list[str]:
    """The metrics and those measured with them (telemon.metrics.PANELS): hiding a
    systolic pressure and showing the mean would not hide it."""
    return sorted({m for k in metrics for m in (panel_of(k) or (k,))})


def _category_metrics(category: str) -> list[str]:
    group = next((g for g in GROUPS if g.key == category), None)
    if group is not None:
        return _with_panels(list(group.members))
    if category in METRICS and group_of(category) is None:
        return [category]
    raise InvalidRestriction(f"unknown metric category {category!r}")


def _protocol_metrics(name: str) -> list[str]:
    protocol = protocols().get(name)
    if protocol is None:
        raise InvalidRestriction(f"unknown care protocol {name!r}")
    return _with_panels([m for rule in protocol.rules for m in rule.metrics if m in METRICS])


def _local_start(day: date) -> datetime:
    return datetime.combine(day, time(), LOCAL_TZ).astimezone(UTC)


def list_for(conn: psycopg.Connection, patient_id: int) -> list[RestrictionItem]:
    """The patient's restrictions, active first, newest first (for the GP and the admin)."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT r.id, r.kind, r.protocol, r.category, r.period_from, r.period_to, "
            "r.requested_on, r.reason, r.recorded_at, s.display_name AS recorded_by, "
            "r.revoked_at, v.display_name AS revoked_by "
            "FROM patient_restrictions r JOIN staff s ON s.id = r.recorded_by "
            "LEFT JOIN staff v ON v.id = r.revoked_by WHERE r.patient_id = %s "
            "ORDER BY r.revoked_at IS NOT NULL, r.recorded_at DESC, r.id DESC",
            (patient_id,),
        )
        .fetchall()
    )
    return [RestrictionItem(**r) for r in rows]


def form_context(
    conn: psycopg.Connection, patient_id: int, protocol_names: list[str], back: Back
) -> dict[str, object]:
    """What templates/_restrictions.html shows: the patient's restrictions, what may be hidden
    (the patient's protocols, the metric categories) and the page the form returns to."""
    return {
        "restrictions": list_for(conn, patient_id),
        "restriction_patient": patient_id,
        "restriction_protocols": protocol_names,
        "restriction_categories": categories(),
        "restriction_back": back,
    }


def record(conn: psycopg.Connection, user: Principal, patient_id: int, new: RestrictionIn) -> int:
    """Record the patient's request (the caller has checked the user may, for this patient)."""
    protocol = category = None
    period_from = period_to = None
    metrics: list[str] = []
    if new.kind == "protocol":
        if not new.protocol:
            raise InvalidRestriction("a protocol restriction names its protocol")
        protocol = new.protocol
        metrics = _protocol_metrics(protocol)
    elif new.kind == "metric_category":
        if not new.category:
            raise InvalidRestriction("a metric category restriction names its category")
        category = new.category
        metrics = _category_metrics(category)
    else:
        if new.first is None or new.last is None or new.last < new.first:
            raise InvalidRestriction("a period needs its first and last day, in that order")
        period_from = _local_start(new.first)
        period_to = _local_start(new.last + timedelta(days=1))
    if new.requested_on > datetime.now(LOCAL_TZ).date():
        raise InvalidRestriction("the request date is in the future")
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO patient_restrictions (patient_id, kind, protocol, category, "
            "metric_ids, period_from, period_to, requested_on, reason, recorded_by) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                patient_id,
                new.kind,
                protocol,
                category,
                [METRICS[m].id for m in metrics],
                period_from,
                period_to,
                new.requested_on,
                new.reason,
                user.id,
            ),
        ).fetchone()
        assert row is not None
        audit.record(
            conn,
            user,
            "patient.restriction.record",
            patient_id=patient_id,
            object_type="restriction",
            object_id=row[0],
            details={
                "kind": new.kind,
                "protocol": protocol,
                "category": category,
                "from": new.first.isoformat() if new.first else None,
                "to": new.last.isoformat() if new.last else None,
                "requested_on": new.requested_on.isoformat(),
            },
        )
    return int(row[0])


def revoke(conn: psycopg.Connection, user: Principal, patient_id: int, restriction_id: int) -> None:
    """The patient withdrew the request: the data shows again (LookupError: no such active
    restriction of this patient)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE patient_restrictions SET revoked_at = now(), revoked_by = %s "
            "WHERE id = %s AND patient_id = %s AND revoked_at IS NULL RETURNING id",
            (user.id, restriction_id, patient_id),
        ).fetchone()
        if row is None:
            raise LookupError(restriction_id)
        audit.record(
            conn,
            user,
            "patient.restriction.revoke",
            patient_id=patient_id,
            object_type="restriction",
            object_id=restriction_id,
        )
