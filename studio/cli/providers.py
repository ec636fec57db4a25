"""`studio providers`: which providers can run here, today's use, and (on request) balances."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from studio.cli.common import friendly, open_project, out


@friendly
def providers(
    balance: Annotated[
        bool, typer.Option("--balance", help="Also ask each provider that reports one (fal, BFL) for its balance.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """For each provider: whether its key is set (never the key itself), today's requests and spend
    from the ledger against its quotas ([providers.NAME] in studio.toml), and the models it serves;
    with --balance, the balance its API reports."""
    from sqlmodel import Session

    from studio.core.money import format_usd, usd_to_micro
    from studio.db.tables import ledger_engine
    from studio.ledger.quota import usage
    from studio.project.models import ProviderSettings
    from studio.providers.registry import installed_plugins

    project = open_project()
    installed = installed_plugins()
    rows = []
    with ledger_engine(project.state_dir, project.database_url) as engine, Session(engine) as session:
        for name in sorted(installed):
            plugin = installed[name]
            settings = project.config.providers.get(name) or ProviderSettings()
            used = usage(session, name)
            rows.append(
                {
                    "provider": name,
                    "key_variable": plugin.key_env_var,
                    "key_present": plugin.key_present(),
                    "today_generations": used.today,
                    "today_spent_micro": used.spent_today_micro,
                    "quota": {
                        "requests_per_minute": settings.requests_per_minute,
                        "daily_requests": settings.daily_requests,
                        "daily_spend_micro": usd_to_micro(settings.daily_spend) if settings.daily_spend else None,
                        "on_quota": settings.on_quota,
                    },
                    "models": sorted(m for m, e in project.catalog.entries.items() if e.provider == name),
                    "balance_micro": _balance(project, plugin) if balance else None,
                }
            )
    if as_json:
        out.print_json(json.dumps({"providers": rows}))
        return
    table = Table(title="Providers", title_justify="left")
    for column in ("provider", "key", "today", "spent", "daily quota", "balance", "models"):
        table.add_column(column, overflow="fold", no_wrap=column != "daily quota")
    for row in rows:
        key = (
            "not needed"
            if row["key_variable"] is None
            else (f"{row['key_variable']} set" if row["key_present"] else f"[red]{row['key_variable']} missing[/red]")
        )
        money = "—" if row["balance_micro"] is None else format_usd(row["balance_micro"], 2)
        table.add_row(
            row["provider"],
            key,
            str(row["today_generations"]),
            format_usd(row["today_spent_micro"], 2),
            _quota_text(row["quota"], row["today_generations"], row["today_spent_micro"]),
            money,
            str(len(row["models"])),
        )
    out.print(table)


def _quota_text(quota: dict, today: int, spent_micro: int) -> str:
    """Today's use against the quotas (UTC days), and what a run does when one is reached."""
    from studio.core.money import format_usd

    parts = []
    if quota["daily_requests"] is not None:
        parts.append(f"{today}/{quota['daily_requests']}")
    if quota["daily_spend_micro"] is not None:
        parts.append(f"{format_usd(spent_micro, 2)}/{format_usd(quota['daily_spend_micro'], 2)}")
    if quota["requests_per_minute"] is not None:
        parts.append(f"{quota['requests_per_minute']}/min")
    if not parts:
        return "—"
    return ", ".join(parts) + f"; then {quota['on_quota']}"


def _balance(project, plugin) -> int | None:  # type: ignore[no-untyped-def]
    """The balance a provider's plugin reads from its API; None when it reports none or has no key here."""
    import httpx

    from studio.core.errors import StudioError

    if plugin.balance is None or not plugin.key_present():
        return None
    try:
        with httpx.Client() as client:
            return plugin.balance(project.config, client)
    except StudioError:
        return None
