"""The CLI's help and tables in a terminal: fast help, every bracket shown, and no id cut short.

`studio --help` (and `studio COMMAND --help`) must not import the project loader, the catalog or the
database: they are what made help take 0.3 s. Help pages render `[models]` and `[providers.NAME]`
as written and wrap paragraphs to the terminal; the plan's tables fold long ids at 80 columns
instead of cutting them with an ellipsis.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import typer
from conftest import edit
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


# ---------------------------------------------------------------- tables


def table_columns(output: str, title: str) -> dict[str, list[str]]:
    """The cells of the table under `title` by header, each cell's lines joined (spaces removed: a cell
    wraps at a space or folds a word, and either way no character is lost)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    headers: list[str] = []
    cells: dict[str, list[str]] = {}
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            break
        if line.startswith("┃"):
            parts = [part.replace(" ", "") for part in line.strip("┃").split("┃")]
            headers = [head + part for head, part in zip(headers, parts, strict=True)] if headers else parts
        elif line.startswith("│"):
            parts = [part.replace(" ", "") for part in line.strip("│").split("│")]
            if not cells:
                cells = {head: [] for head in headers}
            for column, part in zip(cells.values(), parts, strict=True):
                if parts[0] or not column:  # a new row starts in the first column
                    column.append(part)
                else:
                    column[-1] += part
    return cells


def plan_at_80(project: Path, studio_process, *args: str) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    """`studio plan episode 1` at 80 columns, and the same plan as JSON; checks each table's ids
    are all there, whole or folded over several lines (an ellipsis would lose characters)."""
    env = {"COLUMNS": str(WIDTH)}
    done = studio_process("plan", "episode", "1", *args, cwd=project, env=env)
    assert done.returncode == 0, done.stderr
    table = done.stdout
    assert max(len(line) for line in table.splitlines() if line[:1] in set("┏┃┡│└")) <= WIDTH, table
    view = json.loads(studio_process("plan", "episode", "1", *args, "--json", cwd=project, env=env).stdout)

    def bare(value: str) -> str:
        return value.replace(" ", "")

    refs = [row for row in view["jobs"] if row["phase"] not in {"panel", "contact_sheet", "letter", "upscale", "score"}]
    shown = table_columns(table, "Reference jobs")
    assert shown["name"] == [bare(row["name"]) for row in refs], table
    assert shown["paidmodel"] == [bare("local" if row["model"] == "local" else row["estimate_model"]) for row in refs]
    panels = [row for row in view["jobs"] if row["phase"] == "panel"]
    shown = table_columns(table, "Episode 1")
    assert shown["where"] == [f"{row['location']}@{row['time']}" for row in panels], table
    assert shown["characters"] == [bare(", ".join(row["characters"]) or "—") for row in panels], table
    if "paidmodel" in shown:
        assert shown["paidmodel"] == [row["estimate_model"] for row in panels], table
    return table, view


def test_the_plan_fits_80_columns_without_cutting_anything(sample: Path, studio_process) -> None:  # type: ignore[no-untyped-def]
    table, view = plan_at_80(sample, studio_process, "--provider", "fal")
    assert "…" not in table, table
    assert "fal:fal-ai/flux-2/flash" in {row["estimate_model"] for row in view["jobs"]}
    assert "│fal:fal-ai/flux-2/flash " in table, table  # the reference jobs' model: room enough, whole

    why = studio_process("plan", "episode", "1", "--why", cwd=sample, env={"COLUMNS": str(WIDTH)})
    assert why.returncode == 0 and "…" not in why.stdout, why.stdout


def test_a_model_column_in_the_panels_table_folds_its_ids(sample: Path, studio_process) -> None:  # type: ignore[no-untyped-def]
    # A panel on its own model: the panels table gets a tenth column, "paid model", and little room.
    edit(sample / "episodes/ep001/storyboard.yaml", "  - id: p003\n", "  - id: p003\n    model: bfl:flux-2-klein-9b\n")
    _, view = plan_at_80(sample, studio_process)
    models = {row["estimate_model"] for row in view["jobs"] if row["phase"] == "panel"}
    assert {"bfl:flux-2-klein-9b", "fal:fal-ai/flux-2/flash/edit"} <= models


def test_the_models_and_cost_tables_fit_80_columns_without_cutting_anything(sample: Path, studio_process) -> None:  # type: ignore[no-untyped-def]
    env = {"COLUMNS": str(WIDTH)}
    models = studio_process("models", cwd=sample, env=env)
    assert models.returncode == 0, models.stderr
    assert "…" not in models.stdout, models.stdout
    assert max(len(line) for line in models.stdout.splitlines() if line[:1] in set("┏┃┡│└")) <= WIDTH
    listed = json.loads(studio_process("models", "--json", cwd=sample, env=env).stdout)["models"]
    ids: list[str] = []  # each model id from its lines: a row starts where its refs column is written
    for line in models.stdout.splitlines():
        if line.startswith("│"):
            model, _, refs, *_ = (part.strip() for part in line.strip("│").split("│"))
            if refs:
                ids.append(model)
            else:
                ids[-1] += model
    assert ids == [row["model"] for row in listed], models.stdout  # every id whole, or folded

    assert studio_process("run", "episode", "1", cwd=sample).returncode == 0
    for by in ("episode", "model", "phase"):
        cost = studio_process("cost", "--by", by, cwd=sample, env=env)
        assert cost.returncode == 0, cost.stderr
        assert "…" not in cost.stdout, cost.stdout
        headers = set(table_columns(cost.stdout, "Cost by"))
        assert {"gens", "retakes", "panels", "spent", "held", "perpanel", "draftest."} <= headers, cost.stdout
