"""Run locks per episode: the same episode twice is refused at once naming the holder's host and pid, other
episodes run meanwhile, a killed holder frees its lock, and `studio ledger reconcile` waits for no run (issue 19,
item 3). On SQLite (lock files) and on PostgreSQL (advisory locks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from studio.run.lock import VARIATION_TEST, RunInProgress, episode_scope, ledger_lock, run_lock

HOST = socket.gethostname()

HOLDER = """
import sys, time
from pathlib import Path
from studio.db.tables import open_ledger
from studio.run.lock import episode_scope, run_lock
state_dir, number, url = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] or None
engine = open_ledger(state_dir, database_url=url) if url else open_ledger(state_dir)
with run_lock(state_dir, engine, episode_scope(number)):
    print("locked", flush=True)
    time.sleep(120)
"""


def _hold(state_dir: Path, number: int, url: str | None = None) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state_dir), str(number), url or ""], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _kill(holder: subprocess.Popen[str]) -> None:
    holder.kill()  # SIGKILL on POSIX: no cleanup code runs in the holder
    holder.communicate(timeout=30)


def test_the_same_episode_twice_is_refused_at_once_naming_host_and_pid_and_a_kill_frees_it(
    tmp_path: Path, engine: Engine, ledger_url: str | None
) -> None:
    state_dir = tmp_path / ".studio"
    holder = _hold(state_dir, 3, ledger_url)
    try:
        started = time.monotonic()
        with pytest.raises(RunInProgress) as refused, run_lock(state_dir, engine, episode_scope(3)):
            pytest.fail("episode 3 was locked twice")
        assert time.monotonic() - started < 2, "refused at once, never waiting"
        assert f"episode 3 is being run by studio on {HOST} (process {holder.pid})" in str(refused.value)
        with run_lock(state_dir, engine, episode_scope(4)):  # another episode runs meanwhile
            pass
    finally:
        _kill(holder)
    assert holder.returncode != 0
    deadline = time.monotonic() + 10  # PostgreSQL notices the closed connection within moments
    while True:
        try:
            with run_lock(state_dir, engine, episode_scope(3)):  # the killed holder's lock is gone
                break
        except RunInProgress:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_released_on_leaving_the_block_also_when_it_raises(engine: Engine, tmp_path: Path) -> None:
    state_dir = tmp_path / ".studio"
    with pytest.raises(KeyError), run_lock(state_dir, engine, episode_scope(1)):
        raise KeyError("boom")
    with run_lock(state_dir, engine, episode_scope(1)), run_lock(state_dir, engine, VARIATION_TEST):
        pass
    if engine.dialect.name == "sqlite":
        assert not list((state_dir / "locks").glob("*.holder")), "the holder notes are removed"


def test_ledger_settling_waits_for_no_run_and_holds_runs_off(engine: Engine, tmp_path: Path) -> None:
    state_dir = tmp_path / ".studio"
    with run_lock(state_dir, engine, episode_scope(2)):
        with pytest.raises(RunInProgress) as refused, ledger_lock(state_dir, engine, "studio ledger reconcile"):
            pytest.fail("settled while a run holds episode 2")
        assert f"episode 2 is being run by studio on {HOST} (process {os.getpid()})" in str(refused.value)
        assert "'studio ledger reconcile'" in str(refused.value)
    with ledger_lock(state_dir, engine, "studio ledger reconcile"):
        with pytest.raises(RunInProgress) as held_off, run_lock(state_dir, engine, episode_scope(5)):
            pytest.fail("a run started while the ledger is being settled")
        assert "'studio ledger' command is settling the ledger" in str(held_off.value)
    with run_lock(state_dir, engine, episode_scope(5)):
        pass


@pytest.fixture(autouse=True)
def _quick_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run held off by a ledger command waits a moment at the gate before it is refused: shortened here."""
    monkeypatch.setattr("studio.run.lock.GATE_WAIT", 0.2)


def test_through_the_cli_the_same_episode_is_refused_and_another_runs(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    holder = _hold(sample / ".studio", 1)
    try:
        refused = cli("--project", sample, "run", "episode", "1")
        assert refused.exit_code != 0
        said = " ".join((refused.stdout + refused.stderr).split())
        assert f"episode 1 is being run by studio on {HOST} (process {holder.pid})" in said
        assert "Traceback" not in said
        reconcile = cli("--project", sample, "ledger", "reconcile")
        assert reconcile.exit_code != 0
        assert f"episode 1 is being run by studio on {HOST} (process {holder.pid})" in " ".join(
            (reconcile.stdout + reconcile.stderr).split()
        )
        other = cli("--project", sample, "run", "episode", "2", "--only", "p001")
        assert other.exit_code == 0, other.stdout + other.stderr
    finally:
        _kill(holder)
    assert (sample / "build" / "episodes" / "ep002").is_dir()
