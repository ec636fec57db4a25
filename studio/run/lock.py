"""One `studio run` at a time per project.

Two runs of the same episode at once would each see a job as not yet started and both pay
for it. The lock is `filelock`'s FileLock on `.studio/run.lock`: an OS lock (flock on POSIX,
msvcrt on Windows) that dies with its process, even on kill -9, so a crashed run never
leaves a stale lock behind. A second run never waits: it is refused at once, naming the
holder's process id, which the holder writes beside the lock in `.studio/run.pid` (filelock
may empty or lock the lock file itself, so it cannot carry the pid).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from filelock import FileLock, Timeout

from studio.core.errors import StorageError, StudioError
from studio.core.files import write_atomic

LOCK_FILE = "run.lock"
PID_FILE = "run.pid"


class RunInProgress(StudioError):
    pass


@contextmanager
def project_run_lock(state_dir: Path) -> Iterator[None]:
    """Hold the project's run lock for the block, or raise RunInProgress at once if another run holds it."""
    lock = FileLock(state_dir / LOCK_FILE, timeout=0)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except Timeout:  # a TimeoutError, hence an OSError: caught first
        raise RunInProgress(
            f"another 'studio run' is working in this project (process {_holder(state_dir)}); two at once could "
            "pay twice for the same image. Wait for it to finish, or stop it (Ctrl-C keeps its work) and run again"
        ) from None
    except OSError:  # a read-only .studio/ is reported by the ledger with its own message
        yield
        return
    pid_file = state_dir / PID_FILE
    try:
        with suppress(StorageError):  # the note is for the message only; the lock is what protects
            write_atomic(pid_file, str(os.getpid()).encode())
        yield
    finally:
        with suppress(OSError):
            pid_file.unlink(missing_ok=True)
        lock.release()


def _holder(state_dir: Path) -> str:
    try:
        return (state_dir / PID_FILE).read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"
