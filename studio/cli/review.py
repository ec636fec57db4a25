"""`studio review`, `studio approve`, `studio retake`: steer an episode take by take."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from studio.cli.common import friendly, open_project, out

if TYPE_CHECKING:
    from studio.project.loader import Project
from studio.core.errors import UsageError

app = typer.Typer(help="Review an episode's panels: status, take and notes.", no_args_is_help=True)

Track = Annotated[
    str | None,
    typer.Option(
        "--provider", help="Review the draft takes ('draft') or the paid ones (any other). Default: studio.toml's."
    ),
]
Quality = Annotated[
    Literal["preview", "final"] | None,
    typer.Option(
        help="The paid previews ('studio run --quality preview'; '--quality final' finishes the approved ones). "
        "Default: the panels made directly."
    ),
]


@app.command("episode")
@friendly
def review(
    number: Annotated[int, typer.Argument(help="Episode number.")],
    provider: Track = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quality: Quality = None,
) -> None:
    """Each panel's status (todo, pending review, approved, retake, or rejected: the provider refused
    the take, and the note says why), its latest take and the note."""
    from studio.db.tables import ledger_engine
    from studio.review.takes import REJECTED, TODO, Reviews, retake_command, track_of

    project = open_project()
    storyboard = project.episode(number)
    track = track_of(provider or _paid(project, quality), quality)
    with ledger_engine(project.state_dir) as engine:
        reviews = Reviews(engine, track)
        latest = reviews.latest(number)
        history = {p.id: reviews.takes(number, p.id) for p in storyboard.panels}
    rows = []
    for panel in storyboard.panels:
        state = latest.get(panel.id)
        rows.append(
            {
                "panel": panel.id,
                "status": state.status if state else TODO,
                "take": state.take if state else None,
                "note": state.note if state else None,
                "takes": [{"take": t.take, "status": t.status, "note": t.note} for t in history[panel.id]],
            }
        )
        if state is not None and state.status == REJECTED:
            rows[-1]["retake"] = retake_command(number, panel.id)
    if as_json:
        out.print_json(json.dumps({"episode": number, "track": track, "panels": rows}))
        return
    table = Table(title=f"Episode {number} review ({track} takes)", title_justify="left")
    for column in ("panel", "status", "take", "note"):
        table.add_column(column)
    colours = {"approved": "green", "retake": "red", "pending review": "yellow", REJECTED: "magenta"}
    for row in rows:
        colour = colours.get(row["status"], "white")
        # The note may be a provider's words: never read as markup.
        note = Text(row["note"] or "")
        table.add_row(row["panel"], f"[{colour}]{row['status']}[/{colour}]", str(row["take"] or "—"), note)
    out.print(table)
    counts = {status: sum(1 for r in rows if r["status"] == status) for status in colours}
    out.print(", ".join(f"{n} {status}" for status, n in counts.items() if n or status != REJECTED))
    for row in rows:
        if row["status"] == REJECTED:
            out.print(
                Text(
                    f"{row['panel']} take {row['take']} was rejected by the provider, so it has no image: "
                    f"{row['note']}\n  to retake it: {row['retake']}"
                )
            )


@friendly
def approve(
    number: Annotated[int, typer.Argument(help="Episode number.")],
    panels: Annotated[list[str], typer.Argument(help="Panel ids to approve, e.g. p001 p002.")],
    provider: Track = None,
    quality: Quality = None,
) -> None:
    """Approve panels: their current take is frozen and is not regenerated unless 'studio run --force'."""
    from studio.db.tables import ledger_engine
    from studio.review.takes import Reviews, track_of

    project = open_project()
    _check_panels(project, number, panels)
    with ledger_engine(project.state_dir) as engine:
        takes = Reviews(engine, track_of(provider or _paid(project, quality), quality)).approve(number, panels)
    for panel, take in zip(panels, takes, strict=True):
        out.print(f"approved {panel} (take {take})")


@friendly
def retake(
    number: Annotated[int, typer.Argument(help="Episode number.")],
    panels: Annotated[list[str], typer.Argument(help="Panel ids to redo, e.g. p004.")],
    note: Annotated[str | None, typer.Option(help="What is wrong with this take, e.g. 'face off-model'.")] = None,
    provider: Track = None,
    quality: Quality = None,
) -> None:
    """Ask for a new take: the next 'studio run episode N' regenerates these panels with a new seed
    and keeps every earlier take."""
    from studio.db.tables import ledger_engine
    from studio.review.takes import Reviews, track_of

    project = open_project()
    _check_panels(project, number, panels)
    with ledger_engine(project.state_dir) as engine:
        takes = Reviews(engine, track_of(provider or _paid(project, quality), quality)).retake(number, panels, note)
    for panel, take in zip(panels, takes, strict=True):
        out.print(f"retake requested for {panel} (take {take} → {take + 1})" + (f": {note}" if note else ""))


def _paid(project: Project, quality: str | None) -> str:
    """The provider whose takes to review: studio.toml's; previews are paid takes even when it says draft."""
    provider = project.config.provider
    if quality is not None and provider == "draft":
        primary = project.config.models.primary("panel")
        return primary.split(":", 1)[0] if ":" in primary else "fal"
    return provider


def _check_panels(project: Project, number: int, panels: list[str]) -> None:
    known = {p.id for p in project.episode(number).panels}
    unknown = [p for p in panels if p not in known]
    if unknown:
        raise UsageError(f"not panels of episode {number}: {', '.join(unknown)}")
