"""The ledger on both engines: SQLite (the default, its schema unchanged) and PostgreSQL (issue 19).

The budget and quota rules themselves run on both engines in test_budget.py and test_quota.py; here: one
generation's whole life, the migrations on PostgreSQL (twice is a no-op, two machines at once, an older
ledger upgraded with its rows), and what a user sees when the database cannot be used.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from conftest import PASSWORD_ROLE
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from studio.db import tables
from studio.db.engines import postgres_engine, sqlite_engine
from studio.db.tables import MIGRATIONS, LedgerUnusable, ledger_engine, open_ledger
from studio.ledger.book import Cost, Ledger
from studio.ledger.budget import BudgetExceeded, Limits, set_balance, standing
from studio.plan.jobs import Job, Phase

EXPECTED_SQLITE = Path(__file__).parent / "data" / "ledger_schema_sqlite.sql"
BEFORE_ISSUE_19 = 13  # m001..m013: the migrations whose SQLite DDL the fixture file holds


def job(name: str) -> Job:
    return Job(key=f"key-{name}", phase=Phase.PANEL, name=name, outputs={}, episode=1, panel=name)


def sqlite_schema(engine: Engine, names: set[str] | None = None) -> str:
    """The ledger's schema as SQLite stores it (the exact DDL text), in the fixture file's format."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name")).all()
    return "".join(f"-- {t} {n} on {tb}\n{sql};\n\n" for t, n, tb, sql in rows if names is None or n in names)


# ---------------------------------------------------------------- SQLite: byte for byte as before


def test_the_sqlite_migrations_write_the_same_ddl_as_before(tmp_path: Path) -> None:
    """tests/data/ledger_schema_sqlite.sql was made by m001..m013 before they learnt PostgreSQL."""
    engine = sqlite_engine(tmp_path / "ledger.db")
    with engine.begin() as conn:
        for migration in MIGRATIONS[:BEFORE_ISSUE_19]:
            migration(conn)
    assert sqlite_schema(engine) == EXPECTED_SQLITE.read_text(encoding="utf-8")
    engine.dispose()


def test_a_new_sqlite_ledger_holds_that_schema(tmp_path: Path) -> None:
    expected = EXPECTED_SQLITE.read_text(encoding="utf-8")
    names = {line.split()[2] for line in expected.splitlines() if line.startswith("-- ")}
    with ledger_engine(tmp_path) as engine:
        assert sqlite_schema(engine, names) == expected
        assert engine.dialect.name == "sqlite"


# ---------------------------------------------------------------- one generation's life, on both engines


def test_a_generation_from_reservation_to_settlement(tmp_path: Path, ledger_url: str | None) -> None:
    if ledger_url is not None:  # a server far from UTC: the ledger's sessions still store UTC
        with psycopg.connect(ledger_url, autocommit=True) as admin:
            admin.execute(f"ALTER DATABASE \"{make_url(ledger_url).database}\" SET timezone TO 'Pacific/Auckland'")
    with ledger_engine(tmp_path, ledger_url) as engine:
        ledger = Ledger(engine)
        with Session(engine) as session:
            set_balance(session, 5_000_000_000, "manual")  # $5,000: past a 32-bit integer
        cap = Limits(run_id="r1", run_cap_micro=4 * 10**9)
        row = ledger.reserve(job("p001"), "fal", "fal:test", 3_000_000_000, cap)
        assert row.id is not None and row.status == "reserved"
        with pytest.raises(BudgetExceeded, match="--max-cost cap of this run"):
            ledger.reserve(job("p002"), "fal", "fal:test", 1_500_000_000, cap)
        ledger.sending(row.id, payload_digest="d", payload_match="{}")
        ledger.submitted(row.id, "req-1", poll_url="https://fal.example/req-1")
        assert ledger.open_attempt(job("p001"), ["fal"]) is not None
        ledger.completed(row.id, Cost(3_000_000_000, reported_micro=2_750_000_001), "sha")
        settled = ledger.get(row.id)
        assert (settled.status, settled.actual_micro, settled.actual_source, settled.held_micro) == (
            "completed",
            2_750_000_001,
            "reported",
            0,
        )
        # Stored as naive UTC on both engines (what SQLite always held), read back as UTC.
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT sent_at FROM generation")).scalar()
        stored = datetime.fromisoformat(stored) if isinstance(stored, str) else stored
        assert stored.tzinfo is None and abs(stored - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=1)
        assert settled.sent_at == stored.replace(tzinfo=UTC)
        with Session(engine) as session:
            now = standing(session)
        assert (now.spent_micro, now.held_micro, now.remaining_micro) == (2_750_000_001, 0, 2_249_999_999)
        assert ledger.open_attempt(job("p001"), ["fal"]) is None


