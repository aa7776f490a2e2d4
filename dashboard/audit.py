"""The audit trail: who read which patient's data or acted on which alert, and when."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from dashboard.authz import Principal
from dashboard.databases import writer


def record(
    conn: psycopg.Connection,
    user: Principal | None,
    action: str,
    *,
    patient_id: int | None = None,
    object_type: str | None = None,
    object_id: object = None,
    details: dict[str, Any] | None = None,
    username: str | None = None,
    client_address: str | None = None,
) -> None:
    """One audit row; ``username``/``client_address`` cover events without a session (logins).
    Written to the primary, also when ``conn`` reads from the replica (a page's reads)."""
    writer(conn).execute(
        "INSERT INTO audit_log (actor_id, actor_username, actor_role, action, patient_id, "
        "object_type, object_id, details, client_address) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            user.id if user else None,
            user.username if user else username,
            user.role if user else None,
            action,
            patient_id,
            object_type,
            None if object_id is None else str(object_id),
            Jsonb(details or {}),
            user.client_address if user else client_address,
        ),
    )
