"""`studio run episode N`."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from studio.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_JOBS_FAILED,
    err,
    friendly,
    open_project,
    out,
    parse_ids,
    parse_usd,
)

app = typer.Typer(help="Generate what an episode needs, reusing everything already made.", no_args_is_help=True)


@app.command("episode")
@friendly
def episode(
    number: Annotated[int, typer.Argument(help="Episode number, e.g. 1 for episodes/ep001.")],
    provider: Annotated[
        str | None,
        typer.Option(
            help="Who generates the images: 'draft' renders free previz art offline; fal, bfl or gemini; "
            "'chain' tries each phase's [models] list in order. Default: studio.toml's."
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Requests running at once per provider (fal, which queues the excess, also gets half as many "
            "waiting in its queue). Default: studio.toml's.",
        ),
    ] = None,
    only: Annotated[
        str | None, typer.Option(help="Only these panels (and what they need), comma-separated: p001,p004.")
    ] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first failed job.")] = False,
    max_cost: Annotated[
        str | None, typer.Option(help="Spend at most this many USD in this run (checked before every paid call).")
    ] = None,
    resubmit_expired: Annotated[
        bool,
        typer.Option(
            "--resubmit-expired", help="Pay again for results the provider forgot before they were downloaded."
        ),
    ] = False,
    retry_rejected: Annotated[
        bool, typer.Option("--retry-rejected", help="Send again inputs the provider rejected (content or validation).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Regenerate approved panels whose inputs changed since approval.")
    ] = False,
    quality: Annotated[
        Literal["preview", "final"] | None,
        typer.Option(
            help="preview: every panel as a cheap small take (at most 0.5 MP, on the cheapest model that keeps "
            "every character's reference) to review and approve; final: each approved preview upscaled to the "
            "master size by [models] upscale, never made again. Default: finished panels directly."
        ),
    ] = None,
) -> None:
    """Make everything episode N needs, in order: character sheets, style frame, location
    plates, panels, then the contact sheet. Anything already made (same inputs, same key)
    is reused, never generated or paid for twice. Ctrl-C stops cleanly; run again to continue."""
    from studio.core.money import format_usd
    from studio.run.episode import RunOptions, run_episode
    from studio.run.report import ConsoleReporter

    project = open_project()
    options = RunOptions(
        provider=provider,
        concurrency=concurrency,
        only=parse_ids(only),
        fail_fast=fail_fast,
        max_cost_micro=parse_usd(max_cost, "--max-cost") if max_cost is not None else None,
        resubmit_expired=resubmit_expired,
        retry_rejected=retry_rejected,
        force=force,
        quality=quality,
    )
    try:
        summary = run_episode(project, number, options, ConsoleReporter(err))
    except KeyboardInterrupt:
        err.print("interrupted: everything finished so far is kept; run the same command again to continue")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    folder = project.root / "build" / "episodes" / f"ep{number:03d}"
    if summary.budget_stop is not None:
        stop = summary.budget_stop
        unmade = sum(o.job.estimate_micro or 0 for o in summary.failed if o.job.generation is not None)
        more = max(0, unmade - max(0, stop.available_micro))
        err.print(
            f"stopped by the {stop.limit}: {format_usd(max(0, stop.available_micro))} left, and the "
            f"{len(summary.failed)} job(s) not made need up to {format_usd(unmade)}; "
            f"about {format_usd(more)} more is needed to finish episode {number}"
        )
    if summary.failed:
        err.print(f"{len(summary.failed)} job(s) did not finish; see above. Outputs so far are in {folder}")
        raise typer.Exit(EXIT_JOBS_FAILED)
    out.print(f"episode {number} ready: {folder / 'panels'}  contact sheet: {folder / 'contact.html'}")
