"""Admin writes: staff accounts and roles, patient enrolment, gateways and their devices."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import ValidationError

from alerts.protocol import PatientOverride, ProtocolError, apply_override
from dashboard import audit, sessions
from dashboard.accounts import hash_password, store_password
from dashboard.authz import Principal, organisation_scope
from dashboard.bands import protocols
from dashboard.models import (
    EnrolIn,
    Enrolled,
    GatewayIn,
    Registered,
    StaffIn,
    StaffItem,
    StaffUpdate,
)
from telemon.database import one_row


class InvalidInput(ValueError):
    """Input the database would accept but the platform must not (a message for the form)."""


def list_staff(conn: psycopg.Connection, user: Principal) -> list[StaffItem]:
    """The staff of the admin's organisation (another organisation's are none of theirs)."""
    rows = (
        conn.cursor(row_factory=dict_row)
        .execute(
            "SELECT id, username, display_name, role, phone, language, active, "
            "coalesce(locked_until > now(), false) AS locked FROM staff "
            "WHERE organisation_id = %s ORDER BY role, username",
            (user.organisation_id,),
        )
        .fetchall()
    )
    return [StaffItem(**r) for r in rows]


# The care teams an admin may assign a patient to: their organisation's, and the service
# centres of others (a shared centre serves several organisations' patients), named with
# their organisation. Staff join teams of their own organisation only.
_TEAMS = """
SELECT t.id, CASE WHEN t.organisation_id = %(org)s THEN t.name
                  ELSE t.name || ' (' || o.name || ')' END, t.kind
