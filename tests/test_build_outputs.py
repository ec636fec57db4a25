"""build/ holds copies of the store's objects: cheap to keep up to date, never trusted blindly.

A re-run does not hash files whose stat is the one studio recorded when it wrote them (issue 17);
a file a user edits or deletes is still found and restored from the store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import studio.run.store as store

PANEL = "build/episodes/ep001/panels/p003.png"


@pytest.fixture
def made(episode_made: Path) -> Path:
    return episode_made


@pytest.fixture
def watched(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Path]]:
    """The build/ files hashed and copied by the runs that follow."""
    seen: dict[str, list[Path]] = {"hashed": [], "copied": []}
    real_hash, real_copy = store._sha256_file, store.copy_atomic

    def hashing(path: Path) -> str:
        seen["hashed"].append(path)
        return real_hash(path)

    def copying(source: Path, target: Path) -> None:
        seen["copied"].append(target)
        real_copy(source, target)

    monkeypatch.setattr(store, "_sha256_file", hashing)
    monkeypatch.setattr(store, "copy_atomic", copying)
    return seen


def test_a_rerun_reads_no_build_file_back(made: Path, cli, watched) -> None:  # type: ignore[no-untyped-def]
    assert cli("--project", made, "run", "episode", "1").exit_code == 0
    assert watched == {"hashed": [], "copied": []}
    with sqlite3.connect(made / ".studio/ledger.db") as db:
        stamped = {path for (path,) in db.execute("SELECT path FROM build_stamp")}
    assert PANEL in stamped and all((made / path).is_file() for path in stamped)


def test_an_edited_build_file_is_restored(made: Path, cli, watched) -> None:  # type: ignore[no-untyped-def]
    target = made / PANEL
    original = target.read_bytes()
    with target.open("r+b") as handle:  # edited in place: same size, same inode, new content
        handle.seek(len(original) // 2)
        handle.write(b"\x00" * 64)
    assert target.read_bytes() != original and target.stat().st_size == len(original)
    assert cli("--project", made, "run", "episode", "1").exit_code == 0
    assert target.read_bytes() == original
    assert watched["copied"] == [target], "only the edited file is written again"
    assert watched["hashed"] == [target], "only the file whose stat changed is read"


def test_a_replaced_and_a_deleted_build_file_are_restored(made: Path, cli, watched) -> None:  # type: ignore[no-untyped-def]
    target = made / PANEL
    original = target.read_bytes()
    other = made / "build/episodes/ep001/panels/p001.png"
    target.unlink()
    other.write_bytes(b"a user's own picture")  # a new file (a new inode, another size) under the name
    assert cli("--project", made, "run", "episode", "1").exit_code == 0
    assert target.read_bytes() == original
    assert other.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(watched["copied"]) == sorted([target, other])
    assert cli("--project", made, "run", "episode", "1").exit_code == 0
    assert sorted(watched["copied"]) == sorted([target, other]), "and then they are left alone"


def test_a_copy_with_the_same_bytes_is_checked_once_and_kept(made: Path, cli, watched) -> None:  # type: ignore[no-untyped-def]
    target = made / PANEL
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data)  # the same bytes, another inode: hashed, found right, stamped again
    assert cli("--project", made, "run", "episode", "1").exit_code == 0
    assert (watched["hashed"], watched["copied"]) == ([target], [])
    assert cli("--project", made, "run", "episode", "1").exit_code == 0
    assert (watched["hashed"], watched["copied"]) == ([target], [])
