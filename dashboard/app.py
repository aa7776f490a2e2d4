"""The dashboard's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from psycopg_pool import ConnectionPool

from dashboard.status import ServiceStatus, StoreStatus, broker_status, store_status
from telemon import __version__

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


def create_app(database_url: str, *, mqtt_url: str | None = None) -> FastAPI:
    pool = ConnectionPool(
        database_url,
        min_size=1,
        max_size=8,
        open=False,
        kwargs={"autocommit": True},
        name="dashboard",
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(pool.open, wait=False)
        yield
        await run_in_threadpool(pool.close)

    app = FastAPI(title="telemon dashboard", version=__version__, lifespan=lifespan)
    app.state.pool = pool

    def current_status() -> ServiceStatus:
        try:
            with pool.connection(timeout=3.0) as conn:
                store = store_status(conn)
        except Exception as exc:  # a pool timeout or a dropped server: reported, not raised
            store = StoreStatus(reachable=False, error=type(exc).__name__)
        return ServiceStatus(store=store, broker=broker_status(mqtt_url))

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> JSONResponse:
        status = await run_in_threadpool(current_status)
        return JSONResponse(status.as_dict(), status_code=200 if status.healthy else 503)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def status_page(request: Request) -> HTMLResponse:
        status = await run_in_threadpool(current_status)
        return TEMPLATES.TemplateResponse(
            request,
            "status.html",
            {"status": status, "version": __version__},
            status_code=200 if status.healthy else 503,
        )

    return app
