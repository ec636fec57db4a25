"""Copy a project's SQLite ledger into a team's PostgreSQL database, exactly (`studio ledger migrate`).

Every table of the schema is copied row for row, ids included, in one transaction on the target; the
counts and the money totals of both sides are compared before it commits, and any difference rolls the
whole copy back. The source is read in one snapshot through a read-only connection: it is never written.
Claims (job_claim) are not copied: they name runs that hold jobs right now, and none runs during a copy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine, Table, create_engine, func, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from studio.core.errors import StorageError, UsageError
from studio.db import claims, tables

TRANSIENT = {claims.JobClaim.__tablename__}  # which run holds which job: meaningless once copied elsewhere
BOOKKEEPING = {"schema_version"}  # written by the migrations on each side, not copied
BATCH = 1000
# The money a ledger holds: a copy whose sums differ from its source's lost or changed a payment.
MONEY = {
    "generation": (
        "estimate_micro",
        "held_micro",
        "reported_micro",
        "computed_micro",
        "actual_micro",
        "would_cost_micro",
    ),
    "budget": ("amount_micro",),
}


class TargetNotEmpty(UsageError):
    pass


class CopyDiffers(StorageError):
    pass


@dataclass(frozen=True)
class Tally:
    """What one side holds: rows per table and the money totals (micro-USD) by "table.column"."""

    rows: dict[str, int]
    money: dict[str, int]


def ledger_tables(conn: Connection) -> list[Table]:
    """The tables a copy carries: every table of the ledger's schema at `conn` but the transient claims, each
    one studio's models describe (a table they do not would be left behind: refused)."""
    known = {t.name: t for t in SQLModel.metadata.sorted_tables if t.name not in TRANSIENT}
    present = set(inspect(conn).get_table_names()) - TRANSIENT - BOOKKEEPING
    if unknown := present - set(known):
        raise StorageError(
            f"the ledger database has tables studio's copy does not know ({', '.join(sorted(unknown))}); "
            "migrate into an empty database of its own"
        )
    return [table for name, table in known.items() if name in present]


def read_only_sqlite(path: Path) -> Engine:
    """An engine that can only read the SQLite ledger at `path` (SQLite itself refuses any write)."""
    if not path.is_file():
        raise UsageError(f"there is no ledger at {path} to migrate: run studio in this project first, or cd to it")

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=30)
        conn.isolation_level = None  # no implicit transactions: `snapshot` begins the one read transaction
        return conn

    return create_engine("sqlite://", creator=connect)


def schema_version(engine: Engine) -> int:
    with engine.connect() as conn:
        if not inspect(conn).has_table("schema_version"):
            return 0
        return int(conn.execute(text("SELECT MAX(version) FROM schema_version")).scalar() or 0)


def copy_ledger(source: Engine, target: Engine, *, batch: int = BATCH) -> Tally:
    """Copy every ledger row from `source` into `target` (both at the current schema; the target holding no
    rows) in one target transaction, checked before it commits. Returns what was copied.

    Raises TargetNotEmpty (nothing written) or CopyDiffers (rolled back, naming the count or total that
    differed)."""
    try:
        return _copy(source, target, batch)
    except DBAPIError as exc:  # a source that is not a ledger, a server gone mid-copy: the way out is the same
        raise StorageError(f"the copy failed ({_reason(exc)}); rolled back, nothing was written") from None


