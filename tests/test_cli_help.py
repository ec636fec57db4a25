"""The CLI's help in a terminal: fast, and showing everything the help says.

`studio --help` (and `studio COMMAND --help`) must not import the project loader, the catalog or the
database: they are what made help take 0.3 s. Help pages render `[models]` and `[providers.NAME]`
as written and wrap paragraphs to the terminal.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from studio.cli.app import app

WIDTH = 80
runner = CliRunner()

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


def show_help(*path: str) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(WIDTH)})
    assert result.exit_code == 0, result.output
    return result.stdout


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under `command` with its path: the root, the groups and their commands."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from commands(sub, (*path, name))


ALL = list(commands(typer.main.get_command(app)))


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        (("providers",), "[providers.NAME]"),
        ((), "[providers.NAME]"),  # in the command list too
        (("run", "episode"), "'chain' tries each phase's [models] list in order"),
        (("plan", "episode"), "('chain': the [models] fallback chains)"),
        (("plan", "season"), "by [models] upscale"),
    ],
)
def test_brackets_in_help_are_shown(path: tuple[str, ...], shown: str) -> None:
    page = show_help(*path)
    words = " ".join(re.sub(r"[│╭╮╰╯─]", " ", page).split())  # one line, wherever the terminal wrapped it
    assert shown in words, page


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(path) or "studio" for path, _ in ALL])
def test_every_help_page_fits_the_terminal(path: tuple[str, ...], command: Any) -> None:
    page = show_help(*path)
    lines = page.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, page
    texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
    # Every bracketed name in the help is on the page (Rich would read it as a style tag and drop it) ...
    for name in {m.group(1) for text in texts for m in re.finditer(r"\\(\[[a-z#/@][^\[\]]*\])", text)}:
        assert name in page, (name, page)
    # ... nothing is cut short (an ellipsis the help does not say itself) ...
    assert page.count("…") == sum(text.count("…") for text in texts), page
    # ... and paragraphs wrap where the terminal ends, not where the source's lines did.
    assert not ragged(prose(lines), WIDTH - 2), page
    assert not ragged(*command_list(lines)), page


def prose(lines: list[str]) -> list[str]:
    """The help text above the first panel, without the usage line and the verbatim examples."""
    body = []
    for line in lines:
        if line.startswith("╭"):
            break
        if line.startswith(" Usage:") or line.startswith("  "):  # an example kept as written: not wrapped
            body.append("")
            continue
        body.append(line[1:].rstrip())
    return body


def command_list(lines: list[str]) -> tuple[list[str], int]:
    """The descriptions in the Commands panel ('' between commands), and the width of their column."""
    inside, column, width, rows = False, 0, 0, []
    for line in lines:
        if line.startswith("╭─ Commands"):
            inside = True
        elif line.startswith("╰"):
            inside = False
        elif inside:
            cell = line[1:-1]  # between the panel's borders
            name = re.match(r" (\S+) +", cell)
            if name:
                column, width = name.end(), len(cell) - name.end() - 1
                rows.append("")
            rows.append(cell[column:].rstrip())
    return rows, width


def ragged(body: list[str], width: int) -> list[tuple[str, str]]:
    """Pairs of consecutive lines where the next line's first word would have fitted on the first."""
    return [
        (first, second)
        for first, second in pairwise(body)
        if first and second and len(first) + 1 + len(second.split()[0]) <= width
    ]
