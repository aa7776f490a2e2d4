"""The login throttle cannot lock out a clinic: failures count per (account, address) pair, with
a per-address ceiling only a spray over many usernames reaches (that one:
test_security_bruteforce.py::test_an_address_spraying_usernames_is_throttled_then_released).

Many colleagues share one address (a clinic behind NAT, everyone behind a reverse proxy that is
not trusted for X-Forwarded-For). Once, 20 failures from anyone there refused everyone there.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from fastapi.testclient import TestClient

from dashboard.accounts import MAX_FAILED_LOGINS, MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS
from tests.dashboard.conftest import World
from tests.dashboard.support import PASSWORD
from tests.dashboard.test_security_bruteforce import _post_login, _signed_in

CLINIC = "203.0.113.50"  # the NAT address every PC of one clinic is seen from


def _earlier_failures(db: psycopg.Connection, username: str, count: int) -> None:
    """Failures from the clinic's address, as the attempts table holds them."""
    now = datetime.now(UTC)
    for _ in range(count):
        db.execute(
            "INSERT INTO dashboard_login_attempts (at, username, client_address, succeeded) "
            "VALUES (%s, %s, %s, false)",
            (now, username, CLINIC),
        )


def test_one_attackers_failures_do_not_lock_out_a_clinic(
    app, world: World, db: psycopg.Connection
) -> None:
    attacker = TestClient(app, follow_redirects=False, client=(CLINIC, 40000))
    nurse = TestClient(app, follow_redirects=False, client=(CLINIC, 40001))
    with attacker:
        guesses = [
            _post_login(attacker, "dr.rossi", f"guess-{i}").status_code
            for i in range(MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS)
        ]
        attacker_after = _post_login(attacker, "dr.rossi", "guess-again")
        colleague = _post_login(nurse, "nurse.greco", PASSWORD)
    print(
        f"NAT: {len(guesses)} failures for dr.rossi from {CLINIC} -> {set(guesses)}, then "
        f"{attacker_after.status_code}; nurse.greco from the same address -> "
        f"{colleague.status_code}"
    )
    # The account locked after five (answered as a wrong password), the pair was then throttled.
    assert set(guesses) == {401} and attacker_after.status_code == 429
    assert _signed_in(colleague)
    locked = db.execute(
        "SELECT failed_logins >= %s AND locked_until > now() FROM staff "
        "WHERE username = 'dr.rossi'",
        (MAX_FAILED_LOGINS,),
    ).fetchone()
    assert locked == (True,)


def test_a_throttled_name_tells_nothing_about_whether_it_exists(
    app, world: World, db: psycopg.Connection
) -> None:
    """The pair limit counts names that exist and names that do not alike, before any lookup."""
    for name in ("dr.rossi", "dr.nobody"):
        _earlier_failures(db, name, MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS - 1)
    with TestClient(app, follow_redirects=False, client=(CLINIC, 40000)) as client:
        answers = {
            name: [_post_login(client, name, "wrong-password").status_code for _ in range(2)]
            for name in ("dr.rossi", "dr.nobody")
        }
    assert answers == {"dr.rossi": [401, 429], "dr.nobody": [401, 429]}
