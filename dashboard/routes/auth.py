"""Login, logout and the language switch."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dashboard import accounts, audit, services, sessions
from dashboard.authz import (
    SESSION_COOKIE,
    Principal,
    client_address,
    current_user,
    require,
    same_origin,
)
from dashboard.i18n import LANGUAGES
from dashboard.models import NO_NUL
from dashboard.web import render

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "telemon_login_csrf"
LANGUAGE_COOKIE = "telemon_lang"


def _cookie_args(request: Request) -> dict[str, object]:
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


@router.post("/login")
def login(
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
    with request.app.state.pool.connection() as conn:
        result = accounts.authenticate(conn, username, password, client_address=address, now=now)
        if result.staff_id is None:
            audit.record(
                conn,
                None,
                "login.failed",
                details={"reason": result.reason},
                username=username.strip().lower()[:64],
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
        row = conn.execute(
            "SELECT id, username, display_name, role, language FROM staff WHERE id = %s",
            (result.staff_id,),
        ).fetchone()
        user = Principal(*row, csrf_token="", client_address=address)
        audit.record(conn, user, "login", object_type="staff", object_id=user.id)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(sessions.ABSOLUTE_TIMEOUT.total_seconds()),
        **_cookie_args(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.post("/logout")
def logout(request: Request, user: Annotated[Principal, Depends(current_user)]) -> Response:
    with request.app.state.pool.connection() as conn:
        sessions.delete(conn, request.cookies.get(SESSION_COOKIE, ""))
        audit.record(conn, user, "logout", object_type="staff", object_id=user.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/language")
async def switch_language(
    request: Request, user: Annotated[Principal, Depends(require("self.settings"))]
) -> Response:
    form = await request.form()
    language = form.get("language")
    if language in LANGUAGES:

        def save() -> None:
            with request.app.state.pool.connection() as conn:
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
