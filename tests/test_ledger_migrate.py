"""`studio ledger migrate`: a project's SQLite ledger copied into PostgreSQL, every row, id and total kept.

The copy's checks (counts and money totals, compared before the one transaction commits) are tested on
SQLite -> SQLite with a target that tampers with what it is given (a trigger); the whole command on a
draft-made sample project into a fresh PostgreSQL database (skipped where the server fixture skips).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

from studio.core.errors import StorageError
from studio.db.copy import CopyDiffers, TargetNotEmpty, copy_ledger, ledger_tables, read_only_sqlite
from studio.db.tables import LEDGER_FILE, open_ledger
from studio.ledger.book import Cost, Ledger
from studio.ledger.budget import set_balance
from studio.plan.jobs import Job, Phase

PAID_MICRO = 4_900 + 12_345  # what `add_paid_rows` settles as spent
SECRET = "hunter2-not-a-real-password"


def add_paid_rows(state_dir: Path) -> None:
    """Paid generations as a run leaves them (completed at a reported and at a computed cost, one lost and
    still held, one refused), a budget, and an alert, through the Ledger API."""
    engine = open_ledger(state_dir)
    ledger = Ledger(engine)

    def job(panel: str) -> Job:
        return Job(key=f"paid-{panel}", phase=Phase.PANEL, name=panel, outputs={}, episode=1, panel=panel)

    done = ledger.reserve(job("p001"), "fal", "fal:fal-ai/flux-2/flash", 5_000)
    assert done.id is not None
    ledger.sending(done.id, "digest-1", '{"prompt": "a harbour"}')
    ledger.submitted(done.id, "req-1")
    ledger.completed(done.id, Cost(5_000, reported_micro=4_900), "a" * 64)
    computed = ledger.reserve(job("p002"), "fal", "fal:fal-ai/flux-2-pro", 30_000)
    assert computed.id is not None
    ledger.sending(computed.id)
    ledger.submitted(computed.id, "req-2")
    ledger.completed(computed.id, Cost(30_000, computed_micro=12_345), "b" * 64)
    lost = ledger.reserve(job("p003"), "fal", "fal:fal-ai/flux-2/flash", 8_000)
    assert lost.id is not None
    ledger.sending(lost.id)
    ledger.unknown(lost.id, "the connection reset after the request was sent")
    refused = ledger.reserve(job("p004"), "bfl", "bfl:flux-2-pro", 3_000)
    assert refused.id is not None
    ledger.failed(refused.id, "content policy violation", 0, failure="rejected")
    with Session(engine) as session:
        set_balance(session, 20_000_000, "manual")
    assert ledger.new_alerts(1, target_per_panel_micro=1, with_average=True)
    engine.dispose()


def dump(engine: Engine) -> dict[str, list[dict[str, object]]]:
    """Every row of every table the copy carries, as dicts, sorted by primary key (not the database's collation)."""
    with engine.connect() as conn:
        out = {}
        for table in ledger_tables(conn):
            rows = [dict(row._mapping) for row in conn.execute(select(table))]
            keys = [c.name for c in table.primary_key.columns]
            out[table.name] = sorted(rows, key=lambda row: tuple(row[k] for k in keys))
        return out


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A SQLite ledger holding paid rows."""
    state = tmp_path / "source"
    add_paid_rows(state)
    return state / LEDGER_FILE


# ---------------------------------------------------------------- the copy and its checks, SQLite -> SQLite


def test_a_copy_holds_every_row_and_id_of_the_source_and_returns_its_totals(source: Path, tmp_path: Path) -> None:
    target, reader = open_ledger(tmp_path / "target"), read_only_sqlite(source)
    copied = copy_ledger(reader, target, batch=2)  # several batches per table
    assert dump(target) == dump(reader)
    assert copied.rows["generation"] == 4 and copied.rows["budget"] == 1 and copied.rows["alert"] >= 1
    assert copied.money["generation.actual_micro"] == PAID_MICRO
    assert copied.money["generation.held_micro"] == 8_000
    assert copied.money["budget.amount_micro"] == 20_000_000
    assert "job_claim" not in copied.rows and "schema_version" not in copied.rows


def test_the_source_is_only_read(source: Path, tmp_path: Path) -> None:
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    reader = read_only_sqlite(source)
    copy_ledger(reader, open_ledger(tmp_path / "target"))
    with reader.connect() as conn, pytest.raises(Exception, match="readonly"):
        conn.execute(text("DELETE FROM generation"))
    reader.dispose()
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before
    engine = open_ledger(source.parent)  # and studio goes on using it as before
    assert [r.status for r in Ledger(engine).rows()] == ["completed", "completed", "unknown", "failed"]
    engine.dispose()


def test_a_source_that_is_not_a_ledger_is_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / LEDGER_FILE
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StorageError, match=r"^the copy failed \(file is not a database\); rolled back"):
        copy_ledger(read_only_sqlite(garbage), open_ledger(tmp_path / "target"))


@pytest.mark.parametrize(
    ("trigger", "named"),
    [
        ("UPDATE generation SET held_micro = held_micro + 1 WHERE id = NEW.id", "total of generation.held_micro"),
        ("UPDATE generation SET actual_micro = NULL WHERE id = NEW.id", "total of generation.actual_micro"),
        ("DELETE FROM generation WHERE id = NEW.id", "table generation holds 3 rows, the source 4"),
    ],
)
def test_a_copy_that_differs_is_rolled_back_naming_the_total(
    source: Path, tmp_path: Path, trigger: str, named: str
) -> None:
    target = open_ledger(tmp_path / "target")
    with target.begin() as conn:  # the target changes one row as it is written
        conn.execute(text(f"CREATE TRIGGER tamper AFTER INSERT ON generation WHEN NEW.id = 2 BEGIN {trigger}; END"))
    with pytest.raises(CopyDiffers, match=named) as refused:
        copy_ledger(read_only_sqlite(source), target)
    assert "rolled back, nothing was written" in str(refused.value)
    assert all(rows == [] for rows in dump(target).values()), "not one row of any table was committed"


def test_a_target_holding_a_ledger_is_refused_and_left_alone(source: Path, tmp_path: Path) -> None:
    target = open_ledger(tmp_path / "target")
    with Session(target) as session:
        set_balance(session, 1_000_000, "manual")
    with pytest.raises(TargetNotEmpty, match=r"already holds a ledger \(1 budget rows\).*an empty database"):
        copy_ledger(read_only_sqlite(source), target)
    assert [len(rows) for name, rows in dump(target).items() if rows] == [1]


def test_a_source_at_an_older_schema_is_refused_with_the_way_to_upgrade(source: Path, tmp_path: Path) -> None:
    engine = open_ledger(source.parent)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version)"))
    engine.dispose()
    with pytest.raises(Exception, match="run 'studio ledger' once in the project"):
        copy_ledger(read_only_sqlite(source), open_ledger(tmp_path / "target"))


# ---------------------------------------------------------------- the command, before any database is reached


def test_migrate_help_teaches_it(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("ledger", "migrate", "--help")
    assert result.exit_code == 0
    for words in ("--to", "postgresql://", "PGPASSWORD", "STUDIO_DATABASE_URL", "empty", "backup"):
        assert words in result.output


def test_migrate_needs_a_postgresql_target(sample: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    add_paid_rows(sample / ".studio")
    nowhere = cli("--project", sample, "ledger", "migrate")
    assert nowhere.exit_code == 2 and "--to postgresql://" in nowhere.output
    sqlite = cli("--project", sample, "ledger", "migrate", "--to", "sqlite:///elsewhere.db")
    assert sqlite.exit_code == 2 and "must be a postgresql:// URL (got sqlite://)" in sqlite.output


def test_migrate_is_refused_while_a_run_holds_the_project(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from studio.run.lock import episode_scope, run_lock

    add_paid_rows(sample / ".studio")
    engine = open_ledger(sample / ".studio")
    with run_lock(sample / ".studio", engine, episode_scope(2)):
        # Refused before the target is reached: this URL leads nowhere.
        result = cli("--project", sample, "ledger", "migrate", "--to", f"postgresql://me:{SECRET}@127.0.0.1:1/x")
    engine.dispose()
    assert result.exit_code != 0
    assert "episode 2 is being run by studio on" in result.output and "studio ledger migrate" in result.output
    assert SECRET not in result.output


# ---------------------------------------------------------------- into PostgreSQL, through the command


@pytest.fixture
def made_and_paid(episode_made: Path, cli) -> Path:  # type: ignore[no-untyped-def]
    """The sample with episode 1 made by the draft provider (draft generations, artifacts, takes, scores, runs,
    key inputs, build stamps), reviewed (an approval, a retake with a note), and paid rows and a budget added."""
    assert cli("--project", episode_made, "approve", "episode", "1", "p001").exit_code == 0
    assert cli("--project", episode_made, "retake", "episode", "1", "p002", "--note", "face off-model").exit_code == 0
    add_paid_rows(episode_made / ".studio")
    return episode_made


def with_password(url: str) -> str:
    """The URL with a password in it (the server trusts this user: it is never asked, but must never be shown)."""
    return make_url(url).set(password=SECRET).render_as_string(hide_password=False)


def test_migrate_copies_every_row_and_total_into_postgresql(  # type: ignore[no-untyped-def]
    made_and_paid: Path, postgres_database: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = made_and_paid
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    cost_before = cli("--project", root, "cost", "--episode", "1")
    cost_json_before = json.loads(cli("--project", root, "cost", "--episode", "1", "--json").output)
    ledger_file = root / ".studio" / LEDGER_FILE
    file_before = hashlib.sha256(ledger_file.read_bytes()).hexdigest()
    source = read_only_sqlite(ledger_file)
    expected = dump(source)
    source.dispose()
    assert [name for name, rows in expected.items() if not rows] == [], "every table has rows to copy"

    monkeypatch.setenv("STUDIO_DATABASE_URL", with_password(postgres_database))  # --to omitted: this is the target
    result = cli("--project", root, "ledger", "migrate")
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output and "***@" in result.output
    table = [[cell.strip() for cell in line.split("│")] for line in result.output.splitlines()]
    assert {cells[1]: int(cells[2]) for cells in table if len(cells) == 4} == {n: len(r) for n, r in expected.items()}
    assert "spent $0.0173, held $0.0080" in result.output  # 4,900 + 12,345 micro-USD spent, one lost submit held
    bare = make_url(postgres_database).render_as_string(hide_password=False)
    assert f"next: set STUDIO_DATABASE_URL={bare} (or database_url in studio.toml, the password in PGPASSWORD)" in (
        result.output
    )
    assert "keep it as a backup" in result.output
    assert hashlib.sha256(ledger_file.read_bytes()).hexdigest() == file_before, "the SQLite ledger is untouched"

    target = open_ledger(root / ".studio", database_url=postgres_database)
    assert dump(target) == expected, "every row of every table, ids and timestamps included"

    again = cli("--project", root, "ledger", "migrate", "--to", postgres_database)
    assert again.exit_code == 2 and "already holds a ledger" in again.output and "empty database" in again.output
    assert dump(target) == expected

    # New rows get ids past the copied ones (the identity sequences were moved on).
    ledger = Ledger(target)
    job = Job(key="after-migrate", phase=Phase.PANEL, name="p005", outputs={}, episode=1, panel="p005")
    row = ledger.reserve(job, "fal", "fal:fal-ai/flux-2/flash", 1_000)
    assert row.id == max(r["id"] for r in expected["generation"]) + 1
    with Session(target) as session:
        budget = set_balance(session, 5_000_000, "manual")
    assert budget.id == max(r["id"] for r in expected["budget"]) + 1
    with target.begin() as conn:
        conn.execute(text("DELETE FROM generation WHERE id = :id"), {"id": row.id})
        conn.execute(text("DELETE FROM budget WHERE id = :id"), {"id": budget.id})
    target.dispose()

    # Every machine set to the database reads the same totals as the SQLite ledger gave.
    cost_after = cli("--project", root, "cost", "--episode", "1")
    assert cost_after.exit_code == 0, cost_after.output
    assert cost_after.output == cost_before.output
    assert json.loads(cli("--project", root, "cost", "--episode", "1", "--json").output) == cost_json_before


def test_a_tampered_copy_into_postgresql_exits_non_zero_and_writes_nothing(  # type: ignore[no-untyped-def]
    sample: Path, postgres_database: str, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    add_paid_rows(sample / ".studio")
    target = open_ledger(sample / ".studio", database_url=postgres_database)  # the schema, and a trigger in it
    with target.begin() as conn:
        conn.execute(
            text("""
            CREATE FUNCTION tamper() RETURNS trigger AS $$
            BEGIN NEW.actual_micro := NEW.actual_micro + 1; RETURN NEW; END $$ LANGUAGE plpgsql
        """)
        )
        conn.execute(text("CREATE TRIGGER tamper BEFORE INSERT ON generation FOR EACH ROW EXECUTE FUNCTION tamper()"))
    result = cli("--project", sample, "ledger", "migrate", "--to", postgres_database)
    assert result.exit_code == 1, result.output
    assert "total of generation.actual_micro" in result.output and "rolled back, nothing was written" in result.output
    assert all(rows == [] for rows in dump(target).values())
    target.dispose()


def test_migrate_with_a_shared_store_copies_the_images_so_nothing_is_made_again(  # type: ignore[no-untyped-def]
    episode_made: Path, postgres_database: str, cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A laptop moving to the team's store: the ledger's index names images that live in .studio/objects, so
    migrate copies them into the shared store; the next run there finds every one (nothing made, or paid, again)."""
    root = episode_made
    local = sorted(p.relative_to(root / ".studio" / "objects") for p in (root / ".studio" / "objects").glob("??/*"))
    shared = tmp_path / "team-objects"
    shared.mkdir()
    toml = root / "studio.toml"
    toml.write_text(f'store = "{shared}"\n' + toml.read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("STUDIO_DATABASE_URL", postgres_database)

    result = cli("--project", root, "ledger", "migrate")
    assert result.exit_code == 0, result.output
    assert f"images: {len(local)} copied into {shared} (0 already there)" in " ".join(result.output.split())
    assert sorted(p.relative_to(shared) for p in shared.glob("??/*")) == local

    again = cli("--project", root, "run", "episode", "1")
    assert again.exit_code == 0, again.output
    total = next(line for line in again.output.splitlines() if line.lstrip("│ ").startswith("total"))
    generated, reused = (int(cell) for cell in [c.strip() for c in total.split("│")][2:4])
    assert (generated, reused > 0) == (0, True), again.output
    assert sorted(p.relative_to(shared) for p in shared.glob("??/*")) == local, "nothing new was made"