FROM care_teams t JOIN organisations o ON o.id = t.organisation_id
WHERE t.organisation_id = %(org)s OR (%(shared)s AND t.kind = 'service_centre')
"""


def care_teams(
    conn: psycopg.Connection, user: Principal, *, shared: bool = True
) -> list[tuple[int, str, str]]:
    return conn.execute(
        f"{_TEAMS} ORDER BY t.organisation_id <> %(org)s, t.name",
        {"org": user.organisation_id, "shared": shared},
    ).fetchall()


def gps(conn: psycopg.Connection, user: Principal) -> list[tuple[int, str]]:
    return conn.execute(
        "SELECT id, display_name FROM staff WHERE role = 'gp' AND active "
        "AND organisation_id = %s ORDER BY display_name",
        (user.organisation_id,),
    ).fetchall()


def ensure_care_team(
    conn: psycopg.Connection, user: Principal, care_team_id: int | None, *, shared: bool = True
) -> None:
    # Checked here so an unknown id is a message on the form, not a foreign-key error (a 500);
    # another organisation's team (but a shared centre) is as unknown to the admin.
    if care_team_id is not None and (
        conn.execute(
            f"SELECT 1 FROM ({_TEAMS}) t WHERE t.id = %(team)s",
            {"org": user.organisation_id, "shared": shared, "team": care_team_id},
        ).fetchone()
        is None
    ):
        raise InvalidInput("no such care team")


def ensure_patient_references(
    conn: psycopg.Connection, user: Principal, gp_id: int, care_team_id: int | None
) -> None:
    """The GP (of the admin's organisation) and the care team a patient is enrolled with exist
    (the JSON API and the form)."""
    if (
        conn.execute(
            "SELECT 1 FROM staff WHERE id = %s AND role = 'gp' AND active AND organisation_id = %s",
            (gp_id, user.organisation_id),
        ).fetchone()
        is None
    ):
        raise InvalidInput("the GP must be an active staff member with the GP role")
    ensure_care_team(conn, user, care_team_id)


def ensure_code_free(conn: psycopg.Connection, code: str) -> None:
    if conn.execute("SELECT 1 FROM patients WHERE code = %s", (code,)).fetchone():
        raise InvalidInput(f"patient code {code!r} is taken")


def create_staff(conn: psycopg.Connection, user: Principal, new: StaffIn) -> StaffItem:
    with conn.transaction():
        if conn.execute("SELECT 1 FROM staff WHERE username = %s", (new.username,)).fetchone():
            raise InvalidInput(f"username {new.username!r} is taken")
        ensure_care_team(conn, user, new.care_team_id, shared=False)
        # The first password is the admin's choice: its owner replaces it at their first login.
        staff_id = one_row(
            conn.execute(
                "INSERT INTO staff (username, display_name, role, phone, language, password_hash, "
                "must_change_password, organisation_id) "
                "VALUES (%s, %s, %s, %s, %s, %s, true, %s) RETURNING id",
                (
                    new.username,
                    new.display_name,
                    new.role,
                    new.phone,
                    new.language,
                    hash_password(new.password),
                    user.organisation_id,
                ),
            )
        )[0]
        if new.care_team_id is not None:
            conn.execute(
                "INSERT INTO care_team_members (care_team_id, staff_id) VALUES (%s, %s)",
                (new.care_team_id, staff_id),
            )
        audit.record(
            conn,
            user,
            "staff.create",
            object_type="staff",
            object_id=staff_id,
            details={"username": new.username, "role": new.role, "must_change_password": True},
        )
    return next(s for s in list_staff(conn, user) if s.id == staff_id)


def update_staff(
    conn: psycopg.Connection, user: Principal, staff_id: int, change: StaffUpdate
) -> StaffItem:
    if staff_id == user.id and (change.role not in (None, "admin") or change.active is False):
        raise InvalidInput("an admin cannot demote or deactivate their own account")
    with conn.transaction():
        if (
            conn.execute(
                "SELECT 1 FROM staff WHERE id = %s AND organisation_id = %s",
                (staff_id, user.organisation_id),
            ).fetchone()
            is None
        ):
            raise LookupError(staff_id)
        if change.role is not None:
            conn.execute("UPDATE staff SET role = %s WHERE id = %s", (change.role, staff_id))
        if change.active is not None:
            conn.execute("UPDATE staff SET active = %s WHERE id = %s", (change.active, staff_id))
        # A password the admin chose for someone else is the admin's until its owner replaces
        # it: they must, at their next login (authz.current_user), and the audit row says so.
        must_change = change.password is not None and staff_id != user.id
        if change.password is not None:
            store_password(conn, staff_id, hash_password(change.password), must_change=must_change)
        # A new role, a deactivation or a reset password must not live on in an open session.
        sessions.delete_for_staff(conn, staff_id)
        audit.record(
            conn,
            user,
            "staff.update",
            object_type="staff",
            object_id=staff_id,
            details=change.model_dump(exclude_none=True, exclude={"password"})
            | (
                {"password_reset": True, "must_change_password": must_change}
                if change.password
                else {}
            ),
        )
    return next(s for s in list_staff(conn, user) if s.id == staff_id)


def validate_overrides(protocol_name: str, overrides: dict[str, object]) -> None:
    protocol = protocols().get(protocol_name)
    if protocol is None:
        raise InvalidInput(f"unknown care protocol {protocol_name!r}")
    try:
        apply_override(protocol, PatientOverride.model_validate(overrides))
    except ValidationError as exc:
        raise InvalidInput(
            "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        ) from None
    except ProtocolError as exc:
        raise InvalidInput("; ".join(exc.errors)) from None


def enrol_patient(conn: psycopg.Connection, user: Principal, new: EnrolIn) -> Enrolled:
    validate_overrides(new.protocol, new.overrides)
    with conn.transaction():
        ensure_patient_references(conn, user, new.gp_id, new.care_team_id)
        ensure_code_free(conn, new.code)
        patient_id = one_row(
            conn.execute(
                "INSERT INTO patients (code, given_name, family_name, birth_date, sex, phone, "
                "gp_id, care_team_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    new.code,
                    new.given_name,
                    new.family_name,
                    new.birth_date,
                    new.sex,
                    new.phone,
                    new.gp_id,
                    new.care_team_id,
                ),
            )
        )[0]
        conn.execute(
            "INSERT INTO patient_protocols (patient_id, protocol, overrides) VALUES (%s, %s, %s)",
            (patient_id, new.protocol, Jsonb(new.overrides)),
        )
        audit.record(
            conn,
            user,
            "patient.enrol",
            patient_id=patient_id,
            object_type="patient",
            object_id=patient_id,
            details={"protocol": new.protocol, "gp_id": new.gp_id},
        )
    return Enrolled(id=patient_id, code=new.code)


def register_gateway(conn: psycopg.Connection, user: Principal, new: GatewayIn) -> Registered:
    scope, params = organisation_scope(user)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM gateways WHERE code = %s", (new.code,)).fetchone():
            raise InvalidInput(f"gateway code {new.code!r} is taken")
        if (
            new.patient_id is not None
            and conn.execute(
                f"SELECT 1 FROM patients p WHERE p.id = %(patient)s AND {scope}",
                {**params, "patient": new.patient_id},
            ).fetchone()
            is None
        ):
            raise InvalidInput("no such patient")
        addresses = [d.address for d in new.devices]
        if len(set(addresses)) != len(addresses):
            raise InvalidInput("device addresses repeat")
        gateway_id = one_row(
            conn.execute(
                "INSERT INTO gateways (code, patient_id) VALUES (%s, %s) RETURNING id",
                (new.code, new.patient_id),
            )
        )[0]
        for d in new.devices:
            conn.execute(
                "INSERT INTO devices (gateway_id, address, kind, manufacturer, model) "
                "VALUES (%s, %s, %s, %s, %s)",
                (gateway_id, d.address, d.kind, d.manufacturer, d.model),
            )
        audit.record(
            conn,
            user,
            "gateway.register",
            patient_id=new.patient_id,
            object_type="gateway",
            object_id=gateway_id,
            details={"code": new.code, "devices": len(new.devices)},
        )
    return Registered(id=gateway_id, code=new.code, devices=len(new.devices))
