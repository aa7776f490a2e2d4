"""The audit log's hash chain and its retention (migration 0023, telemon.store.audit_chain).

Rows are written as the services write them, through the application role (a login member of
telemon_app, as in test_application_role.py); tampering is done as the owner, "behind the
application's back".
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors
from typer.testing import CliRunner

from console.cli import app as cli
from ingest.housekeeping import Housekeeper
from telemon.store import audit_chain

WRITERS = 8
ROWS_PER_WRITER = 60


def _write(conn: psycopg.Connection, action: str, at: datetime | None = None) -> None:
    if at is None:
        conn.execute("INSERT INTO audit_log (action, details) VALUES (%s, '{\"n\": 1}')", (action,))
    else:
        conn.execute("INSERT INTO audit_log (action, at) VALUES (%s, %s)", (action, at))


def test_an_untouched_chain_verifies(db, app_conn) -> None:
    for n in range(20):
        _write(app_conn, f"test.{n}")
    result = audit_chain.verify(app_conn)  # the application role may read the chain
    assert result.intact, result.broken
    assert (result.checked, result.first_seq, result.last_seq, result.head_seq) == (20, 1, 20, 20)


def test_the_database_and_verify_agree_on_the_canonical_text(db, app_conn) -> None:
    """CANONICAL (Python) and telemon_audit_canonical (SQL) are one text, details and all."""
    db.execute(
        "INSERT INTO audit_log (action, details, client_address, object_id) "
        "VALUES ('x', %s, '2001:db8::1', 'é \"q\"')",
        (psycopg.types.json.Jsonb({"b": [1, 2.5, None], "a": "città"}),),
    )
    [(mine, theirs)] = db.execute(
        f"SELECT {audit_chain.CANONICAL}, telemon_audit_canonical(a) FROM audit_log a"
    ).fetchall()
    assert mine == theirs
    db.execute("SET TIME ZONE 'Pacific/Auckland'")  # a session's time zone changes nothing
    assert audit_chain.verify(db).intact


@pytest.mark.parametrize(
    ("tamper", "seq", "words"),
    [
        ("UPDATE audit_log SET action = 'nothing happened' WHERE seq = 7", 7, "changed"),
        ("UPDATE audit_log SET at = at - interval '1 second' WHERE seq = 7", 7, "changed"),
        ("UPDATE audit_log SET details = '{\"n\": 2}' WHERE seq = 7", 7, "changed"),
        ("DELETE FROM audit_log WHERE seq = 7", 7, "missing"),
        ("DELETE FROM audit_log WHERE seq >= 9", 9, "removed"),
        ("UPDATE audit_chain SET last_hash = sha256('x')", 11, "head"),
    ],
)
def test_a_change_behind_the_applications_back_is_found(
    db, app_conn, tamper: str, seq: int, words: str
) -> None:
    for n in range(10):
        _write(app_conn, f"test.{n}")
    db.execute(tamper)
    result = audit_chain.verify(db)
    assert result.broken is not None
    assert result.broken.seq == seq and words in result.broken.reason
    assert result.checked == min(seq - 1, 10)


def test_a_rewritten_row_with_a_fresh_hash_breaks_the_next_link(db, app_conn) -> None:
    """Recomputing the changed row's own hash is not enough: the next row names the old one."""
    for n in range(5):
        _write(app_conn, f"test.{n}")
    db.execute("UPDATE audit_log SET action = 'x' WHERE seq = 3")
    db.execute(
        "UPDATE audit_log a SET row_hash = sha256(a.prev_hash || "
        "convert_to(telemon_audit_canonical(a), 'UTF8')) WHERE seq = 3"
    )
    result = audit_chain.verify(db)
    assert result.broken is not None and result.broken.seq == 4
    assert "previous hash" in result.broken.reason


def test_the_application_role_cannot_touch_the_chain(db, app_conn) -> None:
    _write(app_conn, "test.0")
    for statement in (
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "UPDATE audit_chain SET last_seq = 0",
        "DELETE FROM audit_chain",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain",
        "SELECT telemon_apply_audit_retention(interval '1 day')",
    ):
        with pytest.raises((errors.InsufficientPrivilege, errors.InvalidParameterValue)):
            app_conn.execute(statement)
    # What the application states is overridden by the trigger: it cannot place a row.
    app_conn.execute(
        "INSERT INTO audit_log (action, seq, prev_hash, row_hash) "
        "VALUES ('forged', 99, sha256('a'), sha256('b'))"
    )
    assert db.execute("SELECT seq FROM audit_log WHERE action = 'forged'").fetchone() == (2,)
    assert audit_chain.verify(db).intact


