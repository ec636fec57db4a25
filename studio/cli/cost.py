"""`studio cost`: what was spent, what is held, and cost per panel against the target."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from studio.cli.common import fit_table, friendly, open_project, out

if TYPE_CHECKING:
    from studio.db.tables import Generation
    from studio.ledger.report import CostReport
    from studio.project.loader import Project


@friendly
def cost(
    episode: Annotated[int | None, typer.Option(help="Only this episode.")] = None,
    by: Annotated[
        Literal["panel", "episode", "model", "phase", "day", "quality"],
        typer.Option(help="Group rows by (quality: preview takes, finals, panels made directly, draft)."),
    ] = "episode",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    chart: Annotated[
        Path | None, typer.Option(help="Also write a PNG chart of cost per panel per episode with the target line.")
    ] = None,
) -> None:
    """Spent, held and still-to-run estimates, generations and retakes, cost per panel (and per approved panel)
    against the target, and the rolling average over the last 10 episodes."""
    from studio.core.money import usd_to_micro
    from studio.db.tables import ledger_engine
    from studio.ledger.book import Ledger
    from studio.ledger.report import cost_report

    project = open_project()
    target = usd_to_micro(project.config.target_cost_per_panel)
    with ledger_engine(project.state_dir, project.database_url) as engine:
        rows = Ledger(engine).rows(episode)
        to_run = _estimated_to_run(project, engine, episode)
    report = cost_report(rows, by, target, estimated_to_run_micro=to_run)
    spent_estimated = _spent_at_estimate(rows)
    if chart is not None:
        _write_chart(chart, rows, target, project.config.title)
    if as_json:
        out.print_json(json.dumps({**report.as_dict(), "spent_estimated_micro": spent_estimated}))
    elif as_csv:
        out.print(_csv(report), end="", markup=False, highlight=False)
    else:
        _print(report, spent_estimated)


def _spent_at_estimate(rows: list[Generation]) -> int:
    """The part of what was spent that is studio's estimate: the provider reported no cost and no billed units."""
    from studio.ledger.budget import FINAL

    return sum(r.actual_micro or 0 for r in rows if r.status in FINAL and r.actual_source == "estimate")


def _estimated_to_run(project: Project, engine, episode: int | None) -> int:  # type: ignore[no-untyped-def]
    """Estimates of the jobs not made yet with the paid models configured (what a paid run would still cost)."""
    from studio.run.episode import make_plan
    from studio.run.plan_view import plan_rows
    from studio.run.store import ArtifactStore

    provider = project.config.provider
    if provider == "draft":
        provider = project.catalog.get(project.catalog.resolve(project.config.models.primary("panel")) or "").provider
    store = ArtifactStore(project.state_dir, engine, objects=project.objects_dir)
    numbers = [episode] if episode is not None else sorted(project.episodes)
    total = 0
    for number in numbers:
        view = plan_rows(project, make_plan(project, number, provider, engine=engine), store)
        total += view["totals"]["to_pay_micro"]
    return total


def _write_chart(path: Path, rows: list[Generation], target: int, title: str) -> None:
    from studio.core.files import write_atomic
    from studio.ledger.report import episode_cost_per_panel
    from studio.render.chart import cost_chart_png

    spent = episode_cost_per_panel(rows)
    would = _would_cost_per_panel(rows)
    write_atomic(path, cost_chart_png(spent, would, target, f"{title}: cost per panel"))
    out.print(f"wrote {path}")


def _would_cost_per_panel(rows: list[Generation]) -> dict[int, int]:
    totals: dict[int, int] = {}
    panels: dict[int, set[str]] = {}
    for row in rows:
        if row.episode is None or row.status != "completed" or not row.would_cost_micro:
            continue
        totals[row.episode] = totals.get(row.episode, 0) + row.would_cost_micro
        if row.phase == "panel" and row.panel:
            panels.setdefault(row.episode, set()).add(row.panel)
    return {ep: -(-totals[ep] // len(panels[ep])) for ep in totals if panels.get(ep)}


def _csv(report: CostReport) -> str:
    buffer = io.StringIO()
    fields = list(asdict(report.totals))
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in [*report.rows, report.totals]:
        writer.writerow(asdict(row))
    return buffer.getvalue()


def _print(report: CostReport, spent_estimated: int = 0) -> None:
    from studio.core.money import format_usd

    table = Table(title=f"Cost by {report.by}", title_justify="left")
    # At 80 columns headers and groups fold onto more lines, never cut short; amounts stay whole.
    table.add_column(Text(report.by, overflow="fold"), overflow="fold")
    for column in ("gens", "retakes", "panels"):
        table.add_column(Text(column, overflow="fold"), justify="right", no_wrap=True)
    for column in ("spent", "held", "per panel", "draft est."):
        table.add_column(Text(column, overflow="fold"), justify="right", no_wrap=True, min_width=7)

    def money(value: int | None) -> str:
        return "—" if value is None else format_usd(value)

    for row in [*report.rows, report.totals]:
        over = row.per_panel_micro is not None and row.per_panel_micro > report.target_per_panel_micro
        per_panel = f"[red]{money(row.per_panel_micro)}[/red]" if over else money(row.per_panel_micro)
        table.add_row(
            f"[bold]{row.group}" if row is report.totals else row.group,
            str(row.generations),
            str(row.retakes),
            str(row.panels),
            money(row.spent_micro),
            money(row.held_micro),
            per_panel,
            money(row.would_cost_micro),
        )
    out.print(fit_table(table))
    if spent_estimated:
        out.print(
            f"{money(spent_estimated)} of the {money(report.totals.spent_micro)} spent is est.: the provider "
            "reported no cost or billed units for those generations, so studio counted its estimate"
        )
    by_quality = report.spent_by_quality_micro or {}
    if by_quality.get("preview") or by_quality.get("final"):
        out.print(
            f"spent on previews {money(by_quality['preview'])}, on finals {money(by_quality['final'])}, "
            f"on panels made directly {money(by_quality['direct'])}"
        )
    out.print(
        f"target {money(report.target_per_panel_micro)}/panel; per approved panel "
        f"{money(report.per_approved_panel_micro)}; rolling average (last 10 episodes) "
        f"{money(report.rolling_per_panel_micro)}/panel; still to run est. {money(report.estimated_to_run_micro)}"
    )
