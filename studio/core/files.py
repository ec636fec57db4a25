"""Writing files so that a crash never leaves a half-written one behind."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from studio.core.errors import StorageError


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, fsync, then rename over it.

    Readers see either the old file or the new one, never a torn write, even after
    kill -9 or a full disk.
    """

    def fill(fd: int, tmp: str) -> None:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    _replace_atomic(path, fill)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy `source` to a temporary file beside `target` (the kernel copies: sendfile), then rename
    it over `target`: a reader, or a run killed meanwhile, never sees a torn file. Not fsync'd: for
    copies that can always be made again (build/ outputs of the store's objects)."""

    def fill(fd: int, tmp: str) -> None:
        os.close(fd)
        shutil.copyfile(source, tmp)

    _replace_atomic(target, fill)


def _replace_atomic(path: Path, fill: Callable[[int, str], None]) -> None:
    """A temporary file beside `path`, filled by `fill(fd, its path)`, then renamed over `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The writer's pid in the name lets a later run sweep what a killed writer left behind.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
        try:
            fill(fd, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StorageError(_explain(exc, path)) from exc


def _explain(exc: OSError, path: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"cannot write {path}: the disk is full; free some space and run again (nothing was lost)"
    if exc.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
        return f"cannot write {path}: permission denied; check the folder's permissions and run again"
    return f"cannot write {path}: {exc.strerror or exc}"


def sweep_stale_temps(folder: Path) -> int:
    """Remove temporary files of writers that are no longer running (killed mid-write)."""
    removed = 0
    for tmp in folder.rglob(".*.tmp") if folder.is_dir() else []:
        parts = tmp.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        if pid is None or pid == os.getpid() or _alive(pid):
            continue
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
