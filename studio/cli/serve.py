"""`studio review serve N`: the review web app of one episode, on 127.0.0.1, until Ctrl-C."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from studio.cli.common import friendly, open_project, out


@friendly
def serve_command(
    number: Annotated[int, typer.Argument(help="Episode number.")],
    track: Annotated[
        Literal["draft", "preview", "final"] | None,
        typer.Option(
            help="Which takes to review: the draft previz, the paid previews ('studio run --quality preview') or "
            "the paid panels made directly. Default: studio.toml's provider's, as 'studio review' does."
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="The port on 127.0.0.1. Default: a free one.")
    ] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Print the URL only; do not open it.")] = False,
) -> None:
    """Review an episode in the browser: the strip as the reader sees it and every panel's takes side by
    side; approve (a) or retake with a note (r), moving with j/k. It follows a run that is going.
    Served on 127.0.0.1 only, behind a token printed with the URL. Ctrl-C stops it."""
    from studio.review.takes import track_of
    from studio.web.server import serve

    project = open_project()
    project.episode(number)  # a missing episode is said here, not as a page that cannot load
    serve(
        project.root,
        number,
        track or track_of(project.config.provider),
        port=port,
        open_browser=not no_browser,
        echo=lambda line: out.print(line, markup=False),
    )
