"""Shared fixtures: a private copy of the sample project, and ways to run the CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from studio.cli.app import app
from studio.db.tables import open_ledger

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PARTS = ("studio.toml", "characters", "styles", "locations", "episodes")


def copy_sample(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for part in SAMPLE_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            shutil.copy2(source, target / part)
    return target


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A fresh copy of the sample webtoon, so tests can edit and run it freely."""
    return copy_sample(tmp_path / "project")


@pytest.fixture
def cli() -> Callable[..., object]:
    """Run `studio ARGS...` in-process; returns the click Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def episode_made(sample: Path, cli) -> Path:  # type: ignore[no-untyped-def]
    """The sample project with episode 1 made by the draft provider."""
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    return sample


@pytest.fixture
def studio_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `studio` command as a subprocess (the way a user does)."""

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240):
        full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "studio", *[str(a) for a in args]],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


FAL_SETTINGS = """

[providers.fal]
poll_interval = 0.05
request_timeout = 5
"""


@pytest.fixture
def fake_fal():  # type: ignore[no-untyped-def]
    """The fake fal queue server on loopback (HTTPS with a throwaway CA)."""
    from fakes.fal import FakeFal

    with FakeFal(latency=0.1, stall_seconds=8) as fake:
        yield fake


@pytest.fixture
def fal_project(sample: Path) -> Path:
    """The sample project, polling the fake fal quickly."""
    with (sample / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write(FAL_SETTINGS)
    return sample


@pytest.fixture
def fake_bfl():  # type: ignore[no-untyped-def]
    """The fake Black Forest Labs API: submission and polling on two different loopback ports."""
    from fakes.bfl import FakeBfl

    with FakeBfl(latency=0.1, stall_seconds=8) as fake:
        yield fake


@pytest.fixture
def bfl_project(sample: Path) -> Path:
    with (sample / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n[providers.bfl]\npoll_interval = 0.05\nrequest_timeout = 5\n")
    return sample


# --- PostgreSQL: a throwaway server for the ledger's second engine (issue 19) ---------------------------------------
# One server per test session, a fresh database per test. STUDIO_TEST_DATABASE_URL names a server to use instead (its
# database is only used to create and drop the tests' own). Without PostgreSQL the tests that need it are skipped,
# except in CI (CI=true) or with STUDIO_REQUIRE_POSTGRES=1, where a missing server is a failure, not a skip.


PASSWORD_ROLE = "studio_pw"  # the one role the throwaway server asks a password of (scram-sha-256)


@dataclass(frozen=True)
class PostgresServer:
    url: str  # a superuser's URL to a maintenance database (postgresql://user@host:port/postgres)

    def database_url(self, name: str) -> str:
        return make_url(self.url).set(database=name).render_as_string(hide_password=False)

    def admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"studio_test_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def drop_database(self, url: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]), reverse=True)
    return str(candidates[0]) if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_missing(message: str) -> None:
    if os.environ.get("CI") == "true" or os.environ.get("STUDIO_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{message} (CI=true or STUDIO_REQUIRE_POSTGRES=1: PostgreSQL is required here)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A PostgreSQL server for this session: STUDIO_TEST_DATABASE_URL's, or one started in a temporary data
    directory (trust auth, 127.0.0.1 on a free port, fsync off), stopped at the end of the session."""
    given = os.environ.get("STUDIO_TEST_DATABASE_URL")
    if given:
        yield PostgresServer(given)
        return
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        _postgres_missing("PostgreSQL not installed: apt-get install postgresql")
    assert initdb is not None and pg_ctl is not None
    base = Path(tempfile.mkdtemp(prefix="studio-pg-"))  # short: a socket path must stay under ~100 bytes
    data, log = base / "data", base / "server.log"
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: the cluster is the postgres user's
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off -c synchronous_commit=off"
    options += " -c full_page_writes=off -c max_connections=200"
    cluster = ["-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"]
    started = False
    try:
        subprocess.run(
            [*as_user, initdb, *cluster, "--no-instructions"],
            check=True,
            capture_output=True,
            text=True,
        )
        # Trust, except for one role that must give its password: what the tests of a wrong one log in as.
        hba = f"local all all trust\nhost all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
        hba += "host all all 127.0.0.1/32 trust\n"
        (data / "pg_hba.conf").write_text(hba, encoding="utf-8")
        start = subprocess.run(
            [*as_user, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-t", "30", "-o", options, "start"],
            capture_output=True,
            text=True,
        )
        started = start.returncode == 0
        if not started:
            server_log = log.read_text(errors="replace") if log.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {start.stdout}{start.stderr}{server_log}", pytrace=False)
        yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"initdb failed: {exc.stdout}{exc.stderr}", pytrace=False)
    finally:
        if started or data.joinpath("postmaster.pid").exists():
            subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped after the test."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest) -> str | None:
    """The ledger's database for a test that runs on both engines: None (SQLite in the state dir) or a fresh
    PostgreSQL database. Pass it as `database_url=` to open_ledger / ledger_engine, or as STUDIO_DATABASE_URL."""
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def engine(tmp_path: Path, ledger_url: str | None) -> Iterator[Engine]:
    """A ledger in tmp_path/.studio on each engine in turn (SQLite, then a fresh PostgreSQL database)."""
    opened = open_ledger(tmp_path / ".studio", database_url=ledger_url)
    try:
        yield opened
    finally:
        opened.dispose()


# --- end of the PostgreSQL block ------------------------------------------------------------------------------------