def test_two_engines_racing_reserve_only_what_fits(tmp_path: Path, ledger_url: str | None) -> None:
    """Two engines (as two machines would have) reserve at once: each check sees every other reservation."""
    engines = [open_ledger(tmp_path, database_url=ledger_url) for _ in range(2)]
    with Session(engines[0]) as session:
        set_balance(session, 250_000, "manual")  # room for 5 holds of 50_000
    accepted: list[str] = []
    barrier = threading.Barrier(8)

    def reserve(index: int) -> None:
        ledger = Ledger(engines[index % 2])
        barrier.wait()
        for attempt in range(3):
            name = f"e{index}-{attempt}"
            try:
                ledger.reserve(job(name), "fal", "fal:test", 50_000)
                accepted.append(name)
            except BudgetExceeded:
                pass

    threads = [threading.Thread(target=reserve, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = Ledger(engines[1]).rows()
    assert len(accepted) == 5 == len(rows)
    assert sum(row.held_micro for row in rows) == 250_000
    for engine in engines:
        engine.dispose()


# ---------------------------------------------------------------- PostgreSQL migrations


def _versions(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return [v for (v,) in conn.execute(text("SELECT version FROM schema_version ORDER BY version"))]


def _columns(engine: Engine) -> dict[str, dict[str, str]]:
    found = inspect(engine)
    return {table: {c["name"]: str(c["type"]) for c in found.get_columns(table)} for table in found.get_table_names()}


def test_postgres_migrates_once_with_wide_types(tmp_path: Path, postgres_database: str) -> None:
    first = open_ledger(tmp_path, database_url=postgres_database)
    shape = _columns(first)
    first.dispose()
    again = open_ledger(tmp_path, database_url=postgres_database)  # the second time is a no-op
    assert _versions(again) == list(range(1, len(MIGRATIONS) + 1))
    assert _columns(again) == shape
    again.dispose()
    assert shape["generation"]["estimate_micro"] == "BIGINT"  # money passes 2**31 micro-USD ($2,147)
    assert shape["build_stamp"]["mtime_ns"] == "BIGINT"
    assert shape["panel_score"]["value"] == "DOUBLE PRECISION"
    assert shape["generation"]["created_at"] == "TIMESTAMP"  # naive UTC, as on SQLite
    assert not (tmp_path / tables.LEDGER_FILE).exists(), "a PostgreSQL ledger leaves no SQLite file behind"


def test_two_machines_starting_at_once_migrate_once(tmp_path: Path, postgres_database: str) -> None:
    barrier = threading.Barrier(3)
    engines: list[Engine] = []
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            engines.append(open_ledger(tmp_path, database_url=postgres_database))
        except BaseException as exc:  # reported below: a thread's exception would otherwise vanish
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    assert _versions(engines[0]) == list(range(1, len(MIGRATIONS) + 1))
    for engine in engines:
        engine.dispose()


def test_an_older_postgres_ledger_is_upgraded_with_its_rows(tmp_path: Path, postgres_database: str) -> None:
    """m009, m010 and m013 change CHECKs, which SQLite does by rebuilding tables: PostgreSQL alters them in place."""
    old = postgres_engine(postgres_database)
    with old.begin() as conn:  # the ledger as m008 left it, with a reviewed take and a key's inputs
        conn.execute(text("CREATE TABLE schema_version (version BIGINT NOT NULL)"))
        for number, migration in enumerate(MIGRATIONS[:8], start=1):
            migration(conn)
            conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": number})
        conn.execute(
            text(
                "INSERT INTO panel_take VALUES ('final', 1, 'p001', 1, 'k1', 'approved', 'good', "
                "'2026-11-01 10:00', '2026-11-01 10:00')"
            )
        )
        conn.execute(text("INSERT INTO key_inputs VALUES ('k1', 1, 'panel', 'p001', 'p001', 'final', '{}', now())"))
        with pytest.raises(IntegrityError), conn.begin_nested():  # m008's CHECK: no 'preview' track yet
            conn.execute(text("INSERT INTO key_inputs VALUES ('k2', 1, 'panel', 'p2', 'p2', 'preview', '{}', now())"))
    old.dispose()
    engine = open_ledger(tmp_path, database_url=postgres_database)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT status, note FROM panel_take")).all() == [("approved", "good")]
        assert conn.execute(text("SELECT count(*) FROM key_inputs")).scalar() == 1
        conn.execute(
            text("INSERT INTO panel_take VALUES ('preview', 1, 'p001', 2, 'k2', 'not picked', NULL, now(), now())")
        )
        conn.execute(text("INSERT INTO key_inputs VALUES ('k2', 1, 'panel', 'p2', 'p2', 'preview', '{}', now())"))
        with pytest.raises(IntegrityError), conn.begin_nested():  # and the new CHECK still refuses the unknown
            conn.execute(
                text("INSERT INTO panel_take VALUES ('final', 1, 'p001', 3, 'k3', 'lost', NULL, now(), now())")
            )
    engine.dispose()


def test_every_transaction_takes_the_ledger_lock(tmp_path: Path, ledger_url: str | None) -> None:
    """While one engine holds a transaction, another engine's reservation waits for it: SQLite's BEGIN IMMEDIATE,
    PostgreSQL's advisory lock."""
    holder = open_ledger(tmp_path, database_url=ledger_url)
    other = Ledger(open_ledger(tmp_path, database_url=ledger_url))
    done = threading.Event()
    with holder.begin() as conn:
        conn.execute(text("SELECT 1"))
        racer = threading.Thread(target=lambda: (other.reserve(job("w"), "fal", "fal:test", 1), done.set()))
        racer.start()
        assert not done.wait(0.5), "a reservation ran while another transaction held the ledger"
    assert done.wait(10)
    racer.join()
    holder.dispose()
    other.engine.dispose()


# ---------------------------------------------------------------- when the database cannot be used


def test_an_unreachable_server_is_one_line_without_the_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://studio:hunter2-s3cret@127.0.0.1:{port}/team"
    with pytest.raises(LedgerUnusable) as refused:
        open_ledger(tmp_path, database_url=url)
    message = str(refused.value)
    assert "hunter2-s3cret" not in message
    assert f"cannot reach the ledger database postgresql://studio:***@127.0.0.1:{port}/team" in message
    assert "STUDIO_DATABASE_URL" in message and "\n" not in message


def test_a_malformed_url_is_refused_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(LedgerUnusable, match="URL is not valid") as refused:
        open_ledger(tmp_path, database_url="postgresql://studio:s3cret-pw@db.example:port/team")
    assert "s3cret-pw" not in str(refused.value)


def test_a_missing_database_says_how_to_create_it(tmp_path: Path, postgres_server) -> None:  # type: ignore[no-untyped-def]
    url = postgres_server.database_url("studio_no_such_db")
    with pytest.raises(LedgerUnusable, match=r"does not exist .*createdb studio_no_such_db"):
        open_ledger(tmp_path, database_url=url)


def test_an_unknown_user_is_a_refused_login(tmp_path: Path, postgres_server) -> None:  # type: ignore[no-untyped-def]
    url = make_url(postgres_server.url).set(username="nobody_here", password="pw-of-nobody")
    with pytest.raises(LedgerUnusable, match=r"refused the login .*STUDIO_DATABASE_URL") as refused:
        open_ledger(tmp_path, database_url=url.render_as_string(hide_password=False))
    assert "pw-of-nobody" not in str(refused.value)


def test_the_cli_reports_a_wrong_password_in_one_line(sample: Path, studio_process, postgres_server) -> None:  # type: ignore[no-untyped-def]
    """A server that asks this role for its password, given a wrong one, through `studio`."""
    postgres_server.admin(f"DROP ROLE IF EXISTS {PASSWORD_ROLE}")
    postgres_server.admin(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD 'right-one'")
    wrong = make_url(postgres_server.url).set(username=PASSWORD_ROLE, password="wr0ng-pass")
    try:
        psycopg.connect(wrong.render_as_string(hide_password=False)).close()
        pytest.skip("this server lets the role in without its password (STUDIO_TEST_DATABASE_URL's trusts it)")
    except psycopg.OperationalError:
        pass
    env = {"STUDIO_DATABASE_URL": wrong.render_as_string(hide_password=False)}
    done = studio_process("--project", sample, "cost", cwd=sample, env=env)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "wr0ng-pass" not in output and "Traceback" not in output
    assert f"the ledger database postgresql://{PASSWORD_ROLE}:***@127.0.0.1" in output
    assert "refused the login" in output


def test_the_cli_keeps_a_team_ledger_in_postgres(sample: Path, cli, postgres_database: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """STUDIO_DATABASE_URL moves every command's ledger: a balance set by one command is in PostgreSQL, and no
    .studio/ledger.db is made."""
    monkeypatch.setenv("STUDIO_DATABASE_URL", postgres_database)
    assert cli("--project", sample, "budget", "set", "12.50").exit_code == 0
    with psycopg.connect(postgres_database) as conn:
        assert conn.execute("SELECT amount_micro, source FROM budget").fetchall() == [(12_500_000, "manual")]
    shown = json.loads(cli("--project", sample, "budget", "--json").stdout)
    assert (shown["balance_micro"], shown["remaining_micro"]) == (12_500_000, 12_500_000)
    assert not (sample / ".studio" / tables.LEDGER_FILE).exists()


def test_the_store_index_is_upserted_on_both_engines(tmp_path: Path, ledger_url: str | None) -> None:
    """The store writes its index with the dialect's own INSERT ... ON CONFLICT DO UPDATE."""
    from studio.run.store import ArtifactStore

    with ledger_engine(tmp_path, ledger_url) as engine:
        store = ArtifactStore(tmp_path, engine)
        store.put("job-1", {"image": (b"first", "image/png")})
        store.put("job-1", {"image": (b"second, longer", "image/png")})  # the same (job, name): updated
        found = ArtifactStore(tmp_path, engine).lookup("job-1")
    assert found is not None and found["image"].size == len(b"second, longer")
