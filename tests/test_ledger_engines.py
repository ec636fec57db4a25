"""The ledger on both engines: SQLite (the default) and PostgreSQL (issue 19)."""

from __future__ import annotations

import psycopg


def test_fresh_database_is_empty(postgres_database: str) -> None:
    with psycopg.connect(postgres_database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
    assert tables == (0,)
