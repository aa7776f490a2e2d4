"""Enrolment writes: enrol, edit with history, discharge. Each is one transaction with its
history row (enrolment_history: who, what before and after, when, why) and its audit row."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from dashboard import alert_actions, audit, period_reports
from dashboard.administration import (
    InvalidInput,
    ensure_code_free,
    ensure_patient_references,
)
from dashboard.authz import Principal, patient_scope
from dashboard.enrolment_form import Enrolment
from telemon.database import one_row

_FIELDS = (
    "code",
    "given_name",
    "family_name",
    "birth_date",
    "sex",
    "phone",
    "language",
    "gp_id",
    "care_team_id",
    "consent_date",
)


def snapshot(conn: psycopg.Connection, patient_id: int) -> dict[str, Any] | None:
    """The enrolment as stored: its fields and current protocols with their overrides."""
    row = (
        conn.cursor(row_factory=dict_row)
        .execute(
            f"SELECT {', '.join(_FIELDS)}, consent_recorded_by, discharged_at, discharge_date, "
            "discharge_reason FROM patients WHERE id = %s",
            (patient_id,),
        )
        .fetchone()
    )
    if row is None:
        return None
    row["protocols"] = {
        name: overrides
        for name, overrides in conn.execute(
            "SELECT protocol, overrides FROM patient_protocols "
            "WHERE patient_id = %s AND ended_at IS NULL ORDER BY protocol",
            (patient_id,),
        )
    }
    return row


def _comparable(state: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v.isoformat() if isinstance(v, date | datetime) else v)
        for k, v in state.items()
        if k in (*_FIELDS, "protocols")
    }


def _diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    old, new = _comparable(before), _comparable(after)
    return {k: [old.get(k), new.get(k)] for k in new if old.get(k) != new.get(k)}


def record_history(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    action: str,
    changes: dict[str, Any],
    reason: str | None,
) -> None:
    conn.execute(
        "INSERT INTO enrolment_history (patient_id, actor_id, action, changes, reason) "
        "VALUES (%s, %s, %s, %s, %s)",
        (patient_id, user.id, action, Jsonb(changes), reason),
    )


def history(conn: psycopg.Connection, patient_id: int) -> list[dict[str, Any]]:
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT h.at, h.action, h.changes, h.reason, s.display_name AS actor "
            "FROM enrolment_history h JOIN staff s ON s.id = h.actor_id "
            "WHERE h.patient_id = %s ORDER BY h.at DESC, h.id DESC",
            (patient_id,),
        )
        .fetchall()
    )


def enrolled_patients(conn: psycopg.Connection, user: Principal) -> list[dict[str, Any]]:
    """The patients of the admin's organisation."""
    scope, params = patient_scope(user, permission="patient.enrol")
    return (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT p.id, p.code, p.given_name, p.family_name, p.discharged_at, "
            "s.display_name AS gp FROM patients p JOIN staff s ON s.id = p.gp_id "
            f"WHERE {scope} "
            "ORDER BY p.discharged_at IS NOT NULL, p.family_name, p.given_name",
            params,
        )
        .fetchall()
    )


def enrol(conn: psycopg.Connection, user: Principal, new: Enrolment) -> int:
    with conn.transaction():
        ensure_patient_references(conn, user, new.gp_id, new.care_team_id)
        ensure_code_free(conn, new.code)
        patient_id = one_row(
            conn.execute(
                "INSERT INTO patients (code, given_name, family_name, birth_date, sex, phone, "
                "language, gp_id, care_team_id, consent_date, consent_recorded_by) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    new.code,
                    new.given_name,
                    new.family_name,
                    new.birth_date,
                    new.sex,
                    new.phone,
                    new.language,
                    new.gp_id,
                    new.care_team_id,
                    new.consent_date,
                    user.id,
                ),
            )
        )[0]
        for name, overrides in new.protocols.items():
            conn.execute(
                "INSERT INTO patient_protocols (patient_id, protocol, overrides) "
                "VALUES (%s, %s, %s)",
                (patient_id, name, Jsonb(overrides)),
            )
        after = snapshot(conn, patient_id)
        assert after is not None
        record_history(conn, user, patient_id, "enrol", _diff({}, after), None)
        audit.record(
            conn,
            user,
            "patient.enrol",
            patient_id=patient_id,
            object_type="patient",
            object_id=patient_id,
            details={"protocols": sorted(new.protocols), "gp_id": new.gp_id},
        )
    return int(patient_id)


