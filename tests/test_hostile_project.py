"""A project from a stranger (issue 21): hostile and broken inputs get a clear refusal, never a
hang, a traceback, a leak or lost files."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from studio.core.crashlog import scrub
from studio.core.project_files import (
    FileRefused,
    check_image_bytes,
    read_project_file,
    read_project_image,
    read_project_text,
)
from studio.core.terminal import clean
from studio.render.export import MANIFEST_NAME, PROFILES, ExportRefused, export_episode
from studio.render.strip import StripPanel, layout_strip

pytestmark = pytest.mark.timeout(600)

ESCAPE = "\x1b]0;pwned\x07\x1b[2J"
MASTER = 1600


# ---------------------------------------------------------------- helpers


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height: a decompression bomb, tiny on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = zlib.compress(b"\x00" * 1024)
    idat = b"IDAT" + data
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(data))
        + idat
        + struct.pack(">I", zlib.crc32(idat))
        + b"\x00\x00\x00\x00IEND\xaeB`\x82"
    )


def small_png(path: Path, size: tuple[int, int] = (64, 64)) -> Path:
    Image.new("RGB", size, (120, 80, 40)).save(path)
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every file's content hash (links and special files by what they are, never read)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith((".studio/logs", "build")) or path.is_dir() and not path.is_symlink():
            continue
        if path.is_symlink():
            found[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[rel] = "special"
    return found


def studio(project: Path, *args: str, timeout: float = 60, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "studio", "--project", str(project), *args],
        cwd=project,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def no_traceback(result) -> None:  # type: ignore[no-untyped-def]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]


# ---------------------------------------------------------------- the door, unit by unit


def test_the_door_refuses_links_out_devices_fifos_oversized_and_disguised_files(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    (root / "out.yaml").symlink_to(outside)
    (root / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(root / "pipe.yaml")
    (root / "big.yaml").write_bytes(b"a" * (4 * 1024 * 1024 + 1))
    (root / "fine.yaml").write_text("a: 1\n")
    (root / "inner.yaml").symlink_to(root / "fine.yaml")  # a link inside the project is fine
    (root / "eps.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    (root / "bomb.png").write_bytes(png_header(30_000, 30_000))
    (root / "latin1.yaml").write_bytes(b"caf\xe9: 1\n")
    cases = {
        "out.yaml": "outside the project",
        "zero.yaml": "outside the project",
        "pipe.yaml": "FIFO",
        "big.yaml": "the limit for a yaml file",
        "latin1.yaml": "not UTF-8",
        "missing.yaml": "no such file",
    }
    for name, why in cases.items():
        with pytest.raises(FileRefused, match=why) as refused:
            read_project_text(root, root / name, "yaml")
        assert str(refused.value).startswith(f"{name}: ")
    assert read_project_text(root, root / "inner.yaml", "yaml") == "a: 1\n"
    with pytest.raises(FileRefused, match="not a PNG, JPEG or WebP"):
        read_project_image(root, root / "eps.png")
    with pytest.raises(FileRefused, match="decompression bomb"):
        read_project_image(root, root / "bomb.png")
    (root / "wide.png").write_bytes(png_header(30_000, 100))
    with pytest.raises(FileRefused, match="30000x100 pixels"):
        read_project_image(root, root / "wide.png")
    assert check_image_bytes(small_png(root / "ok.png").read_bytes(), "ok.png").format == "PNG"
    # A path written outside the project is the user's own choice (an explicit --from FILE).
    assert read_project_file(root, outside, "script") == b"secret"


def test_terminal_text_loses_its_control_sequences() -> None:
    assert clean(f"ep{ESCAPE}001\r") == "ep001\\x0d"
    assert clean("line one\nline\ttwo") == "line one\nline\ttwo"
    assert "\x1b" not in clean("\x1b[31mred\x1b[0m \x9b2J \x07bell")


def test_crash_logs_never_hold_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "fal-secret-0123456789")
    text = scrub("headers={'Authorization': 'Key fal-secret-0123456789'} and FAL_KEY=fal-secret-0123456789")
    assert "fal-secret" not in text


# ---------------------------------------------------------------- exports keep what they did not write


def strip_layout(folder: Path, count: int = 3):  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    panels = []
    for index in range(count):
        path = small_png(folder / f"p{index + 1:03d}.png", (MASTER, 1200))
        panels.append(StripPanel(f"p{index + 1:03d}", path, 1200, 200, ()))
    return layout_strip(panels, MASTER)


def test_export_into_a_folder_of_the_users_files_is_refused_and_keeps_them(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "manifest.json").write_text('{"my": "own manifest"}')
    (out / "ep001_001.jpg").write_bytes(b"my drawing")
    (out / "notes.txt").write_text("notes")
    before = snapshot(out)
    with pytest.raises(ExportRefused, match="not empty .* no studio export of episode 1"):
        export_episode(strip_layout(tmp_path / "panels"), PROFILES["webtoon"], out, 1, "ep001")
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "panels"]


def test_export_out_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("keep")
    with pytest.raises(ExportRefused, match="is a file, not a folder"):
        export_episode(strip_layout(tmp_path / "panels"), PROFILES["webtoon"], target, 1, "ep001")
    assert target.read_text() == "keep"


def test_a_previous_export_is_replaced_whole_and_added_files_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    layout = strip_layout(tmp_path / "panels", 4)
    first = export_episode(layout, PROFILES["generic"], out, 2, "ep002")
    inode = out.stat().st_ino
    second = export_episode(strip_layout(tmp_path / "panels2", 2), PROFILES["webtoon"], out, 2, "ep002")
    assert out.stat().st_ino != inode, "a whole folder took the old one's place"
    assert {p.name for p in out.iterdir()} == {f.file for f in second.files} | {MANIFEST_NAME}
    (out / "cover.png").write_bytes(b"the user's")
    third = export_episode(layout, PROFILES["generic"], out, 2, "ep002")
    assert {p.name for p in out.iterdir()} == {f.file for f in third.files} | {MANIFEST_NAME, "cover.png"}
    assert (out / "cover.png").read_bytes() == b"the user's"
    assert first.files == third.files
    with pytest.raises(ExportRefused, match="no studio export of episode 3"):
        export_episode(layout, PROFILES["generic"], out, 3, "ep003")  # another episode's folder


def test_interrupted_export_staging_is_swept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    stale = tmp_path / f".out.studio-export-{pid}-abc"
    stale.mkdir()
    (stale / "ep001_001.jpg").write_bytes(b"half")
    export_episode(strip_layout(tmp_path / "panels"), PROFILES["webtoon"], out, 1, "ep001")
    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "panels"]
