"""Authentication, CSRF and authorisation: every route's access decision is made here.

Roles get permissions from one table (``PERMISSIONS``); patient rows are visible through one
predicate (``patient_scope``). A patient outside a user's scope is answered with 404, as if it
did not exist, so ids cannot be probed.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlsplit

import psycopg
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from dashboard import sessions

SESSION_COOKIE = "telemon_session"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Role = Literal["gp", "nurse", "admin", "privacy"]
Permission = Literal[
    "clinical.read",  # patients' vitals, alerts, FHIR export (within patient_scope)
    "alert.act",  # claim, call outcome, acknowledge, resolve, escalate
    "triage.queue",  # the service centre's cooperative-wide queue and tasks
    "devices.read",  # gateways offline, devices with low battery
    "sms.read",  # failed SMS and the outbox (their text names patients)
    "staff.manage",  # users and roles
    "patient.enrol",  # enrol patients, register gateways and devices
    "self.settings",  # own language, phone, quiet hours
    "reminders.manage",  # a nurse records her patients' opt-out of SMS reminders
    "service.status",  # the service status page (database, broker, counts)
    "report.validate",  # freeze a patient's period report (the GP signs it off)
    "patient.tag",  # one's own tags on one's patients (a GP's list, private to them)
    "record.export",  # a patient's whole record, FHIR $everything or CSV (EHDS art. 7)
    "audit.read",  # who accessed a patient's data (the privacy officer's access report)
    "record.restrict",  # record a patient's request to hide data (oscuramento), or its end
]

# An admin manages people and equipment but, by default, reads no clinical data.
PERMISSIONS: dict[str, frozenset[str]] = {
    "gp": frozenset(
        {
            "clinical.read",
            "alert.act",
            "self.settings",
            "report.validate",
            "patient.tag",
            "record.export",
            "record.restrict",
        }
    ),
    "nurse": frozenset(
        {
            "clinical.read",
            "alert.act",
            "triage.queue",
            "devices.read",
            "sms.read",
            "self.settings",
            "reminders.manage",
        }
    ),
    "admin": frozenset(
        {
            "staff.manage",
            "patient.enrol",
            "devices.read",
            "self.settings",
            "service.status",
            "record.restrict",
        }
    ),
    # The privacy officer answers patients' "who accessed my data" (Garante, dossier guidelines
    # 2015; EHDS art. 9) for the whole organisation: the audit log, no clinical data.
    # and, on a patient's request, their whole record (EHDS art. 7 portability).
    "privacy": frozenset({"audit.read", "record.export", "self.settings"}),
}


class NotAuthenticated(Exception):
    """No live session: HTML routes redirect to the login page, API routes answer 401."""


class Forbidden(Exception):
    """The role lacks the permission (403)."""


class NotFound(Exception):
    """Absent, or outside the user's scope: the two are indistinguishable on purpose (404)."""


class CsrfError(Exception):
    """A state-changing request without the session's CSRF token (403)."""


class PasswordChangeRequired(Exception):
    """Signed in with a password an admin set: pages redirect to /password, API routes 403."""


@dataclass(frozen=True, slots=True)
class Principal:
    id: int
    username: str
    display_name: str
    role: Role
    language: str
    csrf_token: str
    client_address: str | None
    must_change_password: bool = False
    # The organisation the member of staff works for (migration 0026); None for a principal
    # made outside a session that names none: it reaches no organisation's patients or staff.
    organisation_id: int | None = None
    # The primary's WAL position after the session's last write: its reads wait for a replica
    # that has replayed this far (dashboard.databases); None: nothing written yet.
    written_lsn: str | None = None

    def can(self, permission: Permission) -> bool:
        return permission in PERMISSIONS[self.role]


def organisation_scope(user: Principal, alias: str = "p") -> tuple[str, dict[str, object]]:
    """SQL predicate over ``patients AS {alias}``: the patients of the user's organisation,
    those whose GP works for it (their care team may be another's: a shared service centre)."""
    return (
        f"{alias}.gp_id IN (SELECT id FROM staff WHERE organisation_id = %(scope_org)s)",
        {"scope_org": user.organisation_id},
    )


_ADMIN_SCOPED: frozenset[Permission] = frozenset({"patient.enrol", "record.restrict"})


def patient_scope(
    user: Principal, alias: str = "p", permission: Permission = "clinical.read"
) -> tuple[str, dict[str, object]]:
    """SQL predicate over ``patients AS {alias}``: the rows this user may see for
    ``permission`` (clinicians: the same rows whatever the permission)."""
    params: dict[str, object] = {"scope_staff": user.id}
    if user.role == "gp":
        return f"{alias}.gp_id = %(scope_staff)s", params
    if user.role == "nurse":
        # The cooperative: patients of the care teams (service centres) the nurse works in,
        # whichever organisation the team or the patient's GP belongs to.
        return (
            f"{alias}.care_team_id IN (SELECT care_team_id FROM care_team_members "
            "WHERE staff_id = %(scope_staff)s)",
            params,
        )
    if user.role == "privacy":
        # The patients of the officer's organisation: the officer holds no clinical.read, so
        # this scope opens only the access report and the record export.
        return organisation_scope(user, alias)
    if permission in _ADMIN_SCOPED:  # the admin, the one role left
        # An admin enrols and equips their organisation's patients, records their requests to
        # hide data, and reads none of their data.
        return organisation_scope(user, alias)
    return "false", params


