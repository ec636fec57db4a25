"""One `studio run` at a time per project.

Two runs of the same episode at once would each see a job as not yet started and both pay
for it. The lock is an OS file lock on `.studio/run.lock`: it dies with its process (even
on kill -9), so a crashed run never leaves a stale lock behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from studio.core.errors import StudioError


class RunInProgress(StudioError):
    pass


@contextmanager
def project_run_lock(state_dir: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (documented); the ledger still refuses duplicates it can see
        yield
        return
    path = state_dir / "run.lock"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
    except OSError:  # a read-only .studio/ is reported by the ledger with its own message
        yield
        return
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInProgress(
                f"another 'studio run' is working in this project (process {holder}); two at once could pay "
                "twice for the same image. Wait for it to finish, or stop it (Ctrl-C keeps its work) and run again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
