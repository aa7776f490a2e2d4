"""Server-Sent Events: tells open pages that the episodes they show have changed.

Each stream polls a cheap fingerprint of the user's visible open episodes (the alerts engine
writes from another process, so polling sees every writer) and
sends an ``alerts`` event when it moves; the page then fetches its fresh fragment.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from dashboard.authz import NotAuthenticated, Principal, load_principal, patient_scope, require

router = APIRouter(tags=["events"])

HEARTBEAT_SECONDS = 15.0
RECHECK_SESSION_SECONDS = 60.0


def _fingerprint(request: Request, user: Principal) -> dict[str, object]:
    scope, params = patient_scope(user)
    with request.app.state.pool.connection() as conn:
        row = conn.execute(
            # A finding's change (a worse value) need not change its episode: both count.
            f"SELECT count(*), count(*) FILTER (WHERE e.severity = 2), "
            f"max(greatest(e.updated_at, f.updated)), max(e.id) "
            f"FROM episodes e JOIN patients p ON p.id = e.patient_id "
            f"LEFT JOIN LATERAL (SELECT max(a.updated_at) AS updated FROM alerts a "
            f"WHERE a.episode_id = e.id) f ON true "
            f"WHERE e.state <> 'resolved' AND {scope}",
            params,
        ).fetchone()
    assert row is not None
    return {"open": row[0], "red": row[1], "updated": str(row[2]), "last": row[3]}


@router.get("/events")
async def alert_events(
    request: Request, user: Annotated[Principal, Depends(require("clinical.read"))]
) -> StreamingResponse:
    interval: float = request.app.state.sse_interval

    async def stream() -> AsyncIterator[str]:
        previous = None
        last_sent = last_auth = time.monotonic()
        yield "retry: 3000\n\n"
        while not await request.is_disconnected():
            now = time.monotonic()
            if now - last_auth > RECHECK_SESSION_SECONDS:
                # A logged-out or expired session must stop receiving updates.
                try:
                    await run_in_threadpool(load_principal, request)
                except NotAuthenticated:
                    yield "event: logout\ndata: {}\n\n"
                    return
                last_auth = now
            current = await run_in_threadpool(_fingerprint, request, user)
            if current != previous:
                summary = {"open": current["open"], "red": current["red"]}
                yield f"event: alerts\ndata: {json.dumps(summary)}\n\n"
                previous, last_sent = current, now
            elif now - last_sent > HEARTBEAT_SECONDS:
                yield ": keep-alive\n\n"
                last_sent = now
            await asyncio.sleep(interval)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
