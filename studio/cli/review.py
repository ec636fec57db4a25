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
    from studio.review.takes import Reviews
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
    the take, and the note says why), its latest take, how on-model its characters are (lowest first;
    '!' under the threshold of studio.toml's [consistency]) and the note, on the episode's track."""
    from studio.consistency.store import consistency_json, panel_scores, take_scores
    from studio.db.tables import ledger_engine
    from studio.review.notes import retake_notes
    from studio.review.takes import REJECTED, TODO, Reviews, retake_command

    project = open_project()
    storyboard = project.episode(number)
    with ledger_engine(project.state_dir, project.database_url) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
        reviews = Reviews(engine, chosen.takes)
        latest = reviews.latest(number)
        history = {p.id: reviews.takes(number, p.id) for p in storyboard.panels}
        asked = retake_notes(engine, chosen.takes, number)  # the note that asked for each take
        scored = take_scores(panel_scores(engine, chosen.takes, number), {p: s.take for p, s in latest.items()})
    threshold_for = project.config.consistency.threshold_for
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
                "consistency": consistency_json(scored.get(panel.id), threshold_for),
            }
        )
        if state is not None and state.status == REJECTED:
            rows[-1]["retake"] = retake_command(number, panel.id)
    if as_json:
        shown = {"track": chosen.takes, "track_name": chosen.name, "provider": chosen.provider}
        out.print_json(json.dumps({"episode": number, **shown, "quality": chosen.quality, "panels": rows}))
        return
    table = Table(title=f"Episode {number} review ({chosen.name} takes)", title_justify="left")
    for column in ("panel", "status", "take", "on model", "note"):
        table.add_column(column)
    colours = {"approved": "green", "retake": "red", "pending review": "yellow", REJECTED: "magenta"}
    for row in rows:
        colour = colours.get(row["status"], "white")
        # The note may be a provider's words: never read as markup.
        note = Text(row["note"] or "")
        status = f"[{colour}]{row['status']}[/{colour}]"
        table.add_row(row["panel"], status, str(row["take"] or "—"), _consistency_cell(row["consistency"]), note)
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
    check_panels(project, number, panels)
    with ledger_engine(project.state_dir, project.database_url) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
        takes = Reviews(engine, chosen.takes).approve(number, panels)
    for panel, take in zip(panels, takes, strict=True):
        out.print(f"approved {panel} (take {take})")


@retake_app.command("episode")
@friendly
def retake(
    number: Number,
    panels: Annotated[
        list[str] | None, typer.Argument(help="Panel ids to redo, e.g. p004 (with --below: only among these).")
    ] = None,
    note: Annotated[str | None, typer.Option(help="What is wrong with this take, e.g. 'face off-model'.")] = None,
    below: Annotated[
        float | None,
        typer.Option(
            min=0,
            max=1,
            help="Retake every panel whose current take has a character scored under this consistency score "
            "(see 'studio review episode N'), e.g. 0.8. Approved panels are kept.",
        ),
    ] = None,
    track: TrackOption = None,
    provider: Provider = None,
    quality: Quality = None,
) -> None:
    """Ask for new takes of panels of episode N on its track: the next 'studio run episode N' regenerates
    them with a new seed and keeps every earlier take. Example: studio retake episode 3 p004 --note 'face off-model';
    studio retake episode 3 --below 0.8 retakes the panels with a character under 0.8"""
    from studio.db.tables import ledger_engine
    from studio.review.takes import Reviews

    project = open_project()
    if not panels and below is None:
        raise UsageError(f"name the panels to retake (studio retake episode {number} p004), or give --below 0.8")
    check_panels(project, number, panels or [])
    with ledger_engine(project.state_dir, project.database_url) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
        reviews = Reviews(engine, chosen.takes)
        if below is None:
            asked = {panel: note for panel in panels or []}
        else:
            asked = _off_model(project, engine, reviews, chosen, number, below, panels, note)
        takes = [reviews.retake(number, [panel], why)[0] for panel, why in asked.items()]
        after = reviews.latest(number)  # after a pick, the new take comes after the highest, not the retaken
    for (panel, why), take in zip(asked.items(), takes, strict=True):
        new = after[panel].next_take
        out.print(Text(f"retake requested for {panel} (take {take} → {new})" + (f": {why}" if why else "")))


def _off_model(
    project: Project,
    engine: Engine,
    reviews: Reviews,
    chosen: Track,
    number: int,
    threshold: float,
    panels: list[str] | None,
    note: str | None,
) -> dict[str, str]:
    """The panels `retake --below` asks again for, each with its note (the user's, else which
    characters are under and by how much); approved panels and those already sent back are kept."""
    from studio.consistency.store import below, panel_scores
    from studio.review.takes import APPROVED, RETAKE

    if not panel_scores(engine, chosen.takes, number):
        raise UsageError(
            f"episode {number} has no consistency scores on the {chosen.name} track yet; "
            f"'studio run episode {number}' scores its panels"
        )
    latest = reviews.latest(number)
    names = {cid: character.name for cid, character in project.characters.items()}
    flagged = below(engine, chosen.takes, number, lambda _: threshold, {p: s.take for p, s in latest.items()})
    order = [p.id for p in project.episode(number).panels if panels is None or p.id in panels]
    asked, kept = {}, 0
    for panel in (p for p in order if p in flagged):
        take, under = flagged[panel]
        said = ", ".join(f"{names.get(r.character, r.character)} {r.value:.2f}" for r in under)
        if latest[panel].status in (APPROVED, RETAKE):
            status = latest[panel].status
            out.print(Text(f"kept {panel} (take {take}, {status}) although under {threshold:.2f}: {said}"))
            kept += 1
            continue
        asked[panel] = note or f"off-model: {said} (consistency under {threshold:.2f})"
    if not asked and not kept:
        out.print(f"no panel of episode {number} to retake: no current take has a character under {threshold:.2f}")
    return asked


def _consistency_cell(consistency: dict[str, Any] | None) -> Text:
    """'kai 0.71! · wren 0.93': lowest first, under the threshold marked and red."""
    cell = Text()
    for index, score in enumerate((consistency or {}).get("scores", ())):
        if index:
            cell.append(" · ")
        value = "—" if score["value"] is None else f"{score['value']:.2f}"
        cell.append(f"{score['character']} {value}" + ("!" if score["below"] else ""), "red" if score["below"] else "")
    return cell or Text("—")


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


def check_panels(project: Project, number: int, panels: list[str]) -> None:
    known = {p.id for p in project.episode(number).panels}
    unknown = [p for p in panels if p not in known]
    if unknown:
        raise UsageError(f"not panels of episode {number}: {', '.join(unknown)}")


pick_app = typer.Typer(
    cls=EpisodeVerb,
    help="Choose which take of a panel the episode uses: 'studio pick episode 3 p003 2'.",
    no_args_is_help=True,
)


@pick_app.command("episode")
@friendly
def pick(
    number: Number,
    panel: Annotated[str, typer.Argument(help="The panel, e.g. p003.")],
    take: Annotated[int, typer.Argument(help="The take to use, e.g. 2 ('studio review episode N' lists them).")],
    track: TrackOption = None,
    provider: Provider = None,
    quality: Quality = None,
) -> None:
    """Use an earlier (or any) take of a panel of episode N on its track: it becomes the panel's approved
    take, the one lettered, shown and exported; the takes after it stay in the history as 'not picked',
    and a later retake makes a new take after the highest. Example: studio pick episode 3 p003 2"""
    from studio.db.tables import ledger_engine
    from studio.review.takes import Reviews

    project = open_project()
    check_panels(project, number, [panel])
    with ledger_engine(project.state_dir, project.database_url) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
        picked = Reviews(engine, chosen.takes).pick(number, panel, take)
    aside = f"; not picked: take {', '.join(map(str, picked.not_picked))}" if picked.not_picked else ""
    out.print(f"picked take {picked.take} of {panel} (was take {picked.previous}), approved{aside}")
    out.print(f"'studio run episode {number}' letters it and redraws the contact sheet")
