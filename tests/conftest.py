"""Shared fixtures: a private copy of the sample project, and ways to run the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio.cli.app import app

REPO = Path(__file__).resolve().parent.parent
SAMPLE_PARTS = ("studio.toml", "characters", "styles", "locations", "episodes")


def copy_sample(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for part in SAMPLE_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, target / part)
        else:
            shutil.copy2(source, target / part)
    return target


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A fresh copy of the sample webtoon, so tests can edit and run it freely."""
    return copy_sample(tmp_path / "project")


@pytest.fixture
def cli() -> Callable[..., object]:
    """Run `studio ARGS...` in-process; returns the click Result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture
def episode_made(sample: Path, cli) -> Path:  # type: ignore[no-untyped-def]
    """The sample project with episode 1 made by the draft provider."""
    assert cli("--project", sample, "run", "episode", "1").exit_code == 0
    return sample


@pytest.fixture
def studio_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real `studio` command as a subprocess (the way a user does)."""

    def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240):
        full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "studio", *[str(a) for a in args]],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


FAL_SETTINGS = """

[providers.fal]
poll_interval = 0.05
request_timeout = 5
"""


@pytest.fixture
def fake_fal():  # type: ignore[no-untyped-def]
    """The fake fal queue server on loopback (HTTPS with a throwaway CA)."""
    from fakes.fal import FakeFal

    with FakeFal(latency=0.1, stall_seconds=8) as fake:
        yield fake


@pytest.fixture
def fal_project(sample: Path) -> Path:
    """The sample project, polling the fake fal quickly."""
    with (sample / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write(FAL_SETTINGS)
    return sample


@pytest.fixture
def fake_bfl():  # type: ignore[no-untyped-def]
    """The fake Black Forest Labs API: submission and polling on two different loopback ports."""
    from fakes.bfl import FakeBfl

    with FakeBfl(latency=0.1, stall_seconds=8) as fake:
        yield fake


@pytest.fixture
def bfl_project(sample: Path) -> Path:
    with (sample / "studio.toml").open("a", encoding="utf-8") as handle:
        handle.write("\n[providers.bfl]\npoll_interval = 0.05\nrequest_timeout = 5\n")
    return sample
