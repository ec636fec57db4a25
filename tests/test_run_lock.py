"""The project run lock: a second holder is refused at once with the first one's pid, and a killed holder frees it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.run.lock import RunInProgress, project_run_lock

HOLDER = """
import sys, time
from pathlib import Path
from studio.run.lock import project_run_lock
with project_run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def _hold(state_dir: Path) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(state_dir)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_holder_is_refused_at_once_naming_the_first(tmp_path: Path) -> None:
    state_dir = tmp_path / ".studio"
    holder = _hold(state_dir)
    try:
        started = time.monotonic()
        with pytest.raises(RunInProgress) as refused, project_run_lock(state_dir):
            pytest.fail("the lock was taken twice")
        assert time.monotonic() - started < 2, "refused at once, never waiting"
        assert f"(process {holder.pid})" in str(refused.value)
    finally:
        holder.kill()  # SIGKILL on POSIX: no cleanup code runs in the holder
        holder.communicate(timeout=30)
    assert holder.returncode != 0
    with project_run_lock(state_dir):  # the OS released the killed holder's lock
        assert (state_dir / "run.pid").read_text(encoding="utf-8").strip() == str(os.getpid())


def test_released_on_leaving_the_block_and_the_pid_note_removed(tmp_path: Path) -> None:
    state_dir = tmp_path / ".studio"
    with project_run_lock(state_dir):
        assert (state_dir / "run.pid").is_file()
    assert not (state_dir / "run.pid").exists()
    with project_run_lock(state_dir):
        pass


def test_released_when_the_block_raises(tmp_path: Path) -> None:
    state_dir = tmp_path / ".studio"
    with pytest.raises(KeyError), project_run_lock(state_dir):
        raise KeyError("boom")
    with project_run_lock(state_dir):
        pass
