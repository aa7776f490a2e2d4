"""What tests do to a test database besides the fixtures: emptying it between tests."""

from __future__ import annotations

import psycopg
from psycopg import sql


def truncate_data(conn: psycopg.Connection) -> None:
    conn.execute("SELECT telemon_drop_expired_observations('infinity')")
    conn.execute("TRUNCATE observation_hourly")
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN "
            "('schema_migrations', 'metrics', 'storage_settings', 'audit_chain') "
            "AND tablename NOT LIKE 'observations\\_%'"
        )
    ]
    conn.execute(
        sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in tables)
        )
    )
    # The installation's first organisation, as migration 0026 leaves it: rows inserted without
    # naming one belong to it.
    conn.execute("INSERT INTO organisations (name) VALUES ('Telemon')")
    # The audit log was emptied behind its chain's back: the chain starts again (0023).
    conn.execute(
        "UPDATE audit_chain SET last_seq = 0, last_hash = %(genesis)s, pruned_seq = 0, "
        "pruned_hash = %(genesis)s, pruned_at = NULL",
        {"genesis": bytes(32)},
    )


def scalar(conn: psycopg.Connection, query: str, *params: object) -> object:
    """The one value ``query`` selects (a count, most often)."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]
