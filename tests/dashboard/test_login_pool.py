"""Unauthenticated logins cannot stall the dashboard: argon2 runs in a bounded pool of its own.

Each password check costs argon2 (64 MiB, ~0.2 s of CPU). Run in the app's shared thread pool, 40
parallel failed logins made a signed-in nurse wait ~5 s for ``/api/me``. Through a real uvicorn,
since the thread pools and the event loop are what is measured.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from dashboard.password_checks import PasswordChecks
from tests.dashboard.conftest import World
from tests.dashboard.live_server import live_dashboard, post_login

PARALLEL_LOGINS = 40
# Generous: ~15 ms when idle; the flood made it ~5 s before the pool.
ME_BOUND = 1.0


def test_a_flood_of_failed_logins_leaves_signed_in_staff_served(
    app, world: World, db: psycopg.Connection
) -> None:
    with live_dashboard(app) as url, httpx.Client(base_url=url, timeout=60) as nurse:
        assert post_login(nurse, "nurse.greco").status_code == 303
        assert nurse.get("/api/me").status_code == 200
        started = threading.Barrier(PARALLEL_LOGINS + 1)
        finished: list[float] = []

        def attack(i: int) -> tuple[int, float]:
            with httpx.Client(base_url=url, timeout=60) as http:
                started.wait()
                before = time.monotonic()
                response = post_login(http, f"user{i}", "wrong-password")
                finished.append(time.monotonic())
                return response.status_code, time.monotonic() - before

        with ThreadPoolExecutor(PARALLEL_LOGINS) as attackers:
            futures = [attackers.submit(attack, i) for i in range(PARALLEL_LOGINS)]
            started.wait()
            time.sleep(0.3)  # the posts are in and argon2 is running
            waits = []
            for _ in range(5):
                before = time.monotonic()
                assert nurse.get("/api/me").status_code == 200
                waits.append(time.monotonic() - before)
            measured_until = time.monotonic()
            results = [f.result() for f in futures]
    statuses = sorted({status for status, _ in results})
    busy = sum(status == 503 for status, _ in results)
    print(
        f"{PARALLEL_LOGINS} parallel failed logins (statuses {statuses}, {busy} turned away); "
        f"a signed-in nurse's /api/me: {', '.join(f'{w * 1000:.0f}' for w in waits)} ms"
    )
    assert max(waits) < ME_BOUND
    # The nurse was served while logins were still being checked, not after.
    assert max(finished) > measured_until
    assert set(statuses) <= {401, 503}


def test_beyond_the_queue_a_login_is_turned_away_at_once_with_no_argon2_run(
    app, world: World, db: psycopg.Connection
) -> None:
    app.state.password_checks = PasswordChecks(workers=1, waiting=1)
    parallel = 8
    started = threading.Barrier(parallel)

    def attempt(i: int) -> tuple[httpx.Response, float]:
        with httpx.Client(base_url=url, timeout=60) as http:
            page = http.get("/login")  # the form first, so the posts go together
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            started.wait()
            before = time.monotonic()
            response = http.post(
                "/login",
                data={"username": f"user{i}", "password": "wrong", "csrf_token": token},
            )
            return response, time.monotonic() - before

    with live_dashboard(app) as url, ThreadPoolExecutor(parallel) as clients:
        results = list(clients.map(attempt, range(parallel)))
    checked = [r for r, _ in results if r.status_code == 401]
    busy = [(r, seconds) for r, seconds in results if r.status_code == 503]
    failed_rows = db.execute(
        "SELECT count(*) FROM audit_log WHERE action = 'login.failed'"
    ).fetchone()[0]
    checks = app.state.password_checks
    print(
        f"pool of 1 + 1 waiting, {parallel} parallel logins: {len(checked)} checked, "
        f"{len(busy)} turned away in {max(s for _, s in busy) * 1000:.0f} ms at most; "
        f"argon2 runs {checks.verifications}"
    )
    assert len(checked) + len(busy) == parallel and busy
    assert checks.verifications == len(checked) == failed_rows
    assert checks.turned_away == len(busy)
    assert all(r.headers["retry-after"] and "try again" in r.text.lower() for r, _ in busy)
    # At once: no turned-away login waited for a check (each takes ~0.2 s of CPU).
    assert max(seconds for _, seconds in busy) < ME_BOUND
