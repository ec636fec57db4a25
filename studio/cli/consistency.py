"""`studio consistency character ID`: the variation test a character passes before production."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from studio.cli.common import EXIT_INTERRUPTED, EXIT_JOBS_FAILED, err, fit_table, friendly, open_project, out, parse_usd
from studio.cli.review import TrackOption, check_panels, episode_track

if TYPE_CHECKING:
    from studio.plan.jobs import Plan
    from studio.run.variations import VariationReport

app = typer.Typer(help="Measure how on-model the characters stay.", no_args_is_help=True)

# The set, as studio/plan/variations.py defines it (a test checks the two agree): the help must not
# import the planner, which `studio --help` never loads.
VARIATION_TABLE = """\b
  v01 standing, facing the viewer, neutral, day
  v02 walking, facing right, smiling, day
  v03 arms crossed, facing left, serious, dusk
  v04 waving, facing the viewer, laughing, night
  v05 sitting, facing right, calm, dawn
  v06 running, facing left, surprised, day
  v07 hands on hips, facing the viewer, determined, dusk
  v08 standing, facing away, neutral, day
  v09 pointing, facing right, excited, night
  v10 hand on chin, facing left, worried, dawn
  v11 kneeling, facing the viewer, sad, day
  v12 walking, facing left, smiling, dusk
  v13 standing, facing right, embarrassed, night
  v14 sitting, facing the viewer, tired, night
  v15 waving, facing left, surprised, dawn
  v16 arms crossed, facing the viewer, angry, dawn"""

HELP = f"""Make N variations of a character from its model sheet, score each against the sheet, and
say whether the character is ready for production.

Each variation is a full-body picture of the character alone in one pose, facing, expression and
light of a fixed set; the first N are made (N: --variations, else [consistency] variations, 8):

{VARIATION_TABLE}

