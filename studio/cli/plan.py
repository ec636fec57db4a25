"""`studio plan episode N`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from studio.cli.common import friendly, open_project, out, parse_ids
from studio.ledger.db import ledger_engine
from studio.ledger.money import format_usd
from studio.plan.view import plan_rows
from studio.run.episode import check_only, make_plan
from studio.run.store import ArtifactStore

app = typer.Typer(help="Show what a run would do, what is already made, and what it would cost.", no_args_is_help=True)


@app.command("episode")
@friendly
def episode(
    number: Annotated[int, typer.Argument(help="Episode number, e.g. 1 for episodes/ep001.")],
    provider: Annotated[str | None, typer.Option(help="Plan for this provider. Default: studio.toml's.")] = None,
    only: Annotated[str | None, typer.Option(help="Only these panels, comma-separated: p001,p004.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """List the jobs episode N needs: per panel its location, characters, references,
    model, strategy, estimated cost, and whether it is already made (cached)."""
    project = open_project()
    ids = parse_ids(only)
    check_only(project, number, ids)
    with ledger_engine(project.state_dir) as engine:
        plan = make_plan(project, number, provider or project.config.provider, ids, engine)
        view = plan_rows(project, plan, ArtifactStore(project.state_dir, engine))
    if as_json:
        out.print_json(json.dumps(view))
        return
    _print_tables(view)


def _print_tables(view: dict) -> None:
    jobs = view["jobs"]
    drafting = any(row["model"] == "draft:draft" for row in jobs)
    how = "draft previz (free); estimates are for the paid models" if drafting else "paid generation"
    refs = Table(title=f"Reference jobs: {how}", title_justify="left")
    for column in ("phase", "name", "paid model", "estimate", "status"):
        refs.add_column(column, justify="right" if column == "estimate" else "left")
    panel_models = {row["estimate_model"] for row in jobs if row["phase"] == "panel"}
    common = panel_models.pop() if len(panel_models) == 1 else None
    title = f"Episode {view['episode']}: {view['title']}" + (f" (panels: {common})" if common else "")
    panels = Table(title=title, title_justify="left")
    columns = ["panel", "where", "shot", "characters", "refs", "strategy", "estimate", "status"]
    if common is None:
        columns.insert(5, "paid model")
    for column in columns:
        panels.add_column(column, justify="right" if column in {"estimate", "refs"} else "left")
    for row in jobs:
        status = "[green]cached[/green]" if row["cached"] else "to make"
        if row.get("frozen_stale"):
            status = "[yellow]frozen*[/yellow]"
        estimate = "no price" if row["estimate_micro"] is None else format_usd(row["estimate_micro"])
        if row["phase"] == "panel":
            cells = [
                row["panel"] if row["take"] == 1 else f"{row['panel']} t{row['take']}",
                f"{row['location']}@{row['time']}",
                row["shot"],
                ", ".join(row["characters"]) or "—",
                str(len(row["references"])),
                row["strategy"],
                estimate,
                status,
            ]
            if common is None:
                cells.insert(5, row["estimate_model"])
            panels.add_row(*cells)
        elif row["phase"] not in {"contact_sheet", "letter"}:
            refs.add_row(row["phase"].replace("_", " "), row["name"], row["estimate_model"], estimate, status)
    out.print(refs)
    out.print(panels)
    frozen = [row["panel"] for row in jobs if row.get("frozen_stale")]
    if frozen:
        out.print(
            f"* approved, but inputs changed since: {', '.join(frozen)} (kept as approved; "
            f"'studio run episode {view['episode']} --force' makes a new take)"
        )
    totals = view["totals"]
    spend = "would cost" if drafting else "still to pay"
    out.print(
        f"{totals['jobs']} jobs: {totals['to_generate']} to make, {totals['cached']} cached. "
        f"Estimate {format_usd(totals['estimate_micro'])} in all, "
        f"{format_usd(totals['per_panel_micro'])}/panel against a target of "
        f"{format_usd(totals['target_per_panel_micro'])}; {spend} {format_usd(totals['to_pay_micro'])}."
    )
