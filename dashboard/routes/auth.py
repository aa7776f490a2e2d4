"""Login, logout, one's own password and the language switch."""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Literal, TypedDict

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard import accounts, audit, services, sessions
from dashboard.authz import (
    SESSION_COOKIE,
    Principal,
    client_address,
    require,
    same_origin,
    signed_in,
)
from dashboard.i18n import LANGUAGES
from dashboard.models import NO_NUL
from dashboard.password_checks import PasswordChecks, PasswordChecksBusy
from dashboard.web import render
from telemon.database import one_row

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "telemon_login_csrf"
LANGUAGE_COOKIE = "telemon_lang"


class _CookieArgs(TypedDict):
    httponly: bool
    samesite: Literal["lax", "strict", "none"]
    secure: bool
    path: str


def _cookie_args(request: Request) -> _CookieArgs:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": request.app.state.secure_cookies,
        "path": "/",
    }


def _login_page(request: Request, error: str | None = None, status_code: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    language = request.cookies.get(LANGUAGE_COOKIE)
    response = render(
        request,
        "login.html",
        {"login_csrf": token, "error": error},
        user=None,
        status_code=status_code,
        language=language if language in LANGUAGES else None,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_args(request))
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return _login_page(request)


async def check_password(
    request: Request, username: str, password: str, *, address: str | None, now: datetime
) -> accounts.LoginResult:
    """``accounts.authenticate`` with argon2 in the app's password pool and the database steps
    in the shared thread pool. Every attempt runs exactly one verification, refused or not, so
    a locked, throttled or unknown account answers after the same work as a wrong password.
    The caller holds an ``admission`` to the pool."""
    pool = request.app.state.databases.primary
    checks: PasswordChecks = request.app.state.password_checks

    def begin() -> accounts.Attempt:
        with pool.connection() as conn:
            return accounts.begin_login(conn, username, client_address=address, now=now)

    attempt = await run_in_threadpool(begin)
    verified = await checks.verify(attempt.password_hash, password)
    new_hash = None
    if verified and attempt.refusal is None:
        new_hash = await checks.run(accounts.rehashed, attempt, password)

    def finish() -> accounts.LoginResult:
        with pool.connection() as conn:
            result = accounts.finish_login(conn, attempt, verified, client_address=address, now=now)
            if result.staff_id is not None and new_hash is not None:
                accounts.store_rehash(conn, result.staff_id, new_hash)
            return result

    return await run_in_threadpool(finish)


def _busy(response: Response) -> Response:
    response.headers["retry-after"] = "2"
    return response


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64, pattern=NO_NUL)],
    password: Annotated[str, Form(max_length=200)],
    csrf_token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    # Login CSRF: the form's token must match the cookie set with the form (double submit), and
    # the form must be ours.
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf_token) or not same_origin(request):
        return _login_page(request, "login.expired", 403)
    now = datetime.now(UTC)
    address = client_address(request)
    try:
        with request.app.state.password_checks.admission():
            result = await check_password(request, username, password, address=address, now=now)
    except PasswordChecksBusy:
        return _busy(_login_page(request, "login.busy", 503))
    return await run_in_threadpool(_conclude_login, request, result, username, address, now)


def _conclude_login(
    request: Request,
    result: accounts.LoginResult,
    username: str,
    address: str | None,
    now: datetime,
) -> Response:
    with request.app.state.databases.primary.connection() as conn:
        if result.staff_id is None:
            audit.record(
                conn,
                None,
                "login.failed",
                details={"reason": result.reason},
                username=accounts.normalise_username(username),
                client_address=address,
            )
            if result.reason == "throttled":
                return _login_page(request, "login.throttled", 429)
            # A locked account answers as a wrong password does: a different answer would tell
            # whoever tries five passwords that the username exists. The audit keeps the reason.
            return _login_page(request, "login.invalid", 401)
        # A session this browser already had ends here: signing in on top of a colleague's session
        # (a shared ward PC) must not leave theirs alive under a cookie that is overwritten.
        previous = request.cookies.get(SESSION_COOKIE)
        if previous:
            sessions.delete(conn, previous)
        token = sessions.create(
            conn,
            result.staff_id,
            now=now,
            client_address=address,
            user_agent=request.headers.get("user-agent"),
        )
        staff_id, username, display_name, role, language, must_change = one_row(
            conn.execute(
                "SELECT id, username, display_name, role, language, must_change_password "
                "FROM staff WHERE id = %s",
                (result.staff_id,),
            )
        )
        user = Principal(
            staff_id, username, display_name, role, language, csrf_token="", client_address=address
        )
        audit.record(conn, user, "login", object_type="staff", object_id=user.id)
    # A password an admin set is replaced before anything else (authz.current_user).
    response = RedirectResponse("/password" if must_change else "/", status_code=303)
    _set_session_cookie(request, response, token)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(sessions.ABSOLUTE_TIMEOUT.total_seconds()),
        **_cookie_args(request),
    )


