"""`studio review serve episode N`: the review web app of one episode, on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer

from studio.cli.common import friendly, open_project, out
from studio.cli.review import Number, Provider, Quality, TrackOption, episode_track

app = typer.Typer(help="Review an episode in the browser (a local web app).", no_args_is_help=True)


@app.command("episode")
@friendly
def serve_command(
    number: Number,
    track: TrackOption = None,
    provider: Provider = None,
    quality: Quality = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="The port on 127.0.0.1. Default: a free one.")
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL only; do not open it.")] = False,
) -> None:
    """Review episode N in the browser: the strip as the reader sees it and every panel's takes side by
    side; approve (a) or retake with a note (r), moving with j/k. It follows a run that is going. On the
    episode's track, as 'studio review episode N'. Served on 127.0.0.1 only, behind a token printed with
    the URL. Ctrl-C stops it. Example: studio review serve episode 3"""
    from studio.db.tables import ledger_engine
    from studio.web.server import serve

    project = open_project()
    project.episode(number)  # a missing episode is said here, not as a page that cannot load
    with ledger_engine(project.state_dir, project.database_url) as engine:
        chosen = episode_track(project, engine, number, track, provider, quality)
    serve(
        project.root,
        number,
        chosen.takes,
        port=port,
        open_browser=not no_browser,
        echo=lambda line: out.print(line, markup=False),
    )