def ensure_patient(
    conn: psycopg.Connection,
    user: Principal,
    patient_id: int,
    permission: Permission = "clinical.read",
) -> None:
    """Raise NotFound unless ``patient_id`` is in the user's scope and they hold
    ``permission`` (by default: they read clinical data)."""
    if not user.can(permission):
        raise Forbidden
    scope, params = patient_scope(user, permission=permission)
    row = conn.execute(
        f"SELECT 1 FROM patients p WHERE p.id = %(patient)s AND {scope}",
        {**params, "patient": patient_id},
    ).fetchone()
    if row is None:
        raise NotFound


# Escalating hands an episode from the service centre to the GP: a centre action only.
ACTION_PERMISSION: dict[str, Permission] = {
    "read": "clinical.read",
    "claim": "alert.act",
    "outcome": "alert.act",
    "acknowledge": "alert.act",
    "resolve": "alert.act",
    "escalate": "triage.queue",
}

# The rows people act on, each with the patient it belongs to.
_OWNED = {
    "episode": "SELECT o.patient_id FROM episodes o",
    "alert": "SELECT o.patient_id FROM alerts o",
}


def _ensure(conn: psycopg.Connection, user: Principal, table: str, row_id: int, action: str) -> int:
    permission = ACTION_PERMISSION.get(action)
    if permission is None or not user.can(permission):
        raise Forbidden
    scope, params = patient_scope(user)
    row = conn.execute(
        f"{_OWNED[table]} JOIN patients p ON p.id = o.patient_id WHERE o.id = %(row)s AND {scope}",
        {**params, "row": row_id},
    ).fetchone()
    if row is None:
        raise NotFound
    return int(row[0])


def ensure_episode(
    conn: psycopg.Connection, user: Principal, episode_id: int, action: str = "read"
) -> int:
    """The episode's patient id, if the user may do ``action`` on that episode."""
    return _ensure(conn, user, "episode", episode_id, action)


def ensure_alert(
    conn: psycopg.Connection, user: Principal, alert_id: int, action: str = "read"
) -> int:
    """The finding's patient id, if the user may do ``action`` (read, resolve) on it."""
    return _ensure(conn, user, "alert", alert_id, action)


def client_address(request: Request) -> str | None:
    """The client's IP address (an inet for audit_log), or None when it is not one (a Unix
    socket, ``X-Forwarded-For: unknown``): the login throttle counts those as one address.

    uvicorn's peer, or what a trusted proxy's X-Forwarded-For names
    (``TELEMON_FORWARDED_ALLOW_IPS``, ``dashboard.server.uvicorn_config``)."""
    host = request.client.host if request.client else None
    try:
        return str(ipaddress.ip_address(host)) if host else None
    except ValueError:
        return None


def load_principal(request: Request) -> Principal:
    """The user behind the session cookie (a short-lived pool connection: SSE streams hold none)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated
    with request.app.state.databases.primary.connection() as conn:
        session = sessions.lookup(conn, token, now=datetime.now(UTC))
        if session is None:
            raise NotAuthenticated
        row = conn.execute(
            "SELECT id, username, display_name, role, language, must_change_password, "
            "organisation_id FROM staff WHERE id = %s AND active",
            (session.staff_id,),
        ).fetchone()
    if row is None:
        raise NotAuthenticated
    staff_id, username, display_name, role, language, must_change, organisation_id = row
    return Principal(
        staff_id,
        username,
        display_name,
        role,
        language,
        csrf_token=session.csrf_token,
        client_address=client_address(request),
        must_change_password=must_change,
        organisation_id=organisation_id,
        written_lsn=session.written_lsn,
    )


def same_origin(request: Request) -> bool:
    """False when the browser says another site's page sent this request.

    The CSRF token is the defence; this refuses a cross-site request even with a valid token (one
    leaked through a log or a screenshot), and a sibling subdomain's, to which SameSite=Lax
    cookies still go. Sec-Fetch-Site says it best. Without it, an Origin naming another site is
    refused; "null" is not, since under our Referrer-Policy: no-referrer browsers send it from
    our own pages. Senders of neither header (scripts, Twilio) are no browser running another
    site's page: the token decides.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")  # "none": the user's own navigation
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    sent = urlsplit(origin.lower())
    public = urlsplit(request.app.state.public_url.lower())
    if (sent.scheme, sent.netloc) == (public.scheme, public.netloc):
        return True
    # Behind a TLS-terminating proxy the app sees http where the browser says https: the Host
    # header (set by the browser for the site it calls) is compared without the scheme.
    return sent.netloc == request.headers.get("host", "").lower()


async def signed_in(request: Request) -> Principal:
    """A live session and, unless the request is safe, the session's CSRF token in the
    X-CSRF-Token header or the csrf_token form field, sent from one of our own pages
    (``same_origin``). Only the change-password page and logout depend on this directly; every
    other protected route goes through ``current_user``."""
    user = await run_in_threadpool(load_principal, request)
    request.state.user = user
    if request.method not in SAFE_METHODS:
        if not same_origin(request):
            raise CsrfError
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            field = (await request.form()).get(CSRF_FIELD)
            sent = field if isinstance(field, str) else None
        if not sent or not secrets.compare_digest(sent, user.csrf_token):
            raise CsrfError
    return user


async def current_user(user: Annotated[Principal, Depends(signed_in)]) -> Principal:
    """Every protected route depends on this: ``signed_in``, with a password of one's own. After
    an admin's reset, the password is the admin's until its owner changes it: until then, only
    the change-password page and logout are open."""
    if user.must_change_password:
        raise PasswordChangeRequired
    return user


def require(permission: Permission) -> Callable[[Principal], Principal]:
    """Dependency: the current user, who must hold ``permission``."""

    def check(user: Annotated[Principal, Depends(current_user)]) -> Principal:
        if not user.can(permission):
            raise Forbidden
        return user

    check.permission = permission  # type: ignore[attr-defined]  # read by the route-coverage test
    return check
