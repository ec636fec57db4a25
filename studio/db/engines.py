"""The ledger's two engines: a SQLite file in .studio/ (the default) and PostgreSQL for a team (issue 19).

Both give every transaction the guarantee the budget rests on: writers run one at a time, so a budget,
`--max-cost` or quota check and the reservation it guards are one step across threads, processes and
machines. SQLite takes it with `BEGIN IMMEDIATE`. PostgreSQL takes a transaction-scoped advisory lock as
each transaction's first statement, at READ COMMITTED, so every statement after it sees all that the
previous holder committed (a row lock could not do it: the check reads sums, and a new reservation is a
row nobody could have locked). Timestamps are naive UTC on both: PostgreSQL sessions run in UTC.
"""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlmodel import create_engine

from studio.core.errors import StorageError

# The one advisory lock every ledger transaction takes on PostgreSQL ("STUDIOLD"). Other locks studio
# takes on the same database must use other keys.
LEDGER_LOCK = 0x53545544494F4C44
LOCK_WAIT = "60s"  # as SQLite's busy timeout: a ledger held longer than this is reported, not waited on forever


class LedgerUnusable(StorageError):
    """The ledger cannot be read or written: every command stops, saying why and the way out."""


def is_postgres(url: str | None) -> bool:
    return url is not None and url.partition("://")[0].split("+")[0] in {"postgresql", "postgres"}


def shown(url: str) -> str:
    """The URL as it may be shown: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "the database URL"


def sqlite_engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})
    event.listen(engine, "connect", _sqlite_pragmas)
    # Let `BEGIN IMMEDIATE` through: pysqlite's own transaction handling would defer it.
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return engine


def postgres_engine(url: str) -> Engine:
    """An engine on the PostgreSQL database at `url` (postgresql:// or postgres://, driven by psycopg)."""
    try:
        target = make_url(url).set(drivername="postgresql+psycopg")
        engine = create_engine(
            target,
            isolation_level="READ COMMITTED",
            pool_pre_ping=True,  # a server restarted between two commands' transactions is reconnected to
            connect_args={"connect_timeout": 10, "options": f"-c TimeZone=UTC -c lock_timeout={LOCK_WAIT}"},
        )
    except (ArgumentError, ValueError) as exc:  # a malformed URL, a port that is not a number
        raise LedgerUnusable(
            f"the ledger database URL is not valid ({exc}); correct STUDIO_DATABASE_URL (or database_url in "
            "studio.toml)"
        ) from None
    except (NoSuchModuleError, ImportError):
        raise LedgerUnusable(
            "the ledger is on PostgreSQL but its driver is not installed: pip install 'psycopg[binary]'"
        ) from None
    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LEDGER_LOCK})"))
    return engine


def postgres_unusable(url: str, exc: DBAPIError) -> str:
    """What went wrong with the PostgreSQL ledger, in one line with the way out, its password never shown."""
    reason = " ".join(str(exc.orig if exc.orig is not None else exc).split())
    password = make_url(url).password
    if password:
        reason = reason.replace(str(password), "***")
    where = shown(url)
    lowered = reason.lower()
    if (
        "password" in lowered
        or "authentication failed" in lowered
        or re.search(r'role "[^"]*" does not exist', lowered)
    ):
        return (
            f"the ledger database {where} refused the login ({reason}); give the right user and password in "
            f"STUDIO_DATABASE_URL (or PGPASSWORD)"
        )
    if re.search(r'database "[^"]*" does not exist', lowered):
        name = make_url(url).database or "the database"
        return f"the ledger database {where} does not exist ({reason}); create it (createdb {name}) or correct the URL"
    if "lock timeout" in lowered:
        return f"the ledger database {where} is locked by another process ({reason}); wait for it and run again"
    if "permission denied" in lowered:
        return (
            f"the ledger database {where} refused access ({reason}); grant its user the right to create and write "
            f"tables there, or use another database"
        )
    if re.search(r"connect|could not translate|timeout expired|server closed", lowered):
        return (
            f"cannot reach the ledger database {where} ({reason}); start the server or correct STUDIO_DATABASE_URL "
            f"(or database_url in studio.toml)"
        )
    return f"the ledger database {where} cannot be used ({reason}); check the server and STUDIO_DATABASE_URL"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.isolation_level = None  # transactions are begun explicitly (above)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


_POSTGRES_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),  # money, nanosecond mtimes and inodes pass 2**31
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
)


def portable_ddl(sql: str, dialect: str) -> str:
    """A migration's SQLite DDL as this dialect says it (SQLite's own is run unchanged)."""
    if dialect != "postgresql":
        return sql
    for pattern, replacement in _POSTGRES_TYPES:
        sql = pattern.sub(replacement, sql)
    return sql
