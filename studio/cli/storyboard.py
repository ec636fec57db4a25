"""`studio storyboard draft episode N --from FILE`: a first storyboard from a Fountain script."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from studio.cli.common import err, friendly, open_project, out
from studio.core.errors import UsageError

app = typer.Typer(help="Storyboards from scripts.", no_args_is_help=True)
draft = typer.Typer(help="Draft a storyboard.", no_args_is_help=True)
app.add_typer(draft, name="draft")


@draft.command("episode")
@friendly
def draft_episode(
    number: Annotated[int, typer.Argument(help="Episode number; writes episodes/epNNN/storyboard.yaml.")],
    source: Annotated[Path, typer.Option("--from", help="The episode's script in Fountain format.", exists=False)],
    style: Annotated[str | None, typer.Option(help="Style id. Default: the latest episode's style.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing storyboard.")] = False,
) -> None:
    """Draft episodes/epNNN/storyboard.yaml from a Fountain script: one panel per action beat or
    dialogue exchange, places and times from the scene headings, speakers matched to characters,
    shots varied by simple rules. Every panel is marked `draft: true`, and comments explain the choices."""
    from studio.core.files import write_atomic
    from studio.plan.draft_storyboard import draft_storyboard
    from studio.plan.fountain import read_fountain

    project = open_project()
    if not source.exists() and not source.is_symlink():  # what it is, or leads to, the door says
        raise UsageError(f"--from {source}: no such file")
    target = project.root / "episodes" / f"ep{number:03d}" / "storyboard.yaml"
    if target.exists() and not force:
        raise UsageError(f"{target.relative_to(project.root)} exists; pass --force to replace it (nothing was written)")
    script = read_fountain(source, project.root)  # FileRefused names the file and why
    text, report = draft_storyboard(script, project, number, style)
    write_atomic(target, text.encode("utf-8"))
    out.print(f"wrote {target.relative_to(project.root)}: {report.panels} panels, every one marked draft: true")
    for place, line in report.unknown_locations:
        err.print(Text(f"{source}:{line}: unknown location '{place}' (known: {', '.join(sorted(project.locations))})"))
    for speaker, line in report.unknown_speakers:
        err.print(
            Text(f"{source}:{line}: unknown speaker '{speaker}' (known: {', '.join(sorted(project.characters))})")
        )
    for time, line in report.unknown_times:
        err.print(Text(f"{source}:{line}: time of day '{time}' not understood; kept the previous scene's"))
    out.print(f"next: review the TODO comments, then 'studio check' and 'studio run episode {number}'")
