"""`studio budget`: the balance studio may spend, checked before every paid call."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from studio.cli.common import friendly, open_project, out, parse_usd
from studio.core.errors import UsageError

app = typer.Typer(
    help="The balance studio may spend. Every paid call reserves its estimate against it first.",
    invoke_without_command=True,
)


@app.callback()
@friendly
def show(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the balance, what was spent since it was set, what is held by requests in flight, and what is left."""
    from sqlmodel import Session

    from studio.core.money import format_usd, usd_to_micro
    from studio.db.tables import ledger_engine
    from studio.ledger.budget import standing

    if ctx.invoked_subcommand is not None:
        return
    project = open_project()
    with ledger_engine(project.state_dir, project.database_url) as engine, Session(engine) as session:
        now = standing(session)
    data = {
        "balance_micro": now.balance_micro,
        "balance_source": now.balance_source,
        "spent_since_balance_micro": now.spent_since_balance_micro,
        "held_micro": now.held_micro,
        "remaining_micro": now.remaining_micro,
        "spent_all_time_micro": now.spent_micro,
        "project_budget_micro": usd_to_micro(project.config.budget) if project.config.budget is not None else None,
    }
    if as_json:
        out.print_json(json.dumps(data))
        return
    if now.balance_micro is None:
        out.print("No balance set: paid runs are limited only by studio.toml's budget and --max-cost.")
        out.print("Set one with 'studio budget set 12.50' or read it from your providers with 'studio budget sync'.")
    else:
        out.print(
            f"balance {format_usd(now.balance_micro)} ({now.balance_source}); spent since "
            f"{format_usd(now.spent_since_balance_micro)}; held {format_usd(now.held_micro)} "
            f"(est. of the requests in flight); left {format_usd(now.remaining_micro or 0)}"
        )
    if data["project_budget_micro"] is not None:
        left = data["project_budget_micro"] - now.spent_micro - now.held_micro
        out.print(f"project budget {format_usd(data['project_budget_micro'])}: {format_usd(left)} left")


@app.command("set")
@friendly
def set_(amount: Annotated[str, typer.Argument(help="Your balance in USD, e.g. 12.50.")]) -> None:
    """Record the balance you have; spending from now on counts against it."""
    from sqlmodel import Session

    from studio.core.money import format_usd
    from studio.db.tables import ledger_engine
    from studio.ledger.budget import set_balance

    micro = parse_usd(amount, "balance")
    project = open_project()
    with ledger_engine(project.state_dir, project.database_url) as engine, Session(engine) as session:
        set_balance(session, micro, "manual")
    out.print(f"balance set to {format_usd(micro, 2)}")


@app.command("sync")
@friendly
def sync(
    provider: Annotated[
        list[str] | None,
        typer.Option(help="Read only these providers (fal, bfl, …). Default: each with a balance API and a key."),
    ] = None,
) -> None:
    """Read your balance from the providers' APIs (fal's billing, BFL's credits, a plugin's) and record their sum."""
    import httpx
    from sqlmodel import Session

    from studio.core.money import format_usd
    from studio.db.tables import ledger_engine
    from studio.ledger.budget import set_balance
    from studio.providers.registry import installed_plugins

    project = open_project()
    plugins = installed_plugins()
    readers = {name: plugin for name, plugin in plugins.items() if plugin.balance is not None}
    chosen = provider or [name for name, plugin in readers.items() if plugin.key_present()]
    if not chosen:
        variables = ", ".join(p.key_env_var for p in readers.values() if p.key_env_var)
        raise UsageError(f"no provider key in the environment ({variables}); use 'studio budget set' instead")
    total = 0
    with httpx.Client() as client:
        for name in chosen:
            if name not in readers:
                known = ", ".join(sorted(readers))
                raise UsageError(f"cannot read a balance from '{name}' (known: {known})")
            amount = readers[name].balance(project.config, client)  # type: ignore[misc]
            out.print(f"{name}: {format_usd(amount, 2)}")
            total += amount
    with ledger_engine(project.state_dir, project.database_url) as engine, Session(engine) as session:
        set_balance(session, total, "+".join(chosen))
    out.print(f"balance set to {format_usd(total, 2)}")
