"""`studio models` and `studio models refresh` (formerly `refresh-prices`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from rich.table import Table
from rich.text import Text

from studio.cli.common import err, fit_table, friendly, open_project, out

app = typer.Typer(
    help="The model catalog: what each model takes and what a typical panel costs on it.",
    invoke_without_command=True,
)


@app.callback()
@friendly
def models(
    ctx: typer.Context,
    kind: Annotated[
        Literal["text-to-image", "edit", "background-removal", "upscale", "judge"] | None,
        typer.Option(help="Only models of this kind."),
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Only this provider's models (fal, bfl, draft).")] = None,
    sort: Annotated[Literal["cost", "quality", "speed", "name"], typer.Option(help="Order of the list.")] = "cost",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the catalog with the price of a typical panel (1600x2000 with 3 references)."""
    from studio.catalog.catalog import typical_panel_micro
    from studio.core.money import format_usd

    if ctx.invoked_subcommand is not None:
        return
    project = open_project()
    rows = []
    for model_id, entry in project.catalog.entries.items():
        if (kind and entry.kind != kind) or (provider and entry.provider != provider):
            continue
        price = entry.price
        rows.append(
            {
                "model": model_id,
                "provider": entry.provider,
                "kind": entry.kind,
                "max_refs": entry.max_refs,
                "quality": entry.quality,
                "speed": entry.speed,
                "typical_panel_micro": typical_panel_micro(entry, model_id),
                "price_rule": price.rule if price else None,
                "price_source": price.source if price else None,
                "price_date": price.date if price else None,
                "notes": entry.notes,
                "retired": entry.retired,
                "replacement": entry.replacement,
                "limits": {
                    "min_side": entry.min_side,
                    "max_side": entry.max_side,
                    "max_mp": entry.max_mp,
                    "size_multiple": entry.size_multiple,
                    "source": entry.limits_source,
                    "date": entry.limits_date,
                },
            }
        )
    order = {
        "cost": lambda r: (r["typical_panel_micro"] is None, r["typical_panel_micro"] or 0, r["model"]),
        "quality": lambda r: (-r["quality"], r["model"]),
        "speed": lambda r: (-r["speed"], r["model"]),
        "name": lambda r: r["model"],
    }[sort]
    rows.sort(key=order)
    if as_json:
        out.print_json(json.dumps({"models": rows}))
        return
    table = Table(title="Models (panel: price of a typical 1600x2000 panel with 3 references)", title_justify="left")
    # At 80 columns ids fold onto more lines, never cut short; amounts and dates stay whole.
    table.add_column("model", overflow="fold")
    table.add_column("kind", overflow="fold")
    for column in ("refs", "quality", "speed"):
        table.add_column(Text(column, overflow="fold"), justify="right", no_wrap=True)
    table.add_column("panel", justify="right", no_wrap=True, min_width=7)
    table.add_column("priced", no_wrap=True, min_width=10)
    for row in rows:
        cost = "no price" if row["typical_panel_micro"] is None else format_usd(row["typical_panel_micro"])
        if row["price_rule"] == "per_token":  # a judge makes no panel: it is priced by the token
            cost = "per token"
        quality, speed = f"{row['quality']}/5", f"{row['speed']}/5"
        kind = f"{row['kind']} (retired: use {row['replacement']})" if row["retired"] else row["kind"]
        table.add_row(row["model"], kind, str(row["max_refs"]), quality, speed, cost, row["price_date"] or "—")
    out.print(fit_table(table))
    out.print("Models with no price are refused for paid runs; 'studio models refresh' asks fal for them.")


@app.command("refresh")
@friendly
def refresh() -> None:
    """Update fal's prices (its pricing API, needs FAL_KEY) and the limits each fal endpoint's
    OpenAPI schema states (sides, images, enums); records when, in .studio/."""
    import httpx

    from studio.catalog.limits import LIMITS_FILE, limits_record
    from studio.catalog.prices import PRICES_FILE
    from studio.core.files import write_atomic
    from studio.providers.accounts import api_key, refresh_fal_limits, refresh_fal_prices, service_url

    project = open_project()
    key = api_key("fal")
    base = service_url(project.config, "fal", "platform_url")
    schemas = service_url(project.config, "fal", "openapi_url")
    fal = {model_id: entry for model_id, entry in project.catalog.entries.items() if entry.provider == "fal"}
    endpoints = {model_id: entry.model_dump() for model_id, entry in fal.items()}
    with httpx.Client() as client:
        refreshed = refresh_fal_prices(client, base, key, endpoints)
        limits = refresh_fal_limits(client, schemas, {m: e.endpoint for m, e in fal.items() if not e.retired})
    record = {"fetched_at": datetime.now(UTC).isoformat(timespec="seconds"), "source": base, "prices": refreshed.prices}
    write_atomic(project.state_dir / PRICES_FILE, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    stated = limits_record(limits.limits, schemas)
    write_atomic(project.state_dir / LIMITS_FILE, (json.dumps(stated, indent=2, sort_keys=True) + "\n").encode())
    for model_id, price in sorted(refreshed.prices.items()):
        out.print(f"{model_id}: {price['rule']} ${price['usd']}")
    for model_id, why in sorted(refreshed.skipped.items()):
        err.print(f"kept the catalog price of {model_id}: {why}")
    for model_id, found in sorted(limits.limits.items()):
        out.print(f"{model_id}: {_limits_text(found)}")
    for model_id, why in sorted(limits.skipped.items()):
        err.print(f"kept the catalog limits of {model_id}: {why}")
    out.print(
        f"{len(refreshed.prices)} prices and {len(limits.limits)} schemas' limits refreshed at {record['fetched_at']}"
    )


@app.command("refresh-prices", help="The same as 'studio models refresh' (its former name).")
@friendly
def refresh_prices() -> None:
    refresh()


def _limits_text(found: dict) -> str:
    parts = []
    if "min_side" in found or "max_side" in found:
        parts.append(f"sides {found.get('min_side', '?')}–{found.get('max_side', '?')} px")
    if "max_refs" in found:
        parts.append(f"at most {found['max_refs']} images")
    if "max_scale" in found:
        parts.append(f"scale up to {found['max_scale']:g}")
    return ", ".join(parts) or "no size or image limits stated"
