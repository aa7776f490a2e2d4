"""Server-Sent Events: tells open pages that the episodes they show have changed.

Each stream polls a cheap fingerprint of the user's visible open episodes (the alerts engine
writes from another process, so polling sees every writer) and
sends an ``alerts`` event when it moves; the page then fetches its fresh fragment.

Each poll also asks whether the session is still live, in the same round trip: a logout, an
expiry, or an admin's deactivation (which ends the person's sessions) ends the stream at the next
poll with a ``logout`` event. A person has at most ``MAX_STREAMS_PER_USER`` streams open
(``dashboard.streams``); a further one ends their oldest with a ``superseded`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from dashboard import sessions
from dashboard.authz import SESSION_COOKIE, Principal, patient_scope, require
from dashboard.streams import StreamRegistry

router = APIRouter(tags=["events"])

HEARTBEAT_SECONDS = 15.0
# An open page counts as activity, as it always has: the stream pushes the session's idle
# expiry forward this often (the liveness check at each poll does not).
TOUCH_SESSION_SECONDS = 60.0

Fingerprint = dict[str, object]


def _poll(request: Request, user: Principal, token: str, *, touch: bool) -> Fingerprint | None:
    """The fingerprint of the user's open episodes; None once the session has ended."""
    scope, params = patient_scope(user)
    now = datetime.now(UTC)
    with request.app.state.databases.primary.connection() as conn:
        if not sessions.is_live(conn, token, user.id, now=now):
            return None
        if touch:
            sessions.lookup(conn, token, now=now)
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


def _event(name: str, data: object) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


@router.get("/events")
async def alert_events(
    request: Request, user: Annotated[Principal, Depends(require("clinical.read"))]
) -> StreamingResponse:
    interval: float = request.app.state.sse_interval
    registry: StreamRegistry = request.app.state.streams
    token = request.cookies[SESSION_COOKIE]  # require() found a session behind it

    async def stream() -> AsyncIterator[str]:
        # Registered here rather than in the handler: this finally runs however the stream ends.
        mine = registry.open(user.id)
        try:
            previous = None
            last_sent = last_touch = time.monotonic()
            yield "retry: 3000\n\n"
            while not await request.is_disconnected():
                if mine.superseded.is_set():
                    yield _event("superseded", {})
                    return
                now = time.monotonic()
                touch = now - last_touch > TOUCH_SESSION_SECONDS
                current = await run_in_threadpool(_poll, request, user, token, touch=touch)
                if current is None:
                    yield _event("logout", {})
                    return
                if touch:
                    last_touch = now
                if current != previous:
                    yield _event("alerts", {"open": current["open"], "red": current["red"]})
                    previous, last_sent = current, now
                elif now - last_sent > HEARTBEAT_SECONDS:
                    yield ": keep-alive\n\n"
                    last_sent = now
                # Sleep until the next poll, or until a newer stream of the same person ends it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(mine.superseded.wait(), interval)
        finally:
            registry.close(mine)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
