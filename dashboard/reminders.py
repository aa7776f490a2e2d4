"""A patient's opt-out of SMS reminders: recorded by a nurse or an admin, with who and when,
or by the patient replying to a reminder (``dashboard.patient_sms``).

Nurses act on the patients of their service centre (``patient_scope``), from the patient page
or ``/api/patients/{id}/reminders``; admins, who enrol patients and read no clinical data, on
any patient through ``/api/admin/reminders`` (the patient in the body, as for a gateway): the
opt-out is no clinical datum. Every change is audited; clearing it opts the patient back in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import psycopg

from dashboard import audit
from dashboard.authz import Forbidden, NotFound, Principal, patient_scope

OptOutVia = Literal["staff", "sms"]


@dataclass(frozen=True, slots=True)
class ReminderStatus:
    opted_out_at: datetime | None
    opted_out_by: str | None  # the display name of who recorded it
    opted_out_via: OptOutVia | None = None  # staff: opted_out_by names them; sms: the patient

    @property
    def opted_out(self) -> bool:
        return self.opted_out_at is not None


def status(conn: psycopg.Connection, patient_id: int) -> ReminderStatus:
    """For a page whose caller has already checked and audited the read of the patient."""
    row = conn.execute(
        "SELECT p.reminders_opt_out_at, s.display_name, p.reminders_opt_out_via FROM patients p "
        "LEFT JOIN staff s ON s.id = p.reminders_opt_out_by WHERE p.id = %s",
        (patient_id,),
    ).fetchone()
    return ReminderStatus(row[0], row[1], row[2]) if row else ReminderStatus(None, None)


def set_opt_out(
    conn: psycopg.Connection, user: Principal, patient_id: int, opted_out: bool
) -> ReminderStatus:
    scope, params = _scope(user)
    with conn.transaction():
        row = conn.execute(
            f"""
            UPDATE patients p
            -- An opt-out already recorded (by staff or by the patient's SMS) stays as it was.
            SET reminders_opt_out_at = CASE WHEN %(out)s THEN coalesce(reminders_opt_out_at, now())
                                       END,
                reminders_opt_out_by = CASE WHEN %(out)s AND reminders_opt_out_at IS NULL
                                       THEN %(by)s WHEN %(out)s THEN reminders_opt_out_by END,
                reminders_opt_out_via = CASE WHEN %(out)s
                                        THEN coalesce(reminders_opt_out_via, 'staff') END
            WHERE p.id = %(patient)s AND {scope}
            RETURNING p.id
            """,
            {**params, "out": opted_out, "by": user.id, "patient": patient_id},
        ).fetchone()
        if row is None:
            raise NotFound
        audit.record(
            conn,
            user,
            "patient.reminders.opt_out" if opted_out else "patient.reminders.opt_in",
            patient_id=patient_id,
            object_type="patient",
            object_id=patient_id,
        )
    return status(conn, patient_id)


def ensure_in_scope(conn: psycopg.Connection, user: Principal, patient_id: int) -> None:
    """NotFound unless the user may record this patient's opt-out."""
    scope, params = _scope(user)
    row = conn.execute(
        f"SELECT 1 FROM patients p WHERE p.id = %(patient)s AND {scope}",
        {**params, "patient": patient_id},
    ).fetchone()
    if row is None:
        raise NotFound


def _scope(user: Principal) -> tuple[str, dict[str, object]]:
    if user.can("reminders.manage"):
        return patient_scope(user)
    if user.can("patient.enrol"):
        return patient_scope(user, permission="patient.enrol")  # their organisation's
    raise Forbidden
