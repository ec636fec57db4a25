"""A project from a stranger (issue 21): hostile and broken inputs get a clear refusal, never a
hang, a traceback, a leak or lost files."""

from __future__ import annotations

import hashlib
import json
import os
import re
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
        if rel.startswith((".studio/logs", "build")) or (path.is_dir() and not path.is_symlink()):
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
    monkeypatch.setenv("FAL_KEY", "fake-fal-secret-test-only")
    text = scrub("headers={'Authorization': 'Key fake-fal-secret-test-only'} and FAL_KEY=fake-fal-secret-test-only")
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
    with pytest.raises(ExportRefused, match=r"not empty .* no studio export of episode 1"):
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


# ---------------------------------------------------------------- a hostile project through the CLI


@pytest.fixture
def hostile(sample: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The sample, made hostile the ways a cloned repository can be. Outside it: a FIFO that any
    blocking read would hang on, so a test that reads outside the project times out."""
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "trap")
    (outside / "secret.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"secret" * 10)
    refs = sample / "characters" / "wren" / "refs"
    refs.mkdir()
    (refs / "outside.png").symlink_to(outside / "secret.png")
    (refs / "trap.png").symlink_to(outside / "trap")
    (refs / "zero.png").symlink_to("/dev/zero")
    os.mkfifo(refs / "fifo.png")
    (refs / "eps.png").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    (refs / "bomb.png").write_bytes(png_header(40_000, 40_000))
    (refs / f"{ESCAPE}name.png").write_bytes(b"not an image")
    (sample / "locations" / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(sample / "locations" / "pipe.yaml")
    (sample / "styles" / "huge.yaml").write_bytes(b"# " + b"x" * (5 * 1024 * 1024))
    return sample, outside


HOSTILE_FILES = [
    "characters/wren/refs/outside.png",
    "characters/wren/refs/trap.png",
    "characters/wren/refs/zero.png",
    "characters/wren/refs/fifo.png",
    "characters/wren/refs/eps.png",
    "characters/wren/refs/bomb.png",
    "locations/zero.yaml",
    "locations/pipe.yaml",
    "styles/huge.yaml",
]


@pytest.mark.parametrize(
    "command",
    [("check",), ("plan", "episode", "1"), ("run", "episode", "1"), ("export", "episode", "1")],
    ids=lambda c: c[0],
)
def test_a_hostile_project_is_refused_quickly_naming_each_file(hostile: tuple[Path, Path], command) -> None:  # type: ignore[no-untyped-def]
    project, outside = hostile
    before = snapshot(project)
    result = studio(project, *command, timeout=30)  # a hang or a read of /dev/zero would time out
    no_traceback(result)
    assert result.returncode == 1, result.stderr
    for name in HOSTILE_FILES:
        assert f"{name}:" in result.stderr, (name, result.stderr)
    assert "\x1b" not in result.stderr + result.stdout, "escape sequences are stripped"
    assert "name.png" in result.stderr
    assert snapshot(project) == before, "nothing in the project changed"
    assert not (project / "build").exists()
    assert sorted(p.name for p in outside.iterdir()) == ["secret.png", "trap"]


def test_scripts_and_fonts_go_through_the_door(sample: Path, tmp_path: Path) -> None:
    script = sample / "episodes" / "ep009" / "script.fountain"
    script.parent.mkdir()
    script.symlink_to("/dev/zero")
    result = studio(sample, "storyboard", "draft", "episode", "9", "--from", str(script), timeout=30)
    no_traceback(result)
    assert result.returncode == 1 and "outside the project" in result.stderr
    script.unlink()
    script.write_text("INT. WORKSHOP - DAY\n\n" + "Wren works.\n\n" * 200_000)  # ~2.6 MB
    result = studio(sample, "storyboard", "draft", "episode", "9", "--from", str(script), timeout=30)
    assert result.returncode == 1 and "limit for a script file" in result.stderr
    (sample / "fonts").mkdir()
    (sample / "fonts" / "fake.ttf").write_bytes(small_png(sample / "fonts" / "fake.png").read_bytes())
    with (sample / "studio.toml").open("a") as config:
        config.write('\n[fonts]\ndialogue = "fonts/fake.ttf"\n')
    result = studio(sample, "check", timeout=30)
    no_traceback(result)
    assert (
        result.returncode == 1 and "fonts.dialogue: 'fonts/fake.ttf' not a TrueType or OpenType font" in result.stderr
    )


def test_bounded_command_lines(sample: Path) -> None:
    for args, code in [
        (("plan", "season", "--episodes", "1-99999999999"), 2),
        (("run", "episode", "1", "--only", ""), 2),
        (("plan", "episode", "1", "--only", " , "), 2),
    ]:
        result = studio(sample, *args, timeout=30)
        no_traceback(result)
        assert result.returncode == code, (args, result.stderr)


def test_non_finite_numbers_in_config_and_prices(sample: Path) -> None:
    config = sample / "studio.toml"
    text = config.read_text()
    config.write_text(re.sub(r"target_cost_per_panel = [0-9.]+", "target_cost_per_panel = nan", text))
    result = studio(sample, "check", timeout=30)
    no_traceback(result)
    assert result.returncode == 1 and "target_cost_per_panel" in result.stderr
    override = (
        '\n[catalog.models."fal:fal-ai/flux-2/flash/edit"]\n'
        'price = {rule = "per_image", usd = inf, source = "x", date = "2026-01-01"}\n'
    )
    config.write_text(text + override)
    result = studio(sample, "plan", "episode", "1", "--provider", "fal", timeout=30)
    no_traceback(result)
    assert result.returncode == 1 and "price.usd" in result.stderr
    config.write_text(text)
    (sample / ".studio").mkdir()
    prices = {
        "prices": {
            "fal:fal-ai/flux-2/flash/edit": {"rule": "per_image", "usd": float("nan"), "source": "x", "date": "d"}
        }
    }
    (sample / ".studio" / "prices.json").write_text(json.dumps(prices))
    result = studio(sample, "models", timeout=30)
    no_traceback(result)
    assert result.returncode == 0 and "ignored the refreshed price of 'fal:fal-ai/flux-2/flash/edit'" in result.stderr


def test_a_provider_image_of_30000_px_is_refused_before_decoding() -> None:
    from studio.providers.http import normalise

    with pytest.raises(ValueError, match="30000x200 pixels"):
        normalise(png_header(30_000, 200), 64, 64)
    with pytest.raises(ValueError, match="not a PNG, JPEG or WebP"):
        normalise(b"%!PS-Adobe-3.0 EPSF-3.0\n", 64, 64)


def test_a_key_that_cannot_be_a_header_is_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    import httpx

    from studio.core.errors import AuthFailed, StudioError
    from studio.providers.accounts import api_key
    from studio.providers.http import ProviderHttp

    monkeypatch.setenv("BFL_API_KEY", "abc\x1bdef")
    with pytest.raises(StudioError, match="BFL_API_KEY environment variable holds characters no key has"):
        api_key("bfl")
    from studio.providers.gemini import gemini_key

    monkeypatch.setenv("GEMINI_API_KEY", "AIza-ключ")
    with pytest.raises(StudioError, match="GEMINI_API_KEY environment variable holds characters no key has") as caught:
        gemini_key()
    assert "ключ" not in str(caught.value)  # the key itself is never in a message

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError("Illegal header value b'abc\\n'")

    async def send() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
            http = ProviderHttp(
                client,
                label="BFL",
                where="BFL",
                key_variable="BFL_API_KEY",
                consequence="",
                not_processed=lambda r: False,
            )
            await http.submit(
                client.build_request("POST", "https://api.example/x"), lambda r: r, lambda r: AuthFailed("x")
            )

    with pytest.raises(AuthFailed, match="nothing was sent"):
        asyncio.run(send())


# ---------------------------------------------------------------- state that can be lost


def test_lost_objects_are_made_again_and_a_lost_ledger_stops_every_command(sample: Path) -> None:
    first = studio(sample, "run", "episode", "1", "--only", "p001", timeout=300)
    assert first.returncode == 0, first.stderr
    objects = sample / ".studio" / "objects"
    for path in objects.rglob("*"):
        if path.is_file():
            path.unlink()
    for args in (("run", "episode", "1", "--only", "p001"), ("run", "episode", "1", "--only", "p001", "--force")):
        again = studio(sample, *args, timeout=300)
        no_traceback(again)
        assert again.returncode == 0, again.stderr
    assert (sample / "build" / "episodes" / "ep001" / "panels" / "p001.png").is_file()
    ledger = sample / ".studio" / "ledger.db"
    with sqlite3.connect(ledger) as db:
        assert not db.execute("SELECT COUNT(*) FROM generation WHERE status IN ('reserved', 'unknown')").fetchone()[0]
    saved = ledger.read_bytes()
    ledger.write_bytes(b"")
    for args in (("run", "episode", "1"), ("cost",), ("ledger",)):
        result = studio(sample, *args, timeout=60)
        no_traceback(result)
        assert result.returncode == 1 and "ledger was lost" in result.stderr, result.stderr
    assert ledger.read_bytes() == b"", "an empty ledger is not silently made a new one"
    ledger.write_bytes(b"this is not a database" * 100)
    for args in (("run", "episode", "1"), ("cost",), ("budget",)):
        result = studio(sample, *args, timeout=60)
        no_traceback(result)
        assert result.returncode == 1 and "not a database studio can read" in result.stderr, result.stderr
    ledger.write_bytes(saved)
    assert studio(sample, "cost", timeout=60).returncode == 0


def test_a_paid_image_lost_from_the_store_is_reported_not_paid_again(fal_project: Path, fake_fal) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_fal_e2e import studio as fal_studio

    first = fal_studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001")
    assert first.returncode == 0, first.stderr
    sent = len(fake_fal.submissions)
    for path in (fal_project / ".studio" / "objects").rglob("*"):
        if path.is_file():
            path.unlink()
    again = fal_studio(fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001")
    no_traceback(again)
    assert again.returncode == 3, again.stderr
    assert "missing from .studio/objects" in again.stderr and "--resubmit-expired" in again.stderr
    assert len(fake_fal.submissions) == sent, "nothing was paid for again"
    paid = fal_studio(
        fal_project, fake_fal, "run", "episode", "1", "--provider", "fal", "--only", "p001", "--resubmit-expired"
    )
    assert paid.returncode == 0, paid.stderr


# ---------------------------------------------------------------- the last resort


def test_an_unexpected_failure_is_one_line_and_a_log_without_secrets(sample: Path) -> None:
    env = {"FAL_KEY": "fake-fal-secret-test-only", "STUDIO_PLUGINS": "test_hostile_crash_plugin"}
    plugin = sample / "test_hostile_crash_plugin.py"
    plugin.write_text(
        "def register_providers(register):\n    raise RuntimeError('boom with fake-fal-secret-test-only')\n"
    )
    result = studio(sample, "check", timeout=60, env={**env, "PYTHONPATH": str(sample)})
    no_traceback(result)
    assert result.returncode == 1
    assert "fal-secret" not in result.stderr
    logs = list((sample / ".studio" / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and "RuntimeError" in logs[0].read_text() and "fal-secret" not in logs[0].read_text()
    debug = studio(sample, "check", timeout=60, env={**env, "PYTHONPATH": str(sample), "STUDIO_DEBUG": "1"})
    assert "Traceback" in debug.stderr


def test_text_from_files_reaches_no_terminal_with_its_escape_sequences(sample: Path) -> None:
    """A storyboard title, a caption, notes and a character name with escape sequences: plan, run
    (draft), review, cost and ledger print them with no escape byte (issue 21: text to the terminal)."""
    board = sample / "episodes" / "ep001" / "storyboard.yaml"
    text = board.read_text(encoding="utf-8")
    edits = {
        "title: Backwards at Midnight": r'title: "Backwards\e]0;pwned\a at\e[2J Midnight"',
        "caption: Saltmarrow. A town that has always known exactly what time it is.": (
            r'caption: "Saltmarrow.\e[31m A town\e]8;;http://x\e\\ on time."'
        ),
        "notes: >-\n      Series establishing shot.": r'notes: "Series \e[2J\x9b2Jestablishing shot.',
        "      landmark; it recurs in every episode from this same side.": (
            '      landmark; it recurs in every episode from this same side."'
        ),
    }
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    board.write_text(text, encoding="utf-8")
    character = sample / "characters" / "wren" / "character.yaml"
    character.write_text(
        character.read_text(encoding="utf-8").replace("name: Wren Halloway", r'name: "Wren\e[2J Halloway"', 1),
        encoding="utf-8",
    )
    project = sample.rename(sample.with_name(f"project{ESCAPE}"))  # printed as a path by run
    printed = {}
    for args in [
        ("check",),
        ("plan", "episode", "1"),
        ("plan", "episode", "1", "--why"),
        ("run", "episode", "1", "--only", "p001,p002"),
        ("retake", "1", "p001", "--provider", "draft", "--note", f"face off-model{ESCAPE}"),
        ("review", "episode", "1", "--provider", "draft"),
        ("cost",),
        ("cost", "--by", "panel"),
        ("ledger",),
    ]:
        result = studio(project, *args, timeout=120)
        no_traceback(result)
        assert result.returncode == 0, (args, result.stderr)
        assert "\x1b" not in result.stdout + result.stderr, (args, result.stdout + result.stderr)
        printed[args] = result.stdout
    plan = printed[("plan", "episode", "1")]
    assert "Backwards at Midnight" in plan, plan  # the sequences go, the title stays
    assert "face off-model" in printed[("review", "episode", "1", "--provider", "draft")]


def test_a_long_export_reports_each_panel_and_slice(tmp_path: Path) -> None:
    """A 60-panel episode: the callback hears of every panel assembled and every slice encoded, in
    order (issue 21: every long command shows progress), and the CLI's bar shows both stages."""
    import io

    from rich.console import Console

    from studio.cli.export import ExportProgress

    folder = tmp_path / "panels"
    folder.mkdir()
    panels = []
    for index in range(60):
        path = small_png(folder / f"p{index + 1:03d}.png", (MASTER, 300))
        panels.append(StripPanel(f"p{index + 1:03d}", path, 300, 100, ()))
    heard: list[tuple[str, int, int]] = []

    def progress(stage: str, done: int, total: int) -> None:
        heard.append((stage, done, total))

    layout = layout_strip(panels, MASTER, progress=progress)
    manifest = export_episode(layout, PROFILES["webtoon"], tmp_path / "out", 60, "ep060", progress)
    slices = len(manifest.files)
    assert slices > 1
    assert heard == [("assemble", n, 60) for n in range(1, 61)] + [("slice", n, slices) for n in range(1, slices + 1)]

    screen = io.StringIO()
    shown = ExportProgress(Console(file=screen, force_terminal=True, width=100))
    with shown.progress:
        for stage, done, total in heard:
            shown(stage, done, total)
        shown.progress.refresh()
    assert "assembling panels" in screen.getvalue() and "slicing" in screen.getvalue()
    assert f"{slices}/{slices}" in screen.getvalue()


def test_text_from_files_that_looks_like_markup_is_printed_as_written(sample: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """A title or note with '[/x]' in it is text, not a broken style tag: the commands print it and go on."""
    board = sample / "episodes" / "ep001" / "storyboard.yaml"
    text = board.read_text(encoding="utf-8")
    assert "title: Backwards at Midnight" in text
    board.write_text(text.replace("title: Backwards at Midnight", 'title: "Backwards [/x] at [bold]Midnight"', 1))
    for args in (("check",), ("plan", "episode", "1"), ("run", "episode", "1", "--only", "p001")):
        result = cli("--project", sample, *args)
        assert result.exit_code == 0, (args, result.output)
    assert "Backwards [/x] at [bold]Midnight" in cli("--project", sample, "plan", "episode", "1").output


def test_the_console_prints_unparsable_markup_as_written() -> None:
    """The last line of defence for text interpolated into markup: a plain Rich console stops on it."""
    import io

    from rich.console import Console
    from rich.errors import MarkupError

    from studio.core.terminal import CleanConsole

    with pytest.raises(MarkupError):
        Console(file=io.StringIO()).print("title [/x] here")
    buffer = io.StringIO()
    CleanConsole(file=buffer, width=80).print("title [/x] here")
    assert buffer.getvalue() == "title [/x] here\n"