def update(
    conn: psycopg.Connection, user: Principal, patient_id: int, new: Enrolment, reason: str
) -> dict[str, list[Any]]:
    """Apply the edited form; returns what changed (nothing changed: no history row)."""
    with conn.transaction():
        before = snapshot(conn, patient_id)
        if before is None:
            raise LookupError(patient_id)
        if before["discharged_at"] is not None:
            raise InvalidInput("the patient is discharged")
        ensure_patient_references(conn, user, new.gp_id, new.care_team_id)
        conn.execute(
            "UPDATE patients SET given_name = %s, family_name = %s, birth_date = %s, sex = %s, "
            "phone = %s, language = %s, gp_id = %s, care_team_id = %s, consent_date = %s, "
            "consent_recorded_by = CASE WHEN consent_date IS DISTINCT FROM %s THEN %s "
            "ELSE consent_recorded_by END WHERE id = %s",
            (
                new.given_name,
                new.family_name,
                new.birth_date,
                new.sex,
                new.phone,
                new.language,
                new.gp_id,
                new.care_team_id,
                new.consent_date,
                new.consent_date,
                user.id,
                patient_id,
            ),
        )
        old = before["protocols"]
        for name in old.keys() - new.protocols.keys():
            conn.execute(
                "UPDATE patient_protocols SET ended_at = now() "
                "WHERE patient_id = %s AND protocol = %s",
                (patient_id, name),
            )
        for name, overrides in new.protocols.items():
            if name not in old:
                # A protocol followed before and ended comes back as a new start.
                conn.execute(
                    "INSERT INTO patient_protocols (patient_id, protocol, overrides) "
                    "VALUES (%s, %s, %s) ON CONFLICT (patient_id, protocol) DO UPDATE "
                    "SET overrides = excluded.overrides, started_at = now(), ended_at = NULL",
                    (patient_id, name, Jsonb(overrides)),
                )
            elif old[name] != overrides:
                conn.execute(
                    "UPDATE patient_protocols SET overrides = %s "
                    "WHERE patient_id = %s AND protocol = %s",
                    (Jsonb(overrides), patient_id, name),
                )
        after = snapshot(conn, patient_id)
        assert after is not None
        changes = _diff(before, after)
        if changes:
            record_history(conn, user, patient_id, "edit", changes, reason)
            audit.record(
                conn,
                user,
                "patient.update",
                patient_id=patient_id,
                object_type="patient",
                object_id=patient_id,
                details={"fields": sorted(changes), "reason": reason},
            )
    return changes


def discharge(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    *,
    on: date,
    reason: str,
    now: datetime,
    public_url: str,
) -> int:
    """End monitoring: the engine no longer evaluates the patient (alerts.engine.load reads
    discharged_at), the protocols end, each open episode is resolved with the reason through
    the lifecycle's one writer, and the closing report over the whole span is frozen (one
    transaction: no discharge without its report). Returns the episodes resolved."""
    with conn.transaction():
        row = conn.execute(
            "SELECT discharged_at FROM patients WHERE id = %s FOR UPDATE", (patient_id,)
        ).fetchone()
        if row is None:
            raise LookupError(patient_id)
        if row[0] is not None:
            raise InvalidInput("the patient is discharged")
        conn.execute(
            "UPDATE patients SET discharged_at = %s, discharge_date = %s, discharge_reason = %s "
            "WHERE id = %s",
            (now, on, reason, patient_id),
        )
        conn.execute(
            "UPDATE patient_protocols SET ended_at = %s WHERE patient_id = %s AND ended_at IS NULL",
            (now, patient_id),
        )
        open_episodes = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM episodes WHERE patient_id = %s AND state <> 'resolved' ORDER BY id",
                (patient_id,),
            )
        ]
        for episode_id in open_episodes:
            alert_actions.perform(
                conn, user, episode_id, "resolve", now=now, note=f"Discharge: {reason}"
            )
        # After the episodes: the report tells how each ended, the discharge included.
        period_reports.close(
            conn,
            user,
            patient_id,
            reason=reason,
            discharged_on=on,
            discharged_at=now,
            public_url=public_url,
        )
        record_history(
            conn,
            user,
            patient_id,
            "discharge",
            {"discharge_date": [None, on.isoformat()], "episodes_resolved": open_episodes},
            reason,
        )
        audit.record(
            conn,
            user,
            "patient.discharge",
            patient_id=patient_id,
            object_type="patient",
            object_id=patient_id,
            details={"date": on.isoformat(), "reason": reason, "episodes": open_episodes},
        )
    return len(open_episodes)
