"""A shared store (`store = "…"` in studio.toml): objects go there whole (temp file, fsync, rename in the same
folder), a missing or unwritable one is refused naming the setting, the lost-ledger check looks there, and a
run never sweeps another machine's writes in progress from it (issue 19, item 2)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from studio.core.errors import StorageError
from studio.db.tables import open_ledger
from studio.project.loader import load_project
from studio.run import store as store_module
from studio.run.store import ArtifactStore, objects_folder


def _use_store(project: Path, store: str) -> None:
    config = project / "studio.toml"  # a top-level key: before the first [table]
    config.write_text(f'store = "{store}"\n' + config.read_text(encoding="utf-8"), encoding="utf-8")


def _said(result) -> str:  # type: ignore[no-untyped-def]
    return " ".join((result.stdout + result.stderr).split())


def test_a_run_keeps_its_objects_in_the_shared_store_whole(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    team = sample.parent / "team-objects"
    team.mkdir()
    _use_store(sample, "../team-objects")

    result = cli("--project", sample, "run", "episode", "2", "--only", "p001")
    assert result.exit_code == 0, _said(result)
    # Another machine's write in progress: its pid means nothing here, so the next run does not sweep it.
    elsewhere = team / "ab" / f".{'ab' * 32}.png.4194000.x1y2.tmp"
    elsewhere.parent.mkdir(exist_ok=True)
    elsewhere.write_bytes(b"half an image")
    again = cli("--project", sample, "run", "episode", "2", "--only", "p001")
    assert again.exit_code == 0, _said(again)
    objects = [p for p in team.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert objects, "the run's objects are in the shared store"
    for path in objects:  # each whole: its bytes hash to its name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name.split(".")[0]
    assert not (sample / ".studio" / "objects").exists(), "nothing in the project's own store"
    assert [p for p in team.rglob(".*.tmp")] == [elsewhere], "no temp file of its own left, the other's kept"

    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
        (sample / ".studio" / name).unlink(missing_ok=True)
    lost = cli("--project", sample, "run", "episode", "2", "--only", "p001")
    assert lost.exit_code != 0
    assert f"{team.resolve()} holds images a ledger recorded" in _said(lost), "the lost-ledger check looks there"


def test_a_store_folder_that_is_not_there_is_refused_naming_the_setting(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    _use_store(sample, "../not-mounted")
    result = cli("--project", sample, "run", "episode", "2", "--only", "p001")
    assert result.exit_code != 0
    said = _said(result)
    assert 'store = "../not-mounted" in studio.toml' in said and "does not exist" in said
    assert "Traceback" not in said
    assert not (sample.parent / "not-mounted").exists(), "never created: a share that is not mounted stays visible"


def test_a_store_folder_that_takes_no_file_is_refused_naming_the_setting(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sample.parent / "read-only").mkdir()
    _use_store(sample, "../read-only")

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(store_module.tempfile, "mkstemp", refuse)  # root writes anywhere: the refusal is faked
    with pytest.raises(StorageError) as refused:
        objects_folder(load_project(sample))
    assert "cannot write the store folder" in str(refused.value)
    assert 'store = "../read-only" in studio.toml' in str(refused.value)


def test_an_object_is_written_beside_its_name_fsynced_then_renamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "team-objects"
    engine = open_ledger(tmp_path / ".studio")
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}") if Path("/proc/self/fd").is_dir() else ""))
        real_fsync(fd)

    def replace(source, target) -> None:  # type: ignore[no-untyped-def]
        steps.append(("replace", f"{source} -> {target}"))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    try:
        stored = ArtifactStore(tmp_path / ".studio", engine, objects=shared).write({"image": (b"pixels", "image/png")})
    finally:
        engine.dispose()
    path = stored["image"].path
    assert path.parent.parent == shared and path.read_bytes() == b"pixels"
    assert [kind for kind, _ in steps] == ["fsync", "replace"], "fsync'd before it takes its name"
    source, target = steps[1][1].split(" -> ")
    assert Path(source).parent == path.parent, "the temp file is in the object's own folder (one filesystem)"
    assert Path(target) == path
    assert not list(shared.rglob(".*.tmp"))


def test_two_checkouts_on_one_team_ledger_keep_their_own_build_stamps(
    tmp_path: Path, postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each checkout's build/ files have their own stats: stamped under one key, two machines would
    overwrite each other's stamps and hash every output again on every run."""
    engine = open_ledger(tmp_path / "state", database_url=postgres_database)
    store = ArtifactStore(tmp_path / "state", engine, objects=tmp_path / "objects")
    (stored,) = store.write({"image": (b"\x89PNG" + b"panel" * 1000, "image/png")}).values()
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    assert store.materialise(stored, machine_a, "build/p001.png")
    assert store.materialise(stored, machine_b, "build/p001.png")
    store.later.flush()
    hashed: list[Path] = []
    real = store_module._sha256_file
    monkeypatch.setattr(store_module, "_sha256_file", lambda path: hashed.append(path) or real(path))
    again = ArtifactStore(tmp_path / "state", engine, objects=tmp_path / "objects")  # a later run: stamps re-read
    for root in (machine_a, machine_b):
        assert not again.materialise(stored, root, "build/p001.png")
    assert hashed == [], "each checkout's file matched its own stamp, unread"
    (machine_b / "build/p001.png").write_bytes(b"\x89PNG" + b"edit" * 1250)  # a user's edit is still seen
    assert again.materialise(stored, machine_b, "build/p001.png")
    assert (machine_b / "build/p001.png").read_bytes() == stored.path.read_bytes()
    engine.dispose()
