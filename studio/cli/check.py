"""`studio check` and `studio schema`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from studio.cli.common import friendly, open_project, out, project_root
from studio.core.terminal import clean

if TYPE_CHECKING:
    from studio.project.loader import Project


@friendly
def check() -> None:
    """Validate every project file; list every error as file:line:col and exit 1 if any."""
    project = open_project()
    title = Text(f"{clean(project.config.title, keep_newlines=False)}: all files valid")  # text, never markup
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("characters", str(len(project.characters)))
    table.add_row("styles", str(len(project.styles)))
    table.add_row("locations", str(len(project.locations)))
    table.add_row("episodes", str(len(project.episodes)))
    table.add_row("panels", str(sum(len(e.panels) for e in project.episodes.values())))
    out.print(table)
    warnings = lint_project(project)
    for warning in warnings:
        out.print(Text(clean(str(warning)), style="yellow"))
    if warnings:
        advice = "the files are valid; adjust thresholds or disable rules under [lint] in studio.toml"
        out.print(Text(f"{len(warnings)} storyboard warning(s): {advice}"))
    notes = size_notes(project)
    for note in notes:
        out.print(Text(note, style="cyan"))
    if notes:
        out.print(Text(f"{len(notes)} panel size(s) outside a model's limits: studio generates them within the limits"))


def size_notes(project: Project) -> list[str]:
    """The panels a model of their chain cannot take at master size, and what studio does instead."""
    from studio.catalog.limits import size_note
    from studio.plan.sizes import generation_size, price_cap

    found = []
    width = project.config.master_width
    for number, storyboard in sorted(project.episodes.items()):
        path = project.episode_files[number]
        for panel in storyboard.panels:
            wanted = (width, max(16, round(width * panel.height / 16) * 16))
            chain = (panel.model,) if panel.model else project.config.models.chain("panel")
            for name in chain:
                model_id = project.catalog.resolve(name)
                entry = project.catalog.entries.get(model_id or "")
                if entry is None or entry.retired:
                    continue  # reported as an error by the loader
                note = size_note(panel.id, entry, wanted, generation_size(entry, wanted, price_cap(entry)))
                if note is not None:
                    found.append(f"{path}: {note} (on {model_id})")
    return found


def lint_project(project: Project) -> list:
    from studio.project.lint import LintConfig, lint_storyboard

    config = LintConfig.from_mapping(project.config.lint)
    found = []
    for number, storyboard in sorted(project.episodes.items()):
        path = project.episode_files[number]
        found.extend(lint_storyboard(storyboard, project.sources.get(number), path, config))
    return found


@friendly
def schema(
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the JSON Schemas. Default: build/schema/ in the project."),
    ] = None,
) -> None:
    """Write JSON Schemas of the project files so editors autocomplete and check them.

    The sample storyboards point at build/schema/ with a `# yaml-language-server: $schema=...`
    line (VS Code's YAML extension and other editors read it).
    """
    from studio.project.schema import write_schemas

    target = out_dir if out_dir is not None else project_root() / "build" / "schema"
    for path in write_schemas(target):
        out.print(f"wrote {path}")
