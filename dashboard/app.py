"""The dashboard's FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from dashboard import security
from dashboard.databases import Databases
from dashboard.password_checks import PasswordChecks
from dashboard.routes import (
    admin,
    api,
    auth,
    enrolment,
    events,
    fhir,
    pages,
    privacy,
    reports,
    sms,
    status,
)
from dashboard.streams import StreamRegistry
from telemon import __version__
from telemon.config import get_settings


def create_app(
    database_url: str,
    *,
    read_database_url: str | None = None,
    mqtt_url: str | None = None,
    public_url: str | None = None,
    language: str | None = None,
    twilio_auth_token: str | None = None,
    status_token: str | None = None,
    sse_interval: float = 1.0,
) -> FastAPI:
    """Settings not passed come from the environment (``TELEMON_*``); reads go to the primary
    unless ``read_database_url`` (or ``TELEMON_DATABASE_READ_URL``) names a replica."""
    settings = get_settings()
    if read_database_url is None:
        read_database_url = settings.database_read_url
    if public_url is None or language is None or twilio_auth_token is None:
        public_url = public_url or settings.public_url
        language = language or settings.language
        if twilio_auth_token is None and settings.twilio_auth_token is not None:
            twilio_auth_token = settings.twilio_auth_token.get_secret_value()
    if status_token is None and settings.status_token is not None:
        status_token = settings.status_token.get_secret_value()

    databases = Databases(database_url, read_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(databases.open)
        # What is loaded by now (modules, protocols, templates, pydantic's schemas: ~180,000
        # objects) lives as long as the process: out of the collector's sight, a full collection
        # pauses a request for ~8 ms instead of 100-140 ms (bench/dashboard.py's p99).
        gc.collect()
        gc.freeze()
        yield
        await run_in_threadpool(app.state.password_checks.close)
        await run_in_threadpool(databases.close)

    app = FastAPI(title="telemon dashboard", version=__version__, lifespan=lifespan)
    app.state.databases = databases
    # argon2 for logins and password changes, off the shared thread pool and bounded.
    app.state.password_checks = PasswordChecks()
    app.state.mqtt_url = mqtt_url
    app.state.public_url = public_url
    app.state.language = language
    app.state.twilio_auth_token = twilio_auth_token or None
    app.state.status_token = status_token or None
    app.state.sse_interval = sse_interval
    app.state.streams = StreamRegistry()
    # What an SMS queued from here (an escalation to the GP) needs: links to this site.
    app.state.notify_settings = settings.model_copy(
        update={"public_url": public_url, "language": language}
    )
    # Browsers drop Secure cookies over plain http: only set it where the site is https.
    app.state.secure_cookies = public_url.startswith("https://")

    app.add_middleware(security.SecurityHeaders, hsts=app.state.secure_cookies)
    security.install(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for router in (
        auth.router,
        pages.router,
        reports.router,
        admin.router,
        privacy.router,
        enrolment.router,
        api.router,
        fhir.router,
        events.router,
        sms.router,
        status.router,
    ):
        app.include_router(router)

    return app