SignedIn = Annotated[Principal, Depends(signed_in)]


@router.post("/logout")
def logout(request: Request, user: SignedIn) -> Response:
    with request.app.state.databases.primary.connection() as conn:
        sessions.delete(conn, request.cookies.get(SESSION_COOKIE, ""))
        audit.record(conn, user, "logout", object_type="staff", object_id=user.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _password_page(
    request: Request,
    user: Principal,
    *,
    error: str | None = None,
    changed: bool = False,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "password.html",
        {"error": error, "changed": changed, "min_length": accounts.MIN_PASSWORD_LENGTH},
        user=user,
        status_code=status_code,
    )


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, user: SignedIn) -> Response:
    return _password_page(request, user)


def new_password_problem(current: str, new: str, again: str) -> str | None:
    """What is wrong with a new password before any argon2 run (an i18n key), or None."""
    if new != again:
        return "password.mismatch"
    try:
        accounts.check_policy(new)
    except accounts.PasswordPolicyError:
        return "password.too_short"
    if new == current:
        # After an admin's reset, the point is a password the admin does not know.
        return "password.unchanged"
    return None


@router.post("/password")
async def change_password(
    request: Request,
    user: SignedIn,
    current_password: Annotated[str, Form(max_length=200)],
    new_password: Annotated[str, Form(max_length=200)],
    new_password_again: Annotated[str, Form(max_length=200)],
) -> Response:
    """One's own password: the current one checked as a login is (lockout, throttle, one argon2
    run), then every session of the account ends and this browser gets a new one."""
    problem = new_password_problem(current_password, new_password, new_password_again)
    if problem is not None:
        return _password_page(request, user, error=problem, status_code=422)
    now = datetime.now(UTC)
    checks: PasswordChecks = request.app.state.password_checks
    try:
        with checks.admission():
            result = await check_password(
                request, user.username, current_password, address=user.client_address, now=now
            )
            new_hash = None
            if result.staff_id == user.id:
                new_hash = await checks.run(accounts.hash_password, new_password)
    except PasswordChecksBusy:
        return _busy(_password_page(request, user, error="login.busy", status_code=503))
    if new_hash is None:
        await run_in_threadpool(_audit_refused_change, request, user, result)
        if result.reason == "throttled":
            return _password_page(request, user, error="login.throttled", status_code=429)
        return _password_page(request, user, error="password.wrong_current", status_code=403)
    token, fresh = await run_in_threadpool(_replace_password, request, user, new_hash, now)
    response = _password_page(request, fresh, changed=True)
    _set_session_cookie(request, response, token)
    return response


def _audit_refused_change(request: Request, user: Principal, result: accounts.LoginResult) -> None:
    with request.app.state.databases.primary.connection() as conn:
        audit.record(
            conn,
            user,
            "password.change_failed",
            object_type="staff",
            object_id=user.id,
            details={"reason": result.reason},
        )


def _replace_password(
    request: Request, user: Principal, password_hash: str, now: datetime
) -> tuple[str, Principal]:
    """The new password stored; every session of the account ended (one open elsewhere may be
    whoever learnt the old password), and a new one for this browser: (its token, the user)."""
    with request.app.state.databases.primary.connection() as conn, conn.transaction():
        accounts.store_password(conn, user.id, password_hash, must_change=False)
        sessions.delete_for_staff(conn, user.id)
        token = sessions.create(
            conn,
            user.id,
            now=now,
            client_address=user.client_address,
            user_agent=request.headers.get("user-agent"),
        )
        session = sessions.lookup(conn, token, now=now)
        assert session is not None  # created above, in this transaction
        fresh = replace(user, csrf_token=session.csrf_token, must_change_password=False)
        audit.record(conn, fresh, "password.change", object_type="staff", object_id=user.id)
    return token, fresh


@router.post("/language")
async def switch_language(
    request: Request, user: Annotated[Principal, Depends(require("self.settings"))]
) -> Response:
    form = await request.form()
    language = form.get("language")
    if language in LANGUAGES:

        def save() -> None:
            with request.app.state.databases.primary.connection() as conn:
                services.set_language(conn, user, language)

        await run_in_threadpool(save)
    back = form.get("next")
    # Only ever back to a page of ours: the field is input.
    target = (
        back
        if isinstance(back, str) and back.startswith("/") and not back.startswith("//")
        else "/"
    )
    return RedirectResponse(target, status_code=303)


@router.get("/lang/{language}")
def login_language(request: Request, language: str) -> Response:
    """Language of the login page, before anyone is signed in."""
    response = RedirectResponse("/login", status_code=303)
    if language in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, **_cookie_args(request))
    return response
