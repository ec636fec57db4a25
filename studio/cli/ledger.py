"""`studio ledger`: every generation studio asked for, and resolving ones whose outcome is unknown."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from studio.cli.common import friendly, open_project, out
from studio.core.errors import UsageError

app = typer.Typer(help="Every generation studio asked for, one row each.", invoke_without_command=True)

SHOWN = (
    "id",
    "phase",
    "name",
    "episode",
    "take",
    "attempt",
    "provider",
    "model",
    "status",
    "estimate_micro",
    "held_micro",
    "reported_micro",
    "computed_micro",
    "actual_micro",
    "actual_source",
    "request_id",
    "error",
)


@app.callback()
@friendly
def show(
    ctx: typer.Context,
    episode: Annotated[int | None, typer.Option(help="Only this episode's rows.")] = None,
    status: Annotated[str | None, typer.Option(help="Only rows with this status (e.g. unknown).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List ledger rows: status, estimate, hold, reported/computed/actual cost and the provider request id."""
    from studio.core.money import format_usd
    from studio.db.tables import ledger_engine
    from studio.ledger.book import Ledger

    if ctx.invoked_subcommand is not None:
        return
    project = open_project()
    with ledger_engine(project.state_dir) as engine:
        rows = [r for r in Ledger(engine).rows(episode) if status is None or r.status == status]
    if as_json:
        out.print_json(json.dumps([{k: getattr(r, k) for k in SHOWN} for r in rows], default=str))
        return
    table = Table(title=f"Ledger ({len(rows)} rows)", title_justify="left")
    for column in ("id", "job", "ep", "take", "provider", "status", "estimate", "actual", "request id"):
        table.add_column(column)
    for r in rows:
        actual = "—" if r.actual_micro is None else f"{format_usd(r.actual_micro)} ({r.actual_source})"
        table.add_row(
            str(r.id),
            f"{r.phase} {r.name}",
            str(r.episode or ""),
            str(r.take),
            r.provider,
            r.status,
            format_usd(r.estimate_micro),
            actual,
            r.request_id or "—",
        )
    out.print(table)


@app.command("resolve")
@friendly
def resolve(
    row_id: Annotated[int, typer.Argument(help="The ledger row id (see 'studio ledger --status unknown').")],
    charged: Annotated[
        bool | None,
        typer.Option("--charged/--not-charged", help="What your provider's dashboard says about this request."),
    ] = None,
    amount: Annotated[
        str | None, typer.Option(help="With --charged: the amount in USD. Default: the estimate.")
    ] = None,
) -> None:
    """Settle a request whose outcome is unknown (a run stopped while sending it), releasing its hold.

    After --not-charged, the next run sends the job again; after --charged, studio counts the cost
    (its image is lost: run with the job's panel again to regenerate it, paying again)."""
    from sqlmodel import Session

    from studio.core.money import format_usd, usd_to_micro
    from studio.db.tables import Generation, ledger_engine, now

    if charged is None:
        raise UsageError("say what happened: --charged or --not-charged")
    project = open_project()
    with ledger_engine(project.state_dir) as engine, Session(engine) as session:
        row = session.get(Generation, row_id)
        if row is None or row.status not in {"unknown", "reserved"}:
            raise UsageError(f"ledger row {row_id} is not waiting to be resolved")
        cost = (usd_to_micro(amount) if amount else row.estimate_micro) if charged else 0
        row.status, row.held_micro, row.actual_micro = "failed", 0, cost
        row.actual_source = "reported" if charged else None
        row.error = f"resolved by hand: {'charged' if charged else 'not charged'}"
        row.finished_at = now()
        session.add(row)
        session.commit()
    out.print(f"row {row_id} resolved as {'charged ' + format_usd(cost) if charged else 'not charged'}")