def _copy(source: Engine, target: Engine, batch: int) -> Tally:
    current = len(tables.MIGRATIONS)
    found = schema_version(source)
    if found != current:
        raise UsageError(
            f"the ledger to copy is at schema version {found}, this studio's is {current}: "
            + (
                "run 'studio ledger' once in the project (it upgrades the ledger in place), then migrate again"
                if found < current
                else "it was written by a newer studio; upgrade studio here, then migrate again"
            )
        )
    with snapshot(source) as src, target.begin() as dst:
        copied = ledger_tables(dst)
        if missing := {t.name for t in ledger_tables(src)} - {t.name for t in copied}:
            raise StorageError(f"the target database has no table {', '.join(sorted(missing))}; nothing was copied")
        _refuse_filled(dst, copied)
        for table in copied:
            _check_columns(src, table)
            _copy_table(src, dst, table, batch)
        if dst.dialect.name == "postgresql":
            _restart_identities(dst, copied)
        before, after = tally(src, copied), tally(dst, copied)
        _compare(before, after)  # raising rolls back the target's transaction: nothing is written
    return before


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One read transaction on the source: every table and total read as of one moment."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # deferred: a read snapshot from the first SELECT on
        try:
            yield conn
        finally:
            conn.rollback()


def tally(conn: Connection, copied: list[Table]) -> Tally:
    rows = {t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in copied}
    money: dict[str, int] = {}
    for name, columns in MONEY.items():
        table = next(t for t in copied if t.name == name)
        sums = conn.execute(select(*(func.coalesce(func.sum(table.c[c]), 0) for c in columns))).one()
        money.update({f"{name}.{column}": int(total) for column, total in zip(columns, sums, strict=True)})
    return Tally(rows, money)


def _compare(before: Tally, after: Tally) -> None:
    for name, count in before.rows.items():
        if after.rows[name] != count:
            raise CopyDiffers(
                f"the copy of table {name} holds {after.rows[name]} rows, the source {count}: rolled back, "
                "nothing was written; the SQLite ledger is unchanged"
            )
    for name, total in before.money.items():
        if after.money[name] != total:
            raise CopyDiffers(
                f"the copy's total of {name} is {after.money[name]} micro-USD, the source's {total}: rolled back, "
                "nothing was written; the SQLite ledger is unchanged"
            )


def _refuse_filled(dst: Connection, copied: list[Table]) -> None:
    filled = {t.name: n for t in copied if (n := int(dst.execute(select(func.count()).select_from(t)).scalar_one()))}
    if filled:
        held = ", ".join(f"{n} {name} rows" for name, n in filled.items())
        raise TargetNotEmpty(
            f"the target database already holds a ledger ({held}); copying into it would mix two ledgers' money. "
            "Migrate into an empty database (e.g. createdb studio_ledger), or, if this one is already the team's "
            "ledger, point STUDIO_DATABASE_URL at it and leave .studio/ledger.db as a backup"
        )


def _check_columns(src: Connection, table: Table) -> None:
    """The source's columns are exactly the schema's: a column the copy would leave behind is refused."""
    have = {c["name"] for c in inspect(src).get_columns(table.name)}
    want = set(table.c.keys())
    if have != want:
        extra, missing = sorted(have - want), sorted(want - have)
        raise StorageError(
            f"the ledger's table {table.name} does not have the columns this studio knows "
            f"(extra: {', '.join(extra) or 'none'}; missing: {', '.join(missing) or 'none'}); nothing was copied"
        )


def _copy_table(src: Connection, dst: Connection, table: Table, batch: int) -> None:
    result = src.execute(select(table).order_by(*table.primary_key.columns))
    while chunk := result.fetchmany(batch):
        try:
            dst.execute(table.insert(), [row._asdict() for row in chunk])
        except DBAPIError as exc:
            raise StorageError(
                f"copying table {table.name} failed ({_reason(exc)}); rolled back, nothing was written"
            ) from None


def _reason(exc: DBAPIError) -> str:
    return " ".join(str(exc.orig if exc.orig is not None else exc).split())


def _restart_identities(dst: Connection, copied: list[Table]) -> None:
    """PostgreSQL hands out ids from a sequence that knows nothing of ids inserted explicitly: restart each past
    the largest copied id, or the next reservation would collide with a copied row."""
    for table in copied:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or keys[0].type.python_type is not int:
            continue
        column = keys[0].name
        dst.execute(
            text(f"SELECT setval(pg_get_serial_sequence(:table, :column), MAX({column})) FROM {table.name}"),
            {"table": table.name, "column": column},
        )
