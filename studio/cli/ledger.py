"""`studio ledger`: every generation studio asked for, and resolving ones whose outcome is unknown."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from studio.cli.common import friendly, open_project, out
from studio.core.errors import UsageError

if TYPE_CHECKING:
    from studio.db.tables import Generation
    from studio.ledger.book import Ledger
    from studio.ledger.reconcile import Settled

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
    with ledger_engine(project.state_dir, project.database_url) as engine:
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
    from studio.run.lock import ledger_lock

    project = open_project()
    # Under every run's lock, as reconcile: a running episode may be sending or settling this very row.
    with (
        ledger_engine(project.state_dir, project.database_url, objects=project.objects_dir) as engine,
        ledger_lock(project.state_dir, engine, "studio ledger resolve"),
        Session(engine) as session,
    ):
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


@app.command("reconcile")
@friendly
def reconcile(
    provider: Annotated[
        str | None, typer.Option(help="Only this provider's rows (default: every provider with unknown rows).")
    ] = None,
) -> None:
    """Settle requests whose outcome is unknown from the provider's own request history, and print how.

    fal lists every request it received: a lost request found there is re-attached by the next run
    (its image is recovered); one missing once it could no longer start is settled as not charged
    (the next run sends it again); one that could still start waits. Anything the history cannot
    prove stays unknown, with the reason. Providers without a history (BFL, Gemini) are listed with
    what to check in their dashboard and the 'studio ledger resolve' command to run. Every run does
    this by itself; this command is for settling without running."""
    import asyncio

    from studio.core.errors import StudioError
    from studio.db.tables import ledger_engine
    from studio.ledger.book import Ledger
    from studio.ledger.reconcile import Reconciler, check_by_hand, open_unknowns
    from studio.providers.base import ProviderContext
    from studio.providers.registry import get_provider, installed_plugins
    from studio.run.lock import ledger_lock

    project = open_project()
    plugins = installed_plugins()
    if provider is not None and provider not in plugins:
        raise UsageError(f"--provider: unknown provider '{provider}' (available: {', '.join(sorted(plugins))})")
    names = [provider] if provider else sorted(plugins)
    # Under every run's lock: no run of any episode is sending (or settling) these rows meanwhile.
    with (
        ledger_engine(project.state_dir, project.database_url, objects=project.objects_dir) as engine,
        ledger_lock(project.state_dir, engine, "studio ledger reconcile"),
    ):
        ledger = Ledger(engine)
        rows = open_unknowns(ledger, names)
        if not rows:
            out.print("no ledger row has an unknown outcome" + (f" at {provider}" if provider else ""))
            return
        settled: list[Settled] = []
        for name in sorted({row.provider for row in rows}):
            group = [row for row in rows if row.provider == name]
            plugin = plugins.get(name)
            if plugin is None or not plugin.reconciles:
                for row in group:
                    out.print(
                        f"ledger row {row.id} ({row.phase.replace('_', ' ')} {row.name}, {name}): "
                        f"stays unknown. {check_by_hand(row, plugin.dashboard if plugin else None)}"
                    )
                continue
            built = get_provider(name, ProviderContext(project.catalog, project.config, project.state_dir))
            if not isinstance(built, Reconciler):
                raise StudioError(f"the {name} plugin says it reconciles but its provider has no reconcile()")
            settled.extend(asyncio.run(_settle(ledger, built, group)))
    for one in settled:
        out.print(one.describe())
    counts = {what: sum(1 for s in settled if s.what == what) for what in ("found", "never ran", "waits", "unknown")}
    out.print(", ".join(f"{n} {what}" for what, n in counts.items() if n) or "nothing to reconcile")


@app.command("migrate")
@friendly
def migrate(
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="The team's PostgreSQL database, postgresql://USER@HOST[:PORT]/DATABASE, empty (e.g. just made with "
            "createdb); the password from PGPASSWORD. Default: STUDIO_DATABASE_URL (or database_url in studio.toml).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Copy this project's ledger (.studio/ledger.db) into PostgreSQL, exactly, so a team can share it.

    Every row of every table (generations and their costs, budget, alerts, review takes and events, scores,
    runs, the store's index) is copied with its id, in one transaction that commits only if the row counts and
    the money totals of both sides are equal; otherwise nothing is written and the command says which total
    differed. The target must be empty. .studio/ledger.db is only read, and is left as it was: keep it as a
    backup. Refused while a run of this project is going. Afterwards, set STUDIO_DATABASE_URL on every machine.

    Example: createdb -h db.studio.lan studio && PGPASSWORD=... studio ledger migrate --to
    postgresql://studio@db.studio.lan/studio"""
    from sqlalchemy.engine import make_url

    from studio.core.money import format_usd
    from studio.db.copy import copy_ledger, read_only_sqlite
    from studio.db.engines import is_postgres, shown
    from studio.db.tables import LEDGER_FILE, open_ledger
    from studio.run.lock import ledger_lock
    from studio.run.store import gather_objects, objects_folder

    project = open_project()
    if project.config.store is not None:
        objects_folder(project)  # a shared store that is not mounted is refused before anything is copied
    url = to or project.database_url
    if url is None:
        raise UsageError(
            "say where to copy the ledger: --to postgresql://USER@HOST/DATABASE (or set STUDIO_DATABASE_URL)"
        )
    if not is_postgres(url):
        raise UsageError(f"--to must be a postgresql:// URL (got {url.partition('://')[0]}://)")
    path = project.state_dir / LEDGER_FILE
    source = read_only_sqlite(path)
    try:
        # Every run's lock: a run writing the SQLite ledger meanwhile would leave rows behind in it.
        with ledger_lock(project.state_dir, source, "studio ledger migrate"):
            target = open_ledger(project.state_dir, database_url=url)
            try:
                copied = copy_ledger(source, target)
            finally:
                target.dispose()
    finally:
        source.dispose()
    where, kept = shown(url), path.relative_to(project.root) if path.is_relative_to(project.root) else path
    table = Table(title=f"Copied {kept} into {where}", title_justify="left")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, count in copied.rows.items():
        table.add_row(name, str(count))
    out.print(table)
    money = copied.money
    out.print(
        f"spent {format_usd(money['generation.actual_micro'])}, held {format_usd(money['generation.held_micro'])}; "
        "counts and money totals checked equal on both sides"
    )
    if project.config.store is not None:  # the images the ledger indexes, where the team's runs look for them
        copied_images, present = gather_objects(project.state_dir / "objects", objects_folder(project))
        out.print(f"images: {copied_images} copied into {project.objects_dir} ({present} already there)")
    bare = make_url(url)._replace(password=None).render_as_string(hide_password=False)  # the password: not even as ***
    out.print(
        f"next: set STUDIO_DATABASE_URL={bare} (or database_url in studio.toml, the password in PGPASSWORD) on "
        f"every machine; {kept} is left as it was: keep it as a backup"
    )


async def _settle(ledger: Ledger, provider: Any, rows: list[Generation]) -> list[Settled]:
    """Reconcile with a built provider (a `Reconciler`), closing its connections afterwards."""
    from studio.ledger.reconcile import reconcile_rows

    try:
        return await reconcile_rows(ledger, provider, rows)
    finally:
        await provider.aclose()
