"""The contact sheet HTML as a person sees it: opened from disk in headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]

if CHROMIUM is None and os.environ.get("STUDIO_REQUIRE_BROWSER"):
    raise RuntimeError("STUDIO_REQUIRE_BROWSER is set but chromium is not installed (apt-get install chromium)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed; .ci/run installs it")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "profile"
    command = [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_contact_sheet_renders_from_disk_with_every_thumbnail(sample: Path, cli, tmp_path: Path) -> None:
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    assert cli("--project", sample, "retake", "1", "p003", "--note", "hands <wrong>").exit_code == 0
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    page = sample / "build/episodes/ep001/contact.html"
    url = page.as_uri()
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert html.count('class="cell"') == 12
    assert html.count("data:image/jpeg;base64,") == 12
    assert 'href="panels/p001.png"' in html and 'href="generated/p003_t1.png"' in html
    assert "hands &lt;wrong&gt;" in html
    shot = tmp_path / "contact.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1800", url)
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1400, 1800)
        colours = image.convert("RGB").resize((140, 180)).getcolors(140 * 180)
        assert colours is not None and len(colours) > 500, "thumbnails are drawn, not an empty page"
    # Every link on the page points at a file that exists next to it.
    for target in ("panels/p001.png", "generated/p003_t1.png", "panels/p012.png"):
        assert (page.parent / target).is_file()
