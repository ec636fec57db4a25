"""`studio export episode N --platform webtoon`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from studio.cli.common import err, friendly, open_project, out

app = typer.Typer(help="Slice an episode into platform-ready images.", no_args_is_help=True)


@app.command("episode")
@friendly
def export_episode(
    number: Annotated[int, typer.Argument(help="Episode number.")],
    platform: Annotated[
        Literal["webtoon", "tapas", "generic"], typer.Option(help="Whose limits to meet (width, slice size, format).")
    ] = "webtoon",
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for the slices. Default: export/PLATFORM under build/episodes/epNNN/."),
    ] = None,
    provider: Annotated[
        str | None, typer.Option(help="Export the draft or the paid panels. Default: studio.toml's.")
    ] = None,
) -> None:
    """Stack the lettered panels with their gutters, downscale to the platform width and cut slices
    where no balloon or panel is cut (WEBTOON: 800 px wide, at most 1280 px tall, 2 MB each, 20 MB in all),
    lowering JPEG quality step by step until every limit holds. Writes manifest.json beside the slices.
    Refuses, writing nothing, when a limit cannot be met."""
    from studio.run.publish import export

    project = open_project()
    shown = ExportProgress(err)  # on stderr, like 'studio run': stdout keeps only the result
    with shown.progress:
        manifest = export(project, number, platform, out_dir, provider, shown)
    table = Table(title=f"Episode {number} for {platform}", title_justify="left")
    for column in ("file", "size", "bytes", "panels"):
        table.add_column(column, justify="right" if column == "bytes" else "left")
    for info in manifest.files:
        table.add_row(info.file, f"{info.width}x{info.height}", f"{info.bytes:,}", ", ".join(info.panels))
    out.print(table)
    quality = f" at JPEG quality {manifest.quality}" if manifest.quality else ""
    out.print(f"{len(manifest.files)} slices, {manifest.total_bytes:,} bytes{quality}")
    for warning in manifest.warnings:
        out.print(Text(f"warning: {warning}", style="yellow"))


STAGES = {"assemble": "assembling panels", "slice": "slicing", "re-encode": "re-encoding to fit"}


class ExportProgress:
    """A progress bar per stage of an export (panels assembled, slices encoded), called as the
    export's progress callback: (stage, done, total)."""

    def __init__(self, console: Console):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        task = self.tasks.get(stage)
        if task is None:
            task = self.tasks[stage] = self.progress.add_task(STAGES.get(stage, stage), total=total)
        self.progress.update(task, completed=done, total=total)
