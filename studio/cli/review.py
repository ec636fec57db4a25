"""`studio review`, `studio approve`, `studio retake`: steer an episode take by take.

Every episode command reads `studio VERB episode N [panels…]`. The older `studio approve 3 p001` and
`studio retake 3 p004` still work for one release, with a note on stderr (`EpisodeVerb`).
"""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from studio.cli.common import err, friendly, open_project, out

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from studio.project.loader import Project
    from studio.review.tracks import Track
from studio.core.errors import UsageError


class EpisodeVerb(TyperGroup):
    """A verb whose one command is `episode`: `studio approve episode 3 p001`. The form without the
    word (`studio approve 3 p001`) is taken as it for one more release, saying so on stderr."""

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        command = self.commands.get("episode")
        if args and command is not None and args[0].isascii() and args[0].isdigit():
            path = f"studio {ctx.info_name}"  # as the user types it, also under `python -m studio`
            old, new = shlex.join(args), shlex.join(["episode", *args])
            err.print(Text(f"note: '{path} {old}' will go in the next release; write '{path} {new}'", style="yellow"))
            return "episode", command, args
        return super().resolve_command(ctx, args)


app = typer.Typer(help="Review an episode's panels: status, take and notes.", no_args_is_help=True)
approve_app = typer.Typer(
    cls=EpisodeVerb,
    help="Approve panels of an episode: 'studio approve episode 3 p001 p002'.",
    no_args_is_help=True,
)
retake_app = typer.Typer(
    cls=EpisodeVerb,
    help="Ask for new takes of panels: 'studio retake episode 3 p004 --note \"face off-model\"'.",
    no_args_is_help=True,
)

Number = Annotated[int, typer.Argument(help="Episode number, e.g. 3 for episodes/ep003.")]
TrackOption = Annotated[
    str | None,
    typer.Option(
        "--track",
        help="Which takes: draft, a provider's panels made directly (fal), its previews (fal:preview) or its "
        "approved previews finished (fal:final). Default: the episode's track, that of its latest paid run "
        "(draft before any).",
    ),
]
Provider = Annotated[str | None, typer.Option("--provider", help="The same as --track PROVIDER.")]
Quality = Annotated[
    Literal["preview", "final"] | None,
    typer.Option(help="With or without --provider: the same as --track PROVIDER:QUALITY."),
]


@app.command("episode")
@friendly
def review(
    number: Number,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    track: TrackOption = None,
    provider: Provider = None,
    quality: Quality = None,
) -> None:
    """Each panel's status (todo, pending review, approved, retake, or rejected: the provider refused
    the take, and the note says why), its latest take and the note, on the episode's track."""
    from studio.db.tables import ledger_engine
    from studio.review.notes import retake_notes
    from studio.review.takes import REJECTED, TODO, Reviews, retake_command

    project = open_project()
    storyboard = project.episode(number)
    with ledger_engine(project.state_dir) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
        reviews = Reviews(engine, chosen.takes)
        latest = reviews.latest(number)
        history = {p.id: reviews.takes(number, p.id) for p in storyboard.panels}
        asked = retake_notes(engine, chosen.takes, number)  # the note that asked for each take
    rows = []
    for panel in storyboard.panels:
        state = latest.get(panel.id)
        rows.append(
            {
                "panel": panel.id,
                "status": state.status if state else TODO,
                "take": state.take if state else None,
                # The take's own note, else the retake note that asked for it.
                "note": (state.note or asked.get(panel.id, {}).get(state.take)) if state else None,
                "takes": [{"take": t.take, "status": t.status, "note": t.note} for t in history[panel.id]],
            }
        )
        if state is not None and state.status == REJECTED:
            rows[-1]["retake"] = retake_command(number, panel.id)
    if as_json:
        shown = {"track": chosen.takes, "track_name": chosen.name, "provider": chosen.provider}
        out.print_json(json.dumps({"episode": number, **shown, "quality": chosen.quality, "panels": rows}))
        return
    table = Table(title=f"Episode {number} review ({chosen.name} takes)", title_justify="left")
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


@approve_app.command("episode")
@friendly
def approve(
    number: Number,
    panels: Annotated[list[str], typer.Argument(help="Panel ids to approve, e.g. p001 p002.")],
    track: TrackOption = None,
    provider: Provider = None,
    quality: Quality = None,
) -> None:
    """Approve panels of episode N on its track: their current take is frozen and is not regenerated
    unless 'studio run --force'. Example: studio approve episode 3 p001 p002"""
    from studio.db.tables import ledger_engine
    from studio.review.takes import Reviews

    project = open_project()
    _check_panels(project, number, panels)
    with ledger_engine(project.state_dir) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
        takes = Reviews(engine, chosen.takes).approve(number, panels)
    for panel, take in zip(panels, takes, strict=True):
        out.print(f"approved {panel} (take {take})")


@retake_app.command("episode")
@friendly
def retake(
    number: Number,
    panels: Annotated[list[str], typer.Argument(help="Panel ids to redo, e.g. p004.")],
    note: Annotated[str | None, typer.Option(help="What is wrong with this take, e.g. 'face off-model'.")] = None,
    track: TrackOption = None,
    provider: Provider = None,
    quality: Quality = None,
) -> None:
    """Ask for new takes of panels of episode N on its track: the next 'studio run episode N' regenerates
    them with a new seed and keeps every earlier take. Example: studio retake episode 3 p004 --note 'face off-model'"""
    from studio.db.tables import ledger_engine
    from studio.review.takes import Reviews

    project = open_project()
    _check_panels(project, number, panels)
    with ledger_engine(project.state_dir) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
        takes = Reviews(engine, chosen.takes).retake(number, panels, note)
    for panel, take in zip(panels, takes, strict=True):
        out.print(f"retake requested for {panel} (take {take} → {take + 1})" + (f": {note}" if note else ""))


def episode_track(
    project: Project,
    engine: Engine,
    number: int,
    track: str | None,
    provider: str | None,
    quality: str | None,
) -> Track:
    """The track an episode command acts on (see studio/review/tracks.py), said in one line on stderr."""
    from studio.review.tracks import CHAIN, DRAFT, choose_track

    chosen = choose_track(
        engine,
        number,
        default_provider=project.config.provider,
        paid_default=_paid(project),
        track=track,
        provider=provider,
        quality=quality,
    )
    if track is not None or provider is not None:  # a name the user typed: one studio knows
        from studio.providers.registry import installed_plugins

        known = {DRAFT, CHAIN, *installed_plugins()}
        if chosen.provider not in known:
            raise UsageError(
                f"{'--track' if track is not None else '--provider'}: no provider '{chosen.provider}'; "
                f"write one of {', '.join(sorted(known))}"
            )
    err.print(Text(chosen.said()))
    return chosen


def _paid(project: Project) -> str:
    """The paid provider a quality alone means when the episode has no paid run: studio.toml's, or
    when it says draft, that of the panel model (as `studio run --quality preview` would use)."""
    provider = project.config.provider
    if provider == "draft":
        primary = project.config.models.primary("panel")
        return primary.split(":", 1)[0] if ":" in primary else "fal"
    return provider


def _check_panels(project: Project, number: int, panels: list[str]) -> None:
    known = {p.id for p in project.episode(number).panels}
    unknown = [p for p in panels if p not in known]
    if unknown:
        raise UsageError(f"not panels of episode {number}: {', '.join(unknown)}")
