"""`studio plan episode N`."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from studio.cli.common import fit_table, friendly, open_project, out, parse_ids

if TYPE_CHECKING:
    from studio.plan.season import SeasonPlan
from studio.core.errors import UsageError
from studio.core.terminal import clean

PROVIDER_HELP = "Plan for this provider ('chain': the [models] fallback chains). Default: studio.toml's."
QUALITY_HELP = (
    "preview: plan the cheap small takes to review; final: the upscales of the approved previews. "
    "Default: finished panels directly."
)
app = typer.Typer(help="Show what a run would do, what is already made, and what it would cost.", no_args_is_help=True)


@app.command("episode")
@friendly
def episode(
    number: Annotated[int, typer.Argument(help="Episode number, e.g. 1 for episodes/ep001.")],
    provider: Annotated[str | None, typer.Option(help=PROVIDER_HELP)] = None,
    only: Annotated[str | None, typer.Option(help="Only these panels, comma-separated: p001,p004.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    why: Annotated[
        bool,
        typer.Option(
            "--why",
            help="For each job that will run, which of its inputs changed since its last build "
            "(with --json: a 'why' list per job).",
        ),
    ] = False,
    panel_ids: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PANEL_IDS]...",
            help="With --why: explain only the jobs of these panels (p003 p004, or p003,p004).",
            show_default=False,
        ),
    ] = None,
    quality: Annotated[Literal["preview", "final"] | None, typer.Option(help=QUALITY_HELP)] = None,
) -> None:
    """List the jobs episode N needs: per panel its location, characters, references,
    model, strategy, estimated cost, and whether it is already made (cached).

    With --why, say why each job that will run is not cached: which of its inputs changed
    since the last run made it (same episode, phase and name), in the words of your files:

    \b
      p003 letter           dialogue[0].text changed
      mira character_sheet  character.outfit changed
      p004 panel            reference mira (character) changed
                              → mira character_sheet: character.outfit changed
      p005 panel            model changed fal:fal-ai/flux-2/flash/edit
                              → bfl:flux-2-klein-9b
      p003 letter           renderer version letter 2 → 3
      p006 panel            new (never built)

    A changed reference is followed to what changed it. Runs store the inputs behind every
    key they make, so the first run after upgrading studio has nothing to compare with.
    """
    from studio.db.tables import ledger_engine
    from studio.run.episode import check_only, make_plan, unavailable_providers
    from studio.run.plan_view import plan_rows
    from studio.run.store import ArtifactStore

    project = open_project()
    ids = parse_ids(only)
    check_only(project, number, ids)
    explain = _explain_ids(panel_ids) if why else None
    if explain:
        check_only(project, number, explain)
    chosen = provider or project.config.provider
    with ledger_engine(project.state_dir, project.database_url) as engine:
        plan = make_plan(project, number, chosen, ids, engine, quality=quality)
        skipped = unavailable_providers(project, plan, engine)
        view = plan_rows(project, plan, ArtifactStore(project.state_dir, engine, objects=project.objects_dir), skipped)
        if why:
            _add_reasons(plan, view, engine, chosen, explain, quality)
    if as_json:
        out.print_json(json.dumps(view))
        return
    if why:
        _print_reasons(view)
        return
    _print_tables(view)


def _explain_ids(panel_ids: list[str] | None) -> frozenset[str] | None:
    if not panel_ids:
        return None
    return parse_ids(",".join(panel_ids))


def _add_reasons(plan, view: dict, engine, provider: str, panels: frozenset[str] | None, quality=None) -> None:  # type: ignore[no-untyped-def]
    """A `why` per job row: the reasons it runs, [] when cached, None outside the panels asked about."""
    from studio.plan.why import Explainer
    from studio.review.takes import track_of
    from studio.run.store import last_builds

    explainer = Explainer(plan.jobs, last_builds(engine, plan.jobs, track_of(provider, quality)))
    for job, row in zip(plan.jobs, view["jobs"], strict=True):
        if panels is not None and job.panel not in panels:
            row["why"] = None
        else:
            row["why"] = [] if row["cached"] else explainer.why(job)


def _print_reasons(view: dict) -> None:
    rows = [row for row in view["jobs"] if row.get("why")]
    if not rows:
        out.print(f"Nothing to make in episode {view['episode']}: every job asked about is cached.")
        return
    table = Table(title=f"Episode {view['episode']}: why these jobs run", title_justify="left")
    table.add_column("job", overflow="fold")  # never cut with an ellipsis (a job is named by its ids)
    table.add_column("phase", overflow="fold")
    table.add_column("changed since its last build")
    for row in rows:
        table.add_row(Text(row["name"]), row["phase"], Text("\n".join(row["why"])))  # [p003] is not markup
    out.print(table)
    cached = sum(1 for row in view["jobs"] if row.get("why") == [])
    out.print(f"{len(rows)} to make, {cached} cached.")


def _print_tables(view: dict) -> None:
    from studio.core.money import format_usd

    jobs = view["jobs"]
    drafting = any(row["model"] == "draft:draft" for row in jobs)
    how = "draft previz (free); estimates are for the paid models" if drafting else "paid generation"
    refs = Table(title=f"Reference jobs: {how}", title_justify="left")
    for column in ("phase", "name", "paid model", EST_COST, "status"):
        _add_column(refs, column, right=column == EST_COST)
    # Panels without characters go text-to-image on the edit model's sibling (strategy "text").
    panel_models = {_models(row) for row in jobs if row["phase"] == "panel" and row.get("strategy") != "text"}
    text_models = {_models(row) for row in jobs if row["phase"] == "panel" and row.get("strategy") == "text"}
    common = panel_models.pop() if len(panel_models) == 1 and len(text_models) <= 1 else None
    title = f"Episode {view['episode']}: {view['title']}"
    if common:
        title += f" (panels: {common}" + (f"; text-to-image: {next(iter(text_models))})" if text_models else ")")
    # The title is the storyboard's: cleaned before Rich sees it (never markup; an OSC's BEL intact).
    panels = Table(title=Text(clean(title, keep_newlines=False)), title_justify="left")
    columns = ["panel", "where", "shot", "characters", EST_REFS, "strategy", "made at, upscale", EST_COST, "status"]
    upscales = {row["panel"]: row for row in jobs if row["phase"] == "upscale"}
    if common is None:
        columns.insert(5, "paid model")
    for column in columns:
        _add_column(panels, column, right=column in {EST_COST, EST_REFS})
    for row in jobs:
        status = "[green]cached[/green]" if row["cached"] else "to make"
        if row.get("frozen_stale"):
            status = "[yellow]frozen*[/yellow]"
        estimate = "no price" if row["estimate_micro"] is None else format_usd(row["estimate_micro"])
        if row["model"] == "local":
            estimate = "free"
        if row["phase"] == "panel":
            up = upscales.get(row["panel"])
            cells = [
                row["panel"] if row["take"] == 1 else f"{row['panel']} t{row['take']}",
                f"{row['location']}@{row['time']}",
                row["shot"],
                ", ".join(row["characters"]) or "—",
                _refs_cell(row["references"]),
                row["strategy"],
                ("x".join(str(n) for n in row["made_at"]) if row.get("made_at") else "—") + f" {_upscale_cell(up)}",
                estimate,
                status,
            ]
            if common is None:
                cells.insert(5, _models(row))
            panels.add_row(*cells)
        elif row["phase"] not in {"contact_sheet", "letter", "upscale", "score"}:  # per panel, free: not references
            model = "local" if row["model"] == "local" else _models(row)
            refs.add_row(row["phase"].replace("_", " "), row["name"], model, estimate, status)
    out.print(fit_table(refs))
    out.print(fit_table(panels))
    frozen = [row["panel"] for row in jobs if row.get("frozen_stale")]
    if frozen:
        out.print(
            f"* approved, but inputs changed since: {', '.join(frozen)} (kept as approved; "
            f"'studio run episode {view['episode']} --force' makes a new take)"
        )
    totals = view["totals"]
    spend = "a paid run would cost" if drafting else "still to pay"
    out.print(
        f"{totals['jobs']} jobs: {totals['to_generate']} to make, {totals['cached']} cached. "
        f"Est. {format_usd(totals['estimate_micro'])} in all, "
        f"est. {format_usd(totals['per_panel_micro'])}/panel against a target of "
        f"{format_usd(totals['target_per_panel_micro'])}; {spend} est. {format_usd(totals['to_pay_micro'])}."
    )
    remaining = view["budget"]["remaining_micro"]
    if remaining is None:
        out.print("No balance recorded ('studio budget set 12.50'): paid runs are capped by --max-cost and budget.")
    elif not drafting and totals["to_pay_micro"] > remaining:
        short = totals["to_pay_micro"] - remaining
        out.print(Text(f"Balance left {format_usd(remaining)}: {format_usd(short)} short of this plan.", style="red"))
    else:
        out.print(f"Balance left {format_usd(remaining)}.")


# Amounts in the plan are estimates (catalog prices): their columns say so (as short as "estimate":
# at 80 columns a wider header takes its room from the ids).
EST_COST, EST_REFS = "estimate", "refs (est.)"

# Columns of ids: in a narrow terminal they fold onto more lines, never cut short with an ellipsis
# (a cut model or location name reads as another one's prefix). Amounts and sizes keep Rich's
# ellipsis: folded, "$0.01" over "00" would read as a whole amount.
ID_COLUMNS = {"name", "paid model", "panel", "where", "shot", "characters"}


def _add_column(table: Table, header: str, right: bool = False) -> None:
    overflow = "fold" if header in ID_COLUMNS else "ellipsis"
    table.add_column(Text(header, overflow="fold"), justify="right" if right else "left", overflow=overflow)


def _refs_cell(references: list[dict]) -> str:
    """How many references a panel is sent and what they cost together ('1 · $0.0050')."""
    from studio.core.money import format_usd

    if not references:
        return "0"
    cost = sum(ref.get("micro") or 0 for ref in references)
    return f"{len(references)} · {format_usd(cost)}" if cost else str(len(references))


def _upscale_cell(row: dict | None) -> str:
    from studio.core.money import format_usd

    if row is None:
        return "—"
    if row["model"] == "local":
        paid = f" (est. {format_usd(row['estimate_micro'])})" if row.get("estimate_micro") else ""
        return "local" + paid
    name = row["model"].split(":", 1)[1]
    short = name.split("/")[1] if name.count("/") >= 1 else name  # fal-ai/seedvr/upscale/image → seedvr
    return f"{short} est. {format_usd(row['estimate_micro'] or 0)}"


def _models(row: dict) -> str:
    """The model expected to serve the job; with a chain, the entries skipped and the ones after it."""
    chain = row.get("chain") or []
    if len(chain) < 2:
        return row["estimate_model"] or ""
    serving = row["estimate_model"]
    later = chain[chain.index(serving) + 1 :] if serving in chain else []
    skipped = [f"not {entry.split(': ', 1)[0]} ({entry.split(': ', 1)[1]})" for entry in row.get("expected_skips", [])]
    return ", ".join([*skipped, serving, *(f"then {model}" for model in later)])


@app.command("season")
@friendly
def season(
    episodes: Annotated[
        str | None, typer.Option(help="Which episodes, e.g. 1-10 or 1,2,5. Default: every written one.")
    ] = None,
    provider: Annotated[str | None, typer.Option(help=PROVIDER_HELP)] = None,
    assume_panels: Annotated[
        int | None, typer.Option(min=1, max=500, help="Project episodes not written yet with this many panels.")
    ] = None,
    compare_models: Annotated[
        bool, typer.Option("--compare-models", help="Rank every priced panel model by averaged cost per panel.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    quality: Annotated[
        Literal["direct", "preview"],
        typer.Option(
            help="direct: finished panels made directly (then upscaled); preview: every panel a preview "
            "(retakes are previews), then each approved preview upscaled by [models] upscale."
        ),
    ] = "direct",
    retakes: Annotated[
        float, typer.Option(min=0, max=5, help="Share of panels made again (0.10: one retake in ten).")
    ] = 0.10,
) -> None:
    """Cost of a season with shared assets (sheets, plates) paid for once, and the running cost
    per panel averaged over the episodes so far, against the target. A finished panel counts its
    take, its upscale to the master size and its share of retakes (--retakes, 10 %)."""
    from studio.core.money import usd_to_micro
    from studio.plan.season import candidate_models, plan_season, with_panel_model

    project = open_project()
    numbers = _episode_range(episodes, sorted(project.episodes))
    chosen = provider or project.config.provider
    target = usd_to_micro(project.config.target_cost_per_panel)
    plan = plan_season(project, numbers, chosen, project.catalog, assume_panels, target, quality, retakes)
    ranking = []
    if compare_models:
        for model_id in candidate_models(project.catalog, provider):
            variant = with_panel_model(project, model_id)
            model_provider = project.catalog.get(model_id).provider
            option = plan_season(
                variant, numbers, model_provider, project.catalog, assume_panels, target, quality, retakes
            )
            ranking.append(option)
        ranking.sort(key=lambda option: (option.per_panel_micro, option.panel_model))
    if as_json:
        data = plan.as_dict()
        if compare_models:
            data["compare"] = [
                {"panel_model": o.panel_model, "per_panel_micro": o.per_panel_micro, "total_micro": o.total_micro}
                for o in ranking
            ]
        out.print_json(json.dumps(data))
        return
    _print_season(plan)
    if compare_models:
        _print_ranking(ranking, target)


def _episode_range(text: str | None, written: list[int]) -> list[int]:
    if not text:
        if not written:
            raise UsageError("no episodes written yet; pass --episodes 1-10 with --assume-panels N to project them")
        return written
    numbers: set[int] = set()
    for part in text.split(","):
        try:
            if "-" in part:
                first, last = (int(x) for x in part.split("-", 1))
                if not 1 <= first <= last <= 9999 or len(numbers) + last - first >= 500:  # before building it
                    raise UsageError("--episodes: give episode numbers between 1 and 9999 (at most 500 of them)")
                numbers.update(range(first, last + 1))
            else:
                numbers.add(int(part))
        except ValueError:
            raise UsageError(f"--episodes: '{part}' is not a number or a range like 1-10") from None
    if not numbers or min(numbers) < 1 or max(numbers) > 9999 or len(numbers) > 500:
        raise UsageError("--episodes: give episode numbers between 1 and 9999 (at most 500 of them)")
    return sorted(numbers)


def _print_season(plan: SeasonPlan) -> None:
    from studio.core.money import format_usd

    how = "previews, then finals" if plan.quality == "preview" else "finished panels"
    title = (
        f"Season plan, estimated costs ({plan.provider}; {how} on {plan.panel_model}, upscaled {plan.upscale}; "
        f"{plan.retake_rate:.0%} retakes)"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("episode", no_wrap=True)
    table.add_column("panels", justify="right")
    for column in ("assets", "takes", "retakes", "finals", "est. total", "running"):
        table.add_column(column, justify="right", no_wrap=True, min_width=7)
    for row in plan.rows:
        over = row.running_per_panel_micro > plan.target_per_panel_micro
        running = format_usd(row.running_per_panel_micro)
        table.add_row(
            f"ep{row.episode:03d}" + ("" if row.written else "*"),
            str(row.panels),
            format_usd(row.assets_micro),
            format_usd(row.panels_micro),
            format_usd(row.retakes_micro),
            format_usd(row.finals_micro),
            format_usd(row.total_micro),
            f"[red]{running}[/red]" if over else running,
        )
    out.print(table)
    if not all(row.written for row in plan.rows):
        out.print("* projected: not written yet, at the written episodes' cost per panel")
    out.print(
        f"{plan.panels} panels, est. {format_usd(plan.total_micro)} in all: est. "
        f"{format_usd(plan.per_panel_micro)}/panel against a target of {format_usd(plan.target_per_panel_micro)}"
    )


def _print_ranking(ranking: list[SeasonPlan], target: int) -> None:
    from studio.core.money import format_usd

    table = Table(title="What if the panels used…", title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("panel model", no_wrap=True)
    table.add_column("est. per panel", justify="right", no_wrap=True)
    table.add_column("est. season", justify="right", no_wrap=True)
    for index, option in enumerate(ranking, start=1):
        per_panel = format_usd(option.per_panel_micro)
        table.add_row(
            str(index),
            option.panel_model,
            f"[red]{per_panel}[/red]" if option.per_panel_micro > target else per_panel,
            format_usd(option.total_micro),
        )
    out.print(table)
