"""A GP's own tags on their patients: private to the GP who wrote them (migration 0014)."""

from __future__ import annotations

from typing import Literal

import psycopg

from dashboard.models import text_problem

MAX_LENGTH = 32
TagAction = Literal["add", "remove"]


class InvalidTag(ValueError):
    """Empty, too long, or with characters a colleague's screen would show otherwise."""


def normalise(tag: str) -> str:
    """One spelling per tag: trimmed, inner spaces collapsed, lower case ("Home visit" and
    "home  visit " are one tag)."""
    text = " ".join(tag.split()).lower()
    problem = text_problem(text)
    if not text or len(text) > MAX_LENGTH or problem is not None:
        raise InvalidTag(problem or f"a tag has 1 to {MAX_LENGTH} characters")
    return text


def change(
    conn: psycopg.Connection, staff_id: int, patient_id: int, tag: str, action: TagAction
) -> bool:
    """Add or remove one tag (the caller has checked the patient is in scope); True if the
    list changed."""
    if action == "add":
        cur = conn.execute(
            "INSERT INTO patient_tags (staff_id, patient_id, tag) VALUES (%s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            (staff_id, patient_id, tag),
        )
    else:
        cur = conn.execute(
            "DELETE FROM patient_tags WHERE staff_id = %s AND patient_id = %s AND tag = %s",
            (staff_id, patient_id, tag),
        )
    return cur.rowcount > 0


def own_tags(conn: psycopg.Connection, staff_id: int, patient_id: int | None = None) -> list[str]:
    """The GP's tags on one patient, or every tag they use (for the list's filter)."""
    rows = conn.execute(
        "SELECT DISTINCT tag FROM patient_tags WHERE staff_id = %s "
        "AND (%s::bigint IS NULL OR patient_id = %s) ORDER BY tag",
        (staff_id, patient_id, patient_id),
    ).fetchall()
    return [r[0] for r in rows]