They are made like panels (the panel model of studio.toml, sent the sheet's body and face crops),
estimated, reserved and paid before each call, and reused by content key: a second run pays
nothing. Each is then scored (--scorer, else [consistency] scorer) and is ok at the character's
threshold or above ([consistency] threshold, or its own under [consistency.characters]), else off.
Overall is the mean score x100; the verdict is ready when overall is at least [consistency] ready
x100 (90 %) and no variation is off or unscored. The exit code is 0 either way (3 if a variation
could not be made). A contact sheet of the variations and their scores is written to
build/consistency/ID/STYLE-variations.png."""


@app.command("character", help=HELP)
@friendly
def character(
    character_id: Annotated[str, typer.Argument(metavar="ID", help="The character's id, as in characters/ID/.")],
    variations: Annotated[
        int | None,
        typer.Option("--variations", min=1, max=16, help="How many of the set to make. Default: [consistency]'s, 8."),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            help="Who makes the pictures: 'draft' (free previz, offline), fal, bfl or gemini, or 'chain'. "
            "Default: studio.toml's."
        ),
    ] = None,
    style: Annotated[
        str | None,
        typer.Option(help="The style to draw in (styles/STYLE.yaml). Default: that of the character's first episode."),
    ] = None,
    scorer: Annotated[
        str | None,
        typer.Option(help="Who scores: 'palette' (offline, free) or 'judge' (paid). Default: [consistency]'s."),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Requests at once per provider. Default: studio.toml's.")
    ] = None,
    max_cost: Annotated[
        str | None, typer.Option(help="Spend at most this many USD in this run (checked before every paid call).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (the run's table goes to stderr).")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be made and what it would cost; make and pay nothing.")
    ] = False,
) -> None:
    from studio.run.report import ConsoleReporter
    from studio.run.variations import VariationOptions, run_variation_test

    project = open_project()
    options = VariationOptions(
        character=character_id,
        style=style,
        count=variations,
        provider=provider,
        scorer=scorer,
        concurrency=concurrency,
        max_cost_micro=parse_usd(max_cost, "--max-cost") if max_cost is not None else None,
    )
    if dry_run:
        _dry_run(project, options, as_json)
        return

    class Reporter(ConsoleReporter):
        def start(self, plan: Plan) -> None:  # the plan is no episode's
            self.progress.start()
            self.task = self.progress.add_task(f"variations of {character_id}", total=len(plan.jobs), current="")

    try:
        report = run_variation_test(project, options, Reporter(err))
    except KeyboardInterrupt:
        err.print("interrupted: everything finished so far is kept; run the same command again to continue")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    else:
        _print(report)
    summary = report.summary
    if summary.budget_stop is not None:
        from studio.core.money import format_usd

        unmade = [o.job for o in summary.failed if o.job.generation is not None]
        err.print(
            f"stopped by the {summary.budget_stop.limit}: the {len(unmade)} picture(s) not made need up to "
            f"{format_usd(sum(job.estimate_micro or 0 for job in unmade))}; raise it, or test fewer --variations"
        )
    if summary.failed:
        err.print(f"{len(summary.failed)} job(s) did not finish; see above")
        raise typer.Exit(EXIT_JOBS_FAILED)


def _print(report: VariationReport) -> None:
    from studio.core.money import format_usd

    table = Table(title=f"{report.name}: variation test ({report.style}, {report.provider})", title_justify="left")
    for column in ("variation", "what", "score", "ok/off"):
        table.add_column(column, justify="right" if column == "score" else "left")
    for result in report.results:
        value = f"{result.value:.2f}" if result.value is not None else "-"
        colour = {"ok": "green", "off": "red"}.get(result.status, "yellow")
        table.add_row(
            result.planned.variation.id, result.planned.variation.description, value, Text(result.status, colour)
        )
    out.print(fit_table(table))
    for result in report.results:
        if result.score is not None and result.score.note:
            out.print(Text(f"{result.planned.variation.id}: {result.score.note}"))
    overall = report.overall
    verdict = Text("ready", "bold green") if report.ready else Text("not ready", "bold red")
    shown = f"{overall:.1f}%" if overall is not None else "(no score)"
    out.print(
        Text.assemble(
            f"overall {shown} (scorer {report.scorer}; ready at {100 * report.ready_at:.0f}% with every variation "
            f"at {report.threshold:.2f} or above): ",
            verdict,
        )
    )
    out.print(
        f"cost {format_usd(report.cost_micro)} (paid now {format_usd(report.paid_now_micro)})  "
        f"contact sheet: {report.sheet_png}"
    )


def _dry_run(project, options, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    """What the test would make, reuse and pay on its provider; nothing is built, sent or paid."""
    from studio.core.money import format_usd
    from studio.plan.jobs import Phase
    from studio.run.variations import made_already, plan_test

    planned = plan_test(project, options)
    made = made_already(project, planned)
    paid = (options.provider or project.config.provider) != "draft"
    to_make = [job for job in planned.plan.jobs if job.key not in made and job.generation is not None]
    estimate = sum(job.estimate_micro or 0 for job in to_make)
    rows = [
        {
            "id": p.variation.id,
            "what": p.variation.description,
            "made": p.job.key in made,
            "estimate_micro": p.job.estimate_micro,
        }
        for p in planned.variations
    ]
    to_pay = estimate if paid else 0
    if as_json:
        payload = {"character": planned.character, "style": planned.style, "variations": rows}
        out.print_json(json.dumps({**payload, "to_pay_micro": to_pay, "estimate_micro": estimate}))
        return
    table = Table(title=f"variation test of {planned.character} ({planned.style}): dry run", title_justify="left")
    for column in ("variation", "what", "status", "estimate"):
        table.add_column(column, justify="right" if column == "estimate" else "left")
    for row in rows:
        cost = format_usd(row["estimate_micro"]) if row["estimate_micro"] is not None else "-"
        table.add_row(row["id"], row["what"], "made (reused)" if row["made"] else "to make", cost)
    out.print(fit_table(table))
    sheets = sum(1 for job in to_make if job.phase is Phase.CHARACTER_SHEET)
    also = " (with its model sheet)" if sheets else ""
    if paid:
        out.print(f"would pay up to {format_usd(estimate)}{also}; nothing was made or paid")
    else:
        out.print(f"draft: free (a paid run would cost up to {format_usd(estimate)}{also}); nothing was made")


@app.command("episode")
@friendly
def episode(
    number: Annotated[int, typer.Argument(help="Episode number, e.g. 3 for episodes/ep003.")],
    panels: Annotated[list[str] | None, typer.Argument(help="Only these panels, e.g. p003 p004. Default: all.")] = None,
    scorer: Annotated[
        str | None,
        typer.Option(
            help="Who scores: 'judge' (a vision model, paid) or 'palette' (offline, free). Default: [consistency]'s."
        ),
    ] = None,
    track: TrackOption = None,
    max_cost: Annotated[
        str | None, typer.Option(help="Spend at most this many USD (checked before every paid judgement).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score the current take of an episode's panels again, with the scorer you choose: a run scores
    every take with the free offline scorer; ask the paid judge here for the panels you doubt. Each
    judgement is estimated, reserved and paid like a picture, and cached: asking again costs nothing.
    Its scores stand for the take in 'studio review', the contact sheet and 'retake --below'."""
    from studio.core.money import format_usd
    from studio.db.tables import ledger_engine
    from studio.run.judging import score_episode

    project = open_project()
    chosen_panels = list(panels or [])
    check_panels(project, number, chosen_panels)
    with ledger_engine(project.state_dir, project.database_url) as engine:
        chosen = episode_track(project, engine, number, track, None, None)
    judged = score_episode(
        project,
        number,
        chosen,
        chosen_panels,
        scorer or project.config.consistency.scorer,
        parse_usd(max_cost, "--max-cost") if max_cost is not None else None,
    )
    threshold_for = project.config.consistency.threshold_for
    cost = sum(take.cost_micro for take in judged)
    if as_json:
        rows = [
            {
                "panel": take.panel,
                "take": take.take,
                "scores": [
                    {
                        "character": s.character,
                        "scorer": s.scorer,
                        "value": s.value,
                        "below": s.value is not None and s.value < threshold_for(s.character),
                        "note": s.note,
                        "cost_micro": s.cost_micro,
                        "evidence": s.evidence,
                    }
                    for s in take.scores
                ],
            }
            for take in judged
        ]
        out.print_json(json.dumps({"episode": number, "track": chosen.name, "panels": rows, "cost_micro": cost}))
        return
    table = Table(title=f"Episode {number}: consistency ({chosen.name} takes)", title_justify="left")
    for column in ("panel", "take", "character", "score", "scorer", "cost", "note"):
        table.add_column(column, justify="right" if column in ("score", "cost") else "left")
    for take in judged:
        for s in take.scores:
            under = s.value is not None and s.value < threshold_for(s.character)
            value = Text(f"{s.value:.2f}{'!' if under else ''}", "red" if under else "") if s.value is not None else "-"
            table.add_row(take.panel, str(take.take), s.character, value, s.scorer, format_usd(s.cost_micro), s.note)
    out.print(fit_table(table))
    out.print(
        Text(f"cost {format_usd(cost)}; '!': under [consistency] threshold (studio retake episode {number} --below X)")
    )
