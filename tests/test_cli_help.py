"""The CLI's help in a terminal: fast, because it imports only the CLI.

`studio --help` (and `studio COMMAND --help`) must not import the project loader, the catalog or the
database: they are what made help take 0.3 s.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# What help may import from studio: the command modules and what they print with.
HELP_MODULES = {"studio", "studio.cli", "studio.core", "studio.core.errors", "studio.core.terminal"}
NEVER_ON_HELP = ("studio.project", "studio.catalog", "studio.db", "studio.run", "sqlalchemy", "sqlmodel", "httpx")


def imported_by(*args: str) -> set[str]:
    """The modules `python -m studio ARGS` imports (the real entry point), from -X importtime."""
    command = [sys.executable, "-X", "importtime", "-m", "studio", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    timings = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[1].strip() for line in timings[1:]}  # [0] is the header


@pytest.mark.parametrize(
    "args",
    [("--help",), ("-h",), ("run", "--help"), ("plan", "--help"), ("plan", "episode", "--help"), ("providers", "-h")],
)
def test_help_imports_only_the_cli(args: tuple[str, ...]) -> None:
    modules = imported_by(*args)
    assert "studio.cli.app" in modules and "typer" in modules  # the probe sees imports at all
    studio = {m for m in modules if m.split(".")[0] == "studio" and not m.startswith("studio.cli.")}
    assert studio <= HELP_MODULES, f"help imported {sorted(studio - HELP_MODULES)}"
    loaded = sorted(m for m in modules if m.startswith(NEVER_ON_HELP))
    assert not loaded, f"help imported {loaded[:10]}"
