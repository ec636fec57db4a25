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
from studio.cli.review import Provider, Quality, TrackOption

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
    allow_unreviewed: Annotated[
        bool,
        typer.Option(
            "--allow-unreviewed", help="Export panels not approved yet too (pending review), saying how many."
        ),
    ] = False,
    psd: Annotated[
        bool,
        typer.Option(
            "--psd",
            help="Also write a layered PSD per panel at master size (panel art, balloons, balloon text, captions, "
            "SFX; each text in its layer's name and a .json beside it) and one of the strip with a group per "
            "panel, into export/psd/ (or --psd-out).",
        ),
    ] = False,
    psd_out: Annotated[Path | None, typer.Option("--psd-out", help="Folder for the PSDs (implies --psd).")] = None,
    track: TrackOption = None,
    provider: Provider = None,
    quality: Quality = None,
) -> None:
    """Stack the lettered panels of the episode's track with their gutters, downscale to the platform
    width and cut slices where no balloon or panel is cut (WEBTOON: 800 px wide, at most 1280 px tall,
    2 MB each, 20 MB in all), lowering JPEG quality step by step until every limit holds. Writes
    manifest.json beside the slices, listing per slice its panels with their takes, models, providers and
    label. Every panel must be approved ('studio approve episode N PANELS') unless --allow-unreviewed.
    Refuses, writing nothing, when a limit cannot be met.

    Every file carries an AI-content label (XMP, IPTC DigitalSourceType), counted in the size limits: by
    default trainedAlgorithmicMedia on a paid track and none on the draft track, whose previz studio draws
    itself; set [export] label in studio.toml to trainedAlgorithmicMedia,
    compositeWithTrainedAlgorithmicMedia (hand-finished art) or none. With [export] c2pa_cert and c2pa_key
    (your certificate chain and PKCS#8 key, read where they lie), every slice is also signed with C2PA
    content credentials naming the panels' models."""
    from studio.cli.review import episode_track
    from studio.db.tables import ledger_engine
    from studio.run.publish import export

    project = open_project()
    with ledger_engine(project.state_dir, project.database_url) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
    shown = ExportProgress(err)  # on stderr, like 'studio run': stdout keeps only the result
    with shown.progress:
        if psd and psd_out is None:
            psd_out = project.build_dir / "episodes" / f"ep{number:03d}" / "export" / "psd"
        exported = export(project, number, platform, out_dir, chosen, allow_unreviewed, shown, psd_out)
    manifest = exported.manifest
    if exported.unreviewed:
        listed = ", ".join(exported.unreviewed[:8]) + (" …" if len(exported.unreviewed) > 8 else "")
        err.print(
            Text(
                f"warning: {len(exported.unreviewed)} of {exported.panels} panels are not approved and were "
                f"exported as they are (--allow-unreviewed): {listed}",
                style="yellow",
            )
        )
    table = Table(title=f"Episode {number} for {platform}", title_justify="left")
    for column in ("file", "size", "bytes", "panels"):
        table.add_column(column, justify="right" if column == "bytes" else "left")
    for info in manifest.files:
        table.add_row(info.file, f"{info.width}x{info.height}", f"{info.bytes:,}", ", ".join(info.panels))
    out.print(table)
    encoded = f" at JPEG quality {manifest.quality}" if manifest.quality else ""
    out.print(f"{len(manifest.files)} slices, {manifest.total_bytes:,} bytes{encoded}")
    if manifest.label:
        out.print(f"labelled {manifest.label} (XMP in every file)")
    else:
        why = '[export] label = "none"' if chosen.paid else "the draft track's default; [export] label sets one"
        out.print(f"not labelled as AI-made ({why})")
    if manifest.c2pa:
        out.print("signed with C2PA content credentials ([export] c2pa_cert)")
    if exported.psds is not None:
        where = exported.psds.panels[0].parent if exported.psds.panels else "-"
        strip = " and the strip's, a group per panel," if exported.psds.strip else ""
        out.print(f"{len(exported.psds.panels)} layered panel PSDs{strip} (their text in .json beside them) in {where}")
        if exported.psds.note:
            out.print(Text(f"warning: {exported.psds.note}", style="yellow"))
    for warning in manifest.warnings:
        out.print(Text(f"warning: {warning}", style="yellow"))


STAGES = {
    "assemble": "assembling panels",
    "slice": "slicing",
    "re-encode": "re-encoding to fit",
    "psd": "layering PSDs",
}


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
