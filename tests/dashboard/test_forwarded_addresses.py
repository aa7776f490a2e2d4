"""Whose address is the client's: X-Forwarded-For is believed only from configured proxies.

Through a real uvicorn on loopback: its proxy-header middleware is what decides, and TestClient
never runs it. By default (``TELEMON_FORWARDED_ALLOW_IPS`` empty) no proxy is trusted, not even
one on loopback, so a forged header neither hides the attacker's address from the audit log nor
moves them out of the login throttle. A client address that is no IP (``X-Forwarded-For:
unknown`` from a trusted proxy, a Unix socket) is one throttling bucket of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from pydantic import ValidationError

from dashboard.accounts import MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS
from telemon.config import Settings
from tests.dashboard.conftest import World
from tests.dashboard.live_server import live_dashboard, post_login

FORGED = "203.0.113.9"


def _login_addresses(db: psycopg.Connection) -> list[tuple[str, str | None]]:
    return db.execute(
        "SELECT action, host(client_address) FROM audit_log WHERE action LIKE 'login%%' ORDER BY id"
    ).fetchall()


def test_by_default_a_forwarded_for_header_is_not_believed(
    app, world: World, db: psycopg.Connection
) -> None:
    with live_dashboard(app) as url, httpx.Client(base_url=url) as http:
        failed = post_login(http, "dr.rossi", "wrong-password", headers={"x-forwarded-for": FORGED})
        signed_in = post_login(http, "dr.rossi", headers={"x-forwarded-for": FORGED})
    recorded = _login_addresses(db)
    session = db.execute("SELECT host(client_address) FROM dashboard_sessions").fetchone()
    print(f"X-Forwarded-For {FORGED} from loopback, no proxy configured: audit rows {recorded}")
    assert failed.status_code == 401 and signed_in.status_code == 303
    assert recorded == [("login.failed", "127.0.0.1"), ("login", "127.0.0.1")]
    assert session == ("127.0.0.1",)


def test_a_configured_proxy_is_believed(app, world: World, db: psycopg.Connection) -> None:
    """The deliberate setting: a reverse proxy on this address names the real client."""
    with (
        live_dashboard(app, forwarded_allow_ips="127.0.0.1") as url,
        httpx.Client(base_url=url) as http,
    ):
        # A client's own X-Forwarded-For is kept by the proxy, which appends the address it saw:
        # uvicorn takes the last address that is not a trusted proxy.
        response = post_login(
            http, "dr.rossi", headers={"x-forwarded-for": f"198.51.100.66, {FORGED}"}
        )
    assert response.status_code == 303
    assert _login_addresses(db) == [("login", FORGED)]


def test_an_unknown_forwarded_address_is_one_throttling_bucket(
    app, world: World, db: psycopg.Connection
) -> None:
    """``X-Forwarded-For: unknown`` once escaped the throttle: NULL matched no earlier failure."""
    # Earlier failures of this name from clients without an IP address (the audit log and the
    # attempts table store them as NULL); all but one of the allowance.
    now = datetime.now(UTC)
    for _ in range(MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS - 1):
        db.execute(
            "INSERT INTO dashboard_login_attempts (at, username, client_address, succeeded) "
            "VALUES (%s, 'dr.rossi', NULL, false)",
            (now,),
        )
    unknown = {"x-forwarded-for": "unknown"}
    with (
        live_dashboard(app, forwarded_allow_ips="127.0.0.1") as url,
        httpx.Client(base_url=url) as http,
    ):
        last_allowed = post_login(http, "dr.rossi", "wrong-password", headers=unknown)
        refused = post_login(http, "dr.rossi", "wrong-password", headers=unknown)
        right_password = post_login(http, "dr.rossi", headers=unknown)
        elsewhere = post_login(http, "dr.rossi")  # the proxy's own address: another bucket
    addresses = {r[0] for r in db.execute("SELECT client_address FROM audit_log")}
    print(
        f"X-Forwarded-For: unknown: failures {last_allowed.status_code}, then "
        f"{refused.status_code}, the right password {right_password.status_code}; "
        f"from 127.0.0.1 {elsewhere.status_code}; audit addresses {addresses}"
    )
    assert last_allowed.status_code == 401
    assert refused.status_code == 429 and right_password.status_code == 429
    assert elsewhere.status_code == 303


@pytest.mark.parametrize("value", ["*", "proxy.example", "10.0.0.0/33", "127.0.0.1,, nope"])
def test_a_proxy_list_that_is_not_addresses_is_refused_at_startup(value: str) -> None:
    with pytest.raises(ValidationError, match="forwarded_allow_ips"):
        Settings(forwarded_allow_ips=value)


def test_the_default_trusts_no_proxy() -> None:
    assert Settings(_env_file=None).forwarded_allow_ips == ""
    assert Settings(forwarded_allow_ips=" 10.0.0.1, 172.16.0.0/12 ").forwarded_allow_ips