def test_concurrent_writers_make_one_chain(db, app_url) -> None:
    """Writers on their own connections, autocommit and in transactions, at the same time."""
    barrier = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            with psycopg.connect(app_url, autocommit=True) as conn:
                barrier.wait()
                for n in range(ROWS_PER_WRITER):
                    if n % 3 == 0:
                        with conn.transaction():
                            _write(conn, f"w{k}.{n}")
                            _write(conn, f"w{k}.{n}b")
                    else:
                        _write(conn, f"w{k}.{n}")
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    expected = WRITERS * (ROWS_PER_WRITER + ROWS_PER_WRITER // 3)
    result = audit_chain.verify(db)
    assert result.intact, result.broken
    assert result.checked == expected
    assert db.execute("SELECT count(DISTINCT seq), max(seq) FROM audit_log").fetchone() == (
        expected,
        expected,
    )


def test_retention_below_24_months_is_refused(db, app_conn) -> None:
    with pytest.raises(ValueError, match="24 months"):
        audit_chain.apply_retention(app_conn, 23)
    with pytest.raises(errors.InvalidParameterValue):
        app_conn.execute("SELECT telemon_apply_audit_retention(interval '23 months')")


def test_the_clock_cannot_move_the_cutoff_forward(db, app_conn) -> None:
    _write(app_conn, "recent", datetime.now(UTC) - timedelta(days=400))
    future = datetime.now(UTC) + timedelta(days=3650)
    assert audit_chain.apply_retention(app_conn, 24, now=future) == 0
    assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 1


def _month(start: datetime, n: int) -> datetime:
    year, month = divmod(start.month - 1 + n, 12)
    return start.replace(year=start.year + year, month=month + 1)


def test_the_audit_survives_24_months_of_retention_runs(db, app_conn) -> None:
    """A simulated clock: a month's accesses, then the housekeeping's retention run, each month
    for 36 months (ending before today). Every row stays 24 months, the chain always verifies."""
    start = datetime.now(UTC).replace(day=1, hour=12, minute=0, second=0, microsecond=0)
    start = _month(start, -37)
    removed_total = 0
    for n in range(36):
        clock = _month(start, n)
        for day in (1, 10, 20):
            _write(app_conn, f"month{n}.day{day}", clock.replace(day=day))
        removed_total += audit_chain.apply_retention(app_conn, 24, now=clock.replace(day=25))
        # The months still there: the last 24 at the simulated clock, and none of them cut.
        kept = [
            row[0]
            for row in db.execute(
                "SELECT split_part(action, '.', 1) FROM audit_log GROUP BY 1 "
                "HAVING count(*) = 3 ORDER BY min(seq)"
            )
        ]
        assert kept == [f"month{m}" for m in range(max(0, n - 23), n + 1)], n
        result = audit_chain.verify(db)
        assert result.intact, (n, result.broken)
        assert result.checked == 3 * len(kept)
    assert removed_total == 12 * 3
    head = db.execute("SELECT pruned_seq, last_seq FROM audit_chain").fetchone()
    assert head == (36, 108)


def test_telemon_audit_verify(db, app_conn, database_url, monkeypatch) -> None:
    for n in range(4):
        _write(app_conn, f"test.{n}")
    monkeypatch.setenv("TELEMON_DATABASE_URL", database_url)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "4 rows checked (1..4)" in ok.output and "intact" in ok.output
    db.execute("UPDATE audit_log SET object_id = 'x' WHERE seq = 2")
    broken = runner.invoke(cli, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "BROKEN at row 2" in broken.output and "1 rows checked" in broken.output


def test_ingest_housekeeping_applies_the_audit_retention(db, app_url, app_conn) -> None:
    """As the service runs it: the application role, the configured months, the real clock."""
    now = datetime.now(UTC)
    for months in (30, 26, 23, 1):
        _write(app_conn, f"aged{months}", now - timedelta(days=31 * months))
    housekeeper = Housekeeper(app_url, audit_retention_months=25)
    housekeeper.run_once(retention=True)
    assert housekeeper.healthy, housekeeper.failure
    kept = [r[0] for r in db.execute("SELECT action FROM audit_log ORDER BY seq")]
    assert kept == ["aged23", "aged1"]
    assert audit_chain.verify(db).intact
